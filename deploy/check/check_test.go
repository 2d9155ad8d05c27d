package check

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// Paths from deploy/check, where go test runs.
const (
	repoRoot      = "../.."
	kubeDir       = "../kubernetes"
	composeFile   = "../../docker-compose.yml"
	composeEnv    = "../compose.env.example"
	envExample    = "../../.env.example"
	dockerignore  = "../../.dockerignore"
	testEncKey    = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // 32 bytes, base64
	testRedisPass = "0123456789abcdef0123456789abcdef"
)

func knownVars(t *testing.T) map[string]bool {
	t.Helper()
	known, err := KnownVars(envExample)
	if err != nil {
		t.Fatal(err)
	}
	return known
}

// kubeValidator returns a function that validates one manifest file against the schemas.
func kubeValidator(t *testing.T) func(path string) error {
	t.Helper()
	v, err := NewKubeValidator()
	if err != nil {
		t.Fatalf("kubectl-validate cannot load the built-in %s schemas: %v", KubernetesVersion, err)
	}
	return func(path string) error { return ValidateKubeFile(v, path) }
}

// TestKubernetesManifestsMatchSchemas validates every manifest in deploy/kubernetes, the Secret
// example included, against the Kubernetes API's own schemas.
func TestKubernetesManifestsMatchSchemas(t *testing.T) {
	validate := kubeValidator(t)
	files, err := filepath.Glob(filepath.Join(kubeDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var checked []string
	for _, f := range files {
		if filepath.Base(f) == kustomizationFile {
			continue // not a Kubernetes object; the rules check what it lists
		}
		checked = append(checked, filepath.Base(f))
		if err := validate(f); err != nil {
			t.Errorf("%v", err)
		}
	}
	// The glob must have found the manifests, or this test proves nothing.
	for _, want := range []string{"deployment.yaml", "configmap.yaml", secretExampleFile, "poddisruptionbudget.yaml"} {
		if !slices.Contains(checked, want) {
			t.Errorf("%s was not validated; checked %v", want, checked)
		}
	}
}

// TestSchemaRejectsBrokenManifests proves the schema check can fail: each file under
// testdata/broken has one mistake, and the error names it.
func TestSchemaRejectsBrokenManifests(t *testing.T) {
	validate := kubeValidator(t)
	tests := map[string]string{
		"replicas-as-string.yaml":       "spec.replicas in body must be of type integer",
		"misspelt-probe.yaml":           "containers[0].readinessProbes: Invalid value: value provided for unknown field",
		"port-annotation-unquoted.yaml": "annotations.prometheus.io/port in body must be of type string",
		"no-selector.yaml":              "spec.selector: Required value",
		"probe-without-port.yaml":       "livenessProbe.httpGet.port: Required value",
		"bad-secret-name.yaml":          `metadata.name: Invalid value: "Tapbot_Secrets"`,
	}
	files, _ := filepath.Glob("testdata/broken/*.yaml")
	if len(files) != len(tests) {
		t.Errorf("testdata/broken has %d files and the table %d: keep them in step", len(files), len(tests))
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			err := validate(filepath.Join("testdata/broken", name))
			if err == nil {
				t.Fatalf("accepted; want an error saying %q", want)
			}
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not say %q", err, want)
			}
		})
	}
}

// TestKubernetesDeploymentRules checks what the issue asks of the manifests (two replicas, both
// probes, scrape annotations, the Secret used) and what no schema knows about tapbot.
func TestKubernetesDeploymentRules(t *testing.T) {
	k, err := LoadKube(kubeDir)
	if err != nil {
		t.Fatal(err)
	}
	if p := k.Problems(knownVars(t)); len(p) > 0 {
		t.Errorf("deploy/kubernetes:\n  %s", strings.Join(p, "\n  "))
	}
}

