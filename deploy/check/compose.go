package check

import (
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
)

// ComposeProblems lists what would make the Compose deployment of tapbot fail or unsafe although
// the file is valid Compose. known is KnownVars; REDIS_PASSWORD is Compose's own.
func ComposeProblems(p *types.Project, known map[string]bool) []string {
	var out problems
	bot, err := p.GetService("tapbot")
	if err != nil {
		out.add("no service tapbot")
		return out
	}
	redis, err := p.GetService("redis")
	if err != nil {
		out.add("no service redis")
		return out
	}
	env := func(k string) string {
		if v := bot.Environment[k]; v != nil {
			return *v
		}
		return ""
	}

	if bot.Build == nil || bot.Build.Context != p.WorkingDir {
		out.add("tapbot: must be built from the Dockerfile at the repository root (build: .)")
	}
	if h := bot.HealthCheck; h == nil || h.Disable || !slices.Contains(h.Test, healthPath) {
		out.add("tapbot: healthcheck must run the image's probe of %s", healthPath)
	}
	if dep, ok := bot.DependsOn["redis"]; !ok || dep.Condition != types.ServiceConditionHealthy {
		out.add("tapbot: depends_on redis must wait for condition service_healthy")
	}
	for _, s := range []types.ServiceConfig{bot, redis} {
		if s.Restart != types.RestartPolicyUnlessStopped && s.Restart != types.RestartPolicyAlways {
			out.add("%s: restart must be unless-stopped or always, not %q", s.Name, s.Restart)
		}
		if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			out.add("%s: security_opt must hold no-new-privileges:true", s.Name)
		}
	}

	shutdown, err := duration(env("TAP_SHUTDOWN_TIMEOUT"), defaultShutdownTimeout)
	if err != nil {
		out.add("tapbot: TAP_SHUTDOWN_TIMEOUT: %v", err)
	}
	if g := bot.StopGracePeriod; g == nil || time.Duration(*g) <= shutdown+httpCloseTime {
		out.add("tapbot: stop_grace_period must exceed TAP_SHUTDOWN_TIMEOUT (%s) plus %s, or docker stop kills in-flight approvals", shutdown, httpCloseTime)
	}

	if u, err := url.Parse(env("REDIS_URL")); err != nil || u.Host != "redis:6379" {
		out.add("tapbot: REDIS_URL must point at the redis service (redis:6379)")
	} else if pw, _ := u.User.Password(); pw == "" {
		out.add("tapbot: REDIS_URL carries no password")
	}
	out.composeSecrets(p, bot, env)
	for k := range bot.Environment {
		if !known[k] && k != "REDIS_PASSWORD" {
			out.add("tapbot: tapbot reads no variable %s", k)
		}
	}
	if len(bot.EnvFiles) > 0 {
		out.add("tapbot: env_file hands tapbot every line of %s, secrets included; name its variables under environment:", bot.EnvFiles[0].Path)
	}
	var dropped []string
	for _, k := range sortedKeys(boolKeys(known)) {
		if _, ok := bot.Environment[k]; !ok && passedFromDotEnv(k) {
			dropped = append(dropped, k)
		}
	}
	if len(dropped) > 0 {
		out.add("tapbot: %s set in .env would not reach tapbot; list them under environment:", strings.Join(dropped, ", "))
	}
	if !bot.ReadOnly {
		out.add("tapbot: read_only must be true")
	}
	if !slices.Contains(bot.CapDrop, "ALL") {
		out.add("tapbot: cap_drop must hold ALL")
	}
	if bot.User == "" || strings.HasPrefix(bot.User, "0") || strings.HasPrefix(bot.User, "root") {
		out.add("tapbot: user must be a non-root user ID")
	}
	for _, port := range bot.Ports {
		if port.HostIP != "127.0.0.1" && port.HostIP != "::1" {
			out.add("tapbot: port %d is published on every interface; bind it to 127.0.0.1", port.Target)
		}
	}

	cmd := strings.Join(redis.Command, " ")
	for _, want := range []string{"--requirepass ", "--appendonly yes", "--appendfsync always", "--maxmemory-policy noeviction"} {
		if !strings.Contains(cmd, want) {
			out.add("redis: command lacks %s", strings.TrimSpace(want))
		}
	}
	if !slices.ContainsFunc(redis.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == "/data" && v.Source != "" }) {
		out.add("redis: /data must be a volume, or every request is lost with the container")
	}
	if len(redis.Ports) > 0 {
		out.add("redis: must publish no ports")
	}
	for name := range redis.Networks {
		if n, ok := p.Networks[name]; !ok || !n.Internal {
			out.add("redis: network %s must be internal, so only tapbot reaches Redis", name)
		}
	}
	if len(redis.Networks) == 0 {
		out.add("redis: must be only on an internal network, not the default one")
	}
	return out
}

// composeSecrets checks that the Slack tokens and TAP_ENCRYPTION_KEY reach tapbot as secret files
// from the host, named by their *_FILE variables, and never as environment values. REDIS_URL is
// the exception: Compose builds it from REDIS_PASSWORD, which Redis's own command line needs too.
func (out *problems) composeSecrets(p *types.Project, bot types.ServiceConfig, env func(string) string) {
	for _, v := range fileSecretVars {
		if v == "REDIS_URL" {
			continue
		}
		if _, ok := bot.Environment[v]; ok {
			out.add("tapbot: %s is in the environment; give it as a secret file and set %s_FILE", v, v)
		}
		file := env(v + "_FILE")
		if file == "" {
			out.add("tapbot: no %s_FILE, so tapbot finds no %s", v, v)
			continue
		}
		i := slices.IndexFunc(bot.Secrets, func(s types.ServiceSecretConfig) bool { return secretTarget(s) == file })
		if i < 0 {
			out.add("tapbot: %s_FILE is %s, which is none of its secrets", v, file)
			continue
		}
		source := bot.Secrets[i].Source
		if sec, ok := p.Secrets[source]; !ok || sec.File == "" {
			out.add("secret %s: must be a file: Compose can hand a read-only container no other kind", source)
		}
	}
}

// secretTarget is where Compose mounts a service's secret.
func secretTarget(s types.ServiceSecretConfig) string {
	t := s.Target
	if t == "" {
		t = s.Source
	}
	if !strings.HasPrefix(t, "/") {
		t = "/run/secrets/" + t
	}
	return t
}

// passedFromDotEnv reports whether a variable of tapbot's is one a user may set in .env, so
// docker-compose.yml must hand it on: all but those Compose sets itself, the secrets that are
// files, and azidentity's certificate and token paths, which need mounts of their own.
func passedFromDotEnv(k string) bool {
	switch {
	case strings.HasSuffix(k, "_FILE"), k == "REDIS_URL", k == "TAP_HTTP_ADDR",
		k == "AZURE_CLIENT_CERTIFICATE_PATH", k == "AZURE_FEDERATED_TOKEN_FILE":
		return false
	case slices.Contains(fileSecretVars, k):
		return false
	}
	return true
}

func boolKeys(m map[string]bool) map[string]string {
	out := make(map[string]string, len(m))
	for k := range m {
		out[k] = ""
	}
	return out
}
