package check

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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
		"container tapbot: envFrom must name the Secret tapbot-secrets",
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

// composeDir copies docker-compose.yml next to a .env made the way deploy/README.md says: from
// deploy/compose.env.example, with the two generated values filled in.
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
	env = strings.Replace(env, "\nTAP_ENCRYPTION_KEY=\n", "\nTAP_ENCRYPTION_KEY="+testEncKey+"\n", 1)
	if (redisPassword != "" && !strings.Contains(env, testRedisPass)) || !strings.Contains(env, testEncKey) {
		t.Fatalf("%s no longer has empty REDIS_PASSWORD= and TAP_ENCRYPTION_KEY= lines to fill in", composeEnv)
	}
	for name, data := range map[string][]byte{"docker-compose.yml": compose, ".env": []byte(env)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
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
	if got := *bot.Environment["SLACK_BOT_TOKEN"]; got != "xoxb-REPLACE_ME" {
		t.Errorf("tapbot gets SLACK_BOT_TOKEN %q from .env, want the example's placeholder", got)
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
		"tapbot: TAP_ENCRYPTION_KEY is empty; tapbot refuses to start with Redis without it",
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
		"deploy/kubernetes/secret.example.yaml", "deploy/check/go.mod", "tapbot.test"}
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