// TestRulesCatchAWeakDeployment proves the rules can fail, on manifests the schema accepts.
func TestRulesCatchAWeakDeployment(t *testing.T) {
	validate := kubeValidator(t)
	k, err := LoadKube("testdata/weak")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range k.Files {
		if filepath.Base(f) != kustomizationFile {
			if err := validate(f); err != nil {
				t.Fatalf("testdata/weak must be schema-valid, so only the rules can reject it: %v", err)
			}
		}
	}
	want := []string{
		"Deployment tapbot: replicas must be at least 2, so one replica serves while the other restarts",
		"container tapbot: readinessProbe asks /healthz, want /readyz",
		"container tapbot: livenessProbe asks port 9090, but tapbot listens on 8080 (TAP_HTTP_ADDR)",
		`pod template: annotation prometheus.io/scrape must be "true"`,
		"pod template: annotation prometheus.io/path must be /metrics",
		`pod template: annotation prometheus.io/port is "", but tapbot listens on 8080`,
		"container tapbot: envFrom names the Secret tapbot, which puts every secret in the environment; mount it and set the *_FILE variables",
		"pod template: no volume of the Secret tapbot-secrets, so tapbot finds no secret files",
		"Secret tapbot-secrets: no TAP_ENCRYPTION_KEY",
		"Secret tapbot-secrets: SLACK_BOT_TOKEN must be a placeholder containing REPLACE_ME: real secrets never go in the repository",
		"ConfigMap tapbot-config: REDIS_URL is a secret and belongs in the Secret",
		"ConfigMap tapbot-config: tapbot reads no variable TAP_APROVERS",
		"Deployment tapbot: terminationGracePeriodSeconds must exceed TAP_SHUTDOWN_TIMEOUT (20s) plus 15s, or the kubelet kills in-flight approvals",
		"runAsNonRoot must be true",
		"runAsUser must be a non-zero user ID (the image's is 65532)",
		"container tapbot: readOnlyRootFilesystem must be true",
		"container tapbot: allowPrivilegeEscalation must be false",
		"container tapbot: capabilities must drop ALL and add none",
		"seccompProfile must be RuntimeDefault",
		"container tapbot: no cpu request",
		"container tapbot: no cpu limit",
		"container tapbot: no memory request",
		"container tapbot: no memory limit",
		"pod template: automountServiceAccountToken must be false: tapbot never calls the Kubernetes API",
		"PodDisruptionBudget tapbot: its selector does not match tapbot's pods",
		"PodDisruptionBudget tapbot: minAvailable must be a number from 1 to replicas-1, or no node can ever be drained",
		"kustomization.yaml: does not list poddisruptionbudget.yaml",
		"kustomization.yaml: must not list secret.example.yaml, or kubectl apply -k replaces the real Secret with placeholders",
		"kustomization.yaml: lists service.yaml, which does not exist",
	}
	assertProblems(t, k.Problems(knownVars(t)), want)
}

// TestRulesCatchSecretsOutsideFiles breaks, one at a time, how deploy/kubernetes hands tapbot
// its secrets, and each break must be named: the Secret reaches tapbot as read-only files only
// its group reads, never as environment values.
func TestRulesCatchSecretsOutsideFiles(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(spec *corev1.PodSpec, c *corev1.Container)
		want    string
	}{
		{"the Secret in envFrom", func(_ *corev1.PodSpec, c *corev1.Container) {
			c.EnvFrom = append(c.EnvFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "tapbot-secrets"}}})
		}, "container tapbot: envFrom names the Secret tapbot-secrets, which puts every secret in the environment; mount it and set the *_FILE variables"},
		{"a token as a value", func(_ *corev1.PodSpec, c *corev1.Container) {
			c.Env = append(c.Env, corev1.EnvVar{Name: "SLACK_BOT_TOKEN", Value: "xoxb-1"})
		}, "container tapbot: SLACK_BOT_TOKEN is in the environment; mount it from the Secret and set SLACK_BOT_TOKEN_FILE"},
		{"no _FILE", func(_ *corev1.PodSpec, c *corev1.Container) {
			c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "REDIS_URL_FILE" })
		}, "container tapbot: no REDIS_URL_FILE, so tapbot finds no REDIS_URL"},
		{"a _FILE outside the mount", func(_ *corev1.PodSpec, c *corev1.Container) {
			c.Env[slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "SLACK_APP_TOKEN_FILE" })].Value = "/run/secrets/SLACK_APP_TOKEN"
		}, `container tapbot: SLACK_APP_TOKEN_FILE is "/run/secrets/SLACK_APP_TOKEN", but the Secret's key SLACK_APP_TOKEN is mounted at "/run/secrets/tapbot/SLACK_APP_TOKEN"`},
		{"the client secret as a value", func(_ *corev1.PodSpec, c *corev1.Container) {
			c.Env[slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "AZURE_CLIENT_SECRET" })] = corev1.EnvVar{Name: "AZURE_CLIENT_SECRET", Value: "s3cret"}
		}, "container tapbot: AZURE_CLIENT_SECRET must come from the Secret (secretKeyRef), never a value in the manifest"},
		{"a writable mount", func(_ *corev1.PodSpec, c *corev1.Container) { c.VolumeMounts[0].ReadOnly = false },
			"container tapbot: must mount volume secrets read-only"},
		{"world-readable files", func(spec *corev1.PodSpec, _ *corev1.Container) {
			mode := int32(0o644)
			spec.Volumes[0].Secret.DefaultMode = &mode
		}, "volume secrets: defaultMode 0644 with fsGroup 65532; want the files readable by tapbot's group only (0440 and fsGroup 65532)"},
		{"no fsGroup", func(spec *corev1.PodSpec, _ *corev1.Container) { spec.SecurityContext.FSGroup = nil },
			"volume secrets: defaultMode 0440 with fsGroup unset; want the files readable by tapbot's group only (0440 and fsGroup 65532)"},
		{"not mounted", func(_ *corev1.PodSpec, c *corev1.Container) { c.VolumeMounts = nil },
			"container tapbot: does not mount volume secrets, the Secret tapbot-secrets"},
	}
	known := knownVars(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := LoadKube(kubeDir)
			if err != nil {
				t.Fatal(err)
			}
			spec := &k.Deployment.Spec.Template.Spec
			tt.breakIt(spec, &spec.Containers[0])
			assertProblems(t, k.Problems(known), []string{tt.want})
		})
	}
}

// composeDir copies docker-compose.yml next to a .env made the way deploy/README.md says, from
// deploy/compose.env.example with the Redis password filled in, and the secret files.
func composeDir(t *testing.T, redisPassword string) string {
	t.Helper()
	dir := t.TempDir()
	compose, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(composeEnv)
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Replace(string(example), "\nREDIS_PASSWORD=\n", "\nREDIS_PASSWORD="+redisPassword+"\n", 1)
	if redisPassword != "" && !strings.Contains(env, testRedisPass) {
		t.Fatalf("%s no longer has an empty REDIS_PASSWORD= line to fill in", composeEnv)
	}
	for name, data := range map[string][]byte{"docker-compose.yml": compose, ".env": []byte(env)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The secret files deploy/README.md has the user write.
	if err := os.Mkdir(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, value := range map[string]string{"slack_app_token": "xapp-1", "slack_bot_token": "xoxb-1", "tap_encryption_key": testEncKey} {
		if err := os.WriteFile(filepath.Join(dir, "secrets", name), []byte(value), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestComposeFile loads docker-compose.yml as docker compose would, with a .env from the example,
// and checks what tapbot needs of it.
func TestComposeFile(t *testing.T) {
	dir := composeDir(t, testRedisPass)
	p, err := LoadCompose(context.Background(), filepath.Join(dir, "docker-compose.yml"))
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if problems := ComposeProblems(p, knownVars(t)); len(problems) > 0 {
		t.Errorf("docker-compose.yml:\n  %s", strings.Join(problems, "\n  "))
	}
	bot, _ := p.GetService("tapbot")
	if got := *bot.Environment["REDIS_URL"]; got != "redis://:"+testRedisPass+"@redis:6379/0" {
		t.Errorf("tapbot gets REDIS_URL %q, want the password from .env", got)
	}
	if got := bot.Environment["TAP_APPROVERS"]; got == nil || *got != "S0123ABCD" {
		t.Errorf("tapbot gets TAP_APPROVERS %v, want the example's S0123ABCD from .env", got)
	}
	if got, ok := bot.Environment["TAP_REQUESTERS"]; ok && got != nil {
		t.Errorf("tapbot gets TAP_REQUESTERS %q, which .env does not set", *got)
	}
	if s := p.Secrets["slack_bot_token"]; s.File != filepath.Join(dir, "secrets", "slack_bot_token") {
		t.Errorf("the secret slack_bot_token comes from %q, want secrets/slack_bot_token", s.File)
	}
}

// TestComposeNeedsRedisPassword: a .env copied from the example and left unfilled stops
// docker compose with a sentence saying what to do, rather than starting an open Redis.
func TestComposeNeedsRedisPassword(t *testing.T) {
	dir := composeDir(t, "")
	_, err := LoadCompose(context.Background(), filepath.Join(dir, "docker-compose.yml"))
	want := "set REDIS_PASSWORD in .env (make one with openssl rand -hex 32)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v; want one saying %q", err, want)
	}
}

// TestComposeRejectsBrokenFiles proves the Compose check can fail.
func TestComposeRejectsBrokenFiles(t *testing.T) {
	tests := map[string]string{
		"misspelt-key.yml":               "services.tapbot.healthchek false schema",
		"depends-on-missing-service.yml": `depends on undefined service "redis"`,
		"bad-condition.yml":              "depends_on.redis.condition value must be one of",
		"restart-list.yml":               "services.tapbot.restart must be a string",
	}
	files, _ := filepath.Glob("testdata/broken-compose/*.yml")
	if len(files) != len(tests) {
		t.Errorf("testdata/broken-compose has %d files and the table %d: keep them in step", len(files), len(tests))
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := LoadCompose(context.Background(), filepath.Join("testdata/broken-compose", name))
			if err == nil {
				t.Fatalf("accepted; want an error saying %q", want)
			}
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not say %q", err, want)
			}
		})
	}
}

// TestComposeRulesCatchAWeakFile proves the Compose rules can fail on a valid Compose file.
func TestComposeRulesCatchAWeakFile(t *testing.T) {
	p, err := LoadCompose(context.Background(), "testdata/weak-compose/docker-compose.yml")
	if err != nil {
		t.Fatalf("testdata/weak-compose must be valid Compose: %v", err)
	}
	want := []string{
		"tapbot: must be built from the Dockerfile at the repository root (build: .)",
		"tapbot: healthcheck must run the image's probe of /healthz",
		"tapbot: depends_on redis must wait for condition service_healthy",
		`tapbot: restart must be unless-stopped or always, not "no"`,
		"tapbot: security_opt must hold no-new-privileges:true",
		"redis: security_opt must hold no-new-privileges:true",
		"tapbot: stop_grace_period must exceed TAP_SHUTDOWN_TIMEOUT (20s) plus 15s, or docker stop kills in-flight approvals",
		"tapbot: REDIS_URL must point at the redis service (redis:6379)",
		"tapbot: no SLACK_APP_TOKEN_FILE, so tapbot finds no SLACK_APP_TOKEN",
		"tapbot: SLACK_BOT_TOKEN is in the environment; give it as a secret file and set SLACK_BOT_TOKEN_FILE",
		"tapbot: SLACK_BOT_TOKEN_FILE is /run/secrets/bot_token, which is none of its secrets",
		"secret tap_encryption_key: must be a file: Compose can hand a read-only container no other kind",
		"tapbot: env_file hands tapbot every line of " + abs(t, "testdata/weak-compose/settings.list") + ", secrets included; name its variables under environment:",
		"tapbot: AZURE_AUTHORITY_HOST, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, GRAPH_BASE_URL, SLACK_API_URL, " +
			"TAP_ALLOW_SELF_REQUEST, TAP_APPROVAL_CHANNEL, TAP_APPROVERS, TAP_AUDIT_CHANNEL, TAP_AUDIT_LOG_RETENTION, TAP_AUDIT_RETENTION, " +
			"TAP_DEFAULT_LIFETIME, TAP_GRAPH_CONCURRENCY, TAP_GRAPH_TIMEOUT, TAP_GROUP_CACHE_TTL, TAP_MAX_LIFETIME, " +
			"TAP_ONBOARDING, TAP_ONBOARDING_NOTICE, TAP_ONBOARDING_START, " +
			"TAP_PROTECTED_APPROVERS, TAP_PROTECTED_GROUPS, TAP_RATE_PER_REQUESTER, TAP_REDIS_REPLICAS, TAP_REMIND_AFTER, TAP_REQUESTERS, " +
			"TAP_REQUEST_TTL, TAP_REVOKE_AFTER_REGISTRATION, TAP_ROUTE_TO_MANAGER, TAP_SHUTDOWN_TIMEOUT, TAP_SLACK_PACING, " +
			"TAP_TENANT_WATCH_INTERVAL, TAP_WATCH_INTERVAL set in .env would not reach tapbot; list them under environment:",
		"tapbot: tapbot reads no variable TAP_APROVERS",
		"tapbot: read_only must be true",
		"tapbot: cap_drop must hold ALL",
		"tapbot: user must be a non-root user ID",
		"tapbot: port 8080 is published on every interface; bind it to 127.0.0.1",
		"redis: command lacks --requirepass",
		"redis: command lacks --appendonly yes",
		"redis: command lacks --appendfsync always",
		"redis: command lacks --maxmemory-policy noeviction",
		"redis: /data must be a volume, or every request is lost with the container",
		"redis: must publish no ports",
		"redis: network default must be internal, so only tapbot reaches Redis",
	}
	assertProblems(t, ComposeProblems(p, knownVars(t)), want)
}

// TestDockerignore checks what the image build is sent: the sources the Dockerfile compiles, and
// no .env file or Kubernetes secret.
func TestDockerignore(t *testing.T) {
	sent := []string{"go.mod", "go.sum", "cmd/tapbot/main.go", "approvals/service.go", "deploy/healthcheck/main.go", "Dockerfile"}
	kept := []string{".env", ".env.local", "deploy/tapbot.env", "cmd/tapbot/.env", ".git/config",
		"deploy/kubernetes/secret.example.yaml", "deploy/check/go.mod", "tapbot.test", "secrets/slack_bot_token", "tapbot-entra.env"}
	ignored, err := DockerIgnored(dockerignore, append(sent, kept...)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range sent {
		if ignored[p] {
			t.Errorf(".dockerignore leaves out %s, which the image build needs", p)
		}
		if _, err := os.Stat(filepath.Join(repoRoot, p)); err != nil {
			t.Errorf("%s: %v (update this test's list)", p, err)
		}
	}
	for _, p := range kept {
		if !ignored[p] {
			t.Errorf(".dockerignore sends %s to the image build", p)
		}
	}
}

func abs(t *testing.T, path string) string {
	t.Helper()
	a, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func assertProblems(t *testing.T, got, want []string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missing problem: %s", w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			t.Errorf("unexpected problem: %s", g)
		}
	}
}
