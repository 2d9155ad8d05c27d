package config_test

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tapbot/tapbot/config"
)

// TestPlaceholdersAreRefused: each kind of placeholder the templates use is refused by the
// variable that holds it, and a secret's placeholder is not echoed.
func TestPlaceholdersAreRefused(t *testing.T) {
	tests := []struct {
		set  map[string]string
		want string
	}{
		{map[string]string{"SLACK_APP_TOKEN": "xapp-..."}, "SLACK_APP_TOKEN: still the example value; use the app-level token"},
		{map[string]string{"SLACK_APP_TOKEN": "xapp-REPLACE_ME"}, "SLACK_APP_TOKEN: still the example value"},
		{map[string]string{"SLACK_BOT_TOKEN": "xoxb-…"}, "SLACK_BOT_TOKEN: still the example value; use the bot token"},
		{map[string]string{"AZURE_TENANT_ID": "00000000-0000-0000-0000-000000000000"}, `AZURE_TENANT_ID: "00000000-0000-0000-0000-000000000000" is still the example value; use the Directory (tenant) ID`},
		{map[string]string{"AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000000"}, `AZURE_CLIENT_ID: "00000000-0000-0000-0000-000000000000" is still the example value; use the Application (client) ID`},
		{map[string]string{"AZURE_CLIENT_SECRET": "REPLACE_ME", "AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c"}, "AZURE_CLIENT_SECRET: still the example value; use the client secret's Value"},
		{map[string]string{"TAP_APPROVAL_CHANNEL": "C0123ABCD"}, `TAP_APPROVAL_CHANNEL: "C0123ABCD" is still the example value`},
		{map[string]string{"TAP_APPROVERS": "U0AAA,S0123ABCD"}, `TAP_APPROVERS: "S0123ABCD" is still the example value; use member IDs`},
		{map[string]string{"TAP_REQUESTERS": "S0123ABCE"}, `TAP_REQUESTERS: "S0123ABCE" is still the example value`},
		{map[string]string{"TAP_PROTECTED_APPROVERS": "U0123ABCD"}, `TAP_PROTECTED_APPROVERS: "U0123ABCD" is still the example value`},
		{map[string]string{"TAP_AUDIT_CHANNEL": "C0123ABCE"}, `TAP_AUDIT_CHANNEL: "C0123ABCE" is still the example value`},
		{map[string]string{"TAP_PROTECTED_GROUPS": "00000000-0000-0000-0000-000000000000"}, `TAP_PROTECTED_GROUPS: "00000000-0000-0000-0000-000000000000" is still the example value`},
		{map[string]string{"REDIS_URL": "rediss://:REPLACE_ME@redis.example.internal:6380/0", "TAP_ENCRYPTION_KEY": key}, "REDIS_URL: still the example value"},
		{map[string]string{"TAP_ENCRYPTION_KEY": "REPLACE_ME"}, "TAP_ENCRYPTION_KEY: still the example value; make a key with: openssl rand -base64 32"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := config.Load(env(tt.set))
			problems := config.Problems(err)
			if len(problems) != 1 || !strings.HasPrefix(problems[0].Error(), tt.want) {
				t.Fatalf("problems = %v, want one starting %q", problems, tt.want)
			}
			if secret := problems[0].Var; strings.Contains(secret, "TOKEN") || strings.Contains(secret, "SECRET") ||
				strings.Contains(secret, "KEY") || strings.Contains(secret, "REDIS") {
				if strings.Contains(problems[0].Problem, `"`+tt.set[secret]+`"`) {
					t.Errorf("the message repeats a secret's value: %q", problems[0])
				}
			}
		})
	}
}

// TestTemplatesLeftUnfilledAreRefused copies each template as README.md and deploy/README.md say
// (cp ... .env, with Compose's generated values filled in) and starts with it unchanged: every
// value the template sets is refused as still the example value, and nothing else is.
func TestTemplatesLeftUnfilledAreRefused(t *testing.T) {
	tests := []struct {
		template string
		fill     map[string]string // what deploy/README.md says to generate
		compose  bool              // Compose builds REDIS_URL from REDIS_PASSWORD
	}{
		{template: "../.env.example"},
		{template: "../deploy/compose.env.example", fill: map[string]string{"REDIS_PASSWORD": "0123456789abcdef"}, compose: true},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.template), func(t *testing.T) {
			set := templateValues(t, tt.template)
			for k, v := range tt.fill {
				if _, ok := set[k]; !ok {
					t.Fatalf("%s has no %s= to fill in", tt.template, k)
				}
				set[k] = v
			}
			dir := t.TempDir()
			if tt.compose {
				set["REDIS_URL"] = "redis://:" + set["REDIS_PASSWORD"] + "@redis:6379/0"
				// Compose mounts the Slack tokens and the key as files from secrets/ (deploy/README.md).
				for name, v := range map[string]string{"SLACK_APP_TOKEN": "xapp-1-A0-1-secret", "SLACK_BOT_TOKEN": "xoxb-1-secret", "TAP_ENCRYPTION_KEY": key} {
					path := filepath.Join(dir, strings.ToLower(name))
					if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
						t.Fatal(err)
					}
					set[name+"_FILE"] = path
				}
			}
			var lines []string
			for k, v := range set {
				lines = append(lines, k+"="+v)
				t.Setenv(k, "x")
				os.Unsetenv(k) // LoadDotEnv fills in only what the environment does not set
			}
			path := filepath.Join(dir, ".env")
			if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := config.LoadDotEnv(path); err != nil {
				t.Fatal(err)
			}
			_, err := config.Load(func(k string) string {
				if _, ok := set[k]; ok {
					return os.Getenv(k)
				}
				return ""
			})
			var refused []string
			for _, p := range config.Problems(err) {
				if !strings.Contains(p.Problem, "still the example value") {
					t.Errorf("%s: a problem other than a placeholder: %v", tt.template, p)
				}
				refused = append(refused, p.Var)
			}
			for k, v := range set {
				if v == "" || tt.fill[k] != "" || k == "REDIS_PASSWORD" || tt.compose && (k == "REDIS_URL" || strings.HasSuffix(k, "_FILE")) {
					continue
				}
				if !slices.Contains(refused, k) {
					t.Errorf("%s: %s=%s left as it is was not refused", tt.template, k, v)
				}
			}
			if len(refused) == 0 {
				t.Fatalf("%s unchanged passed validation", tt.template)
			}
		})
	}
}

// templateValues reads the variables a template sets (commented-out lines are not set).
func templateValues(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=VALUE", path, line)
		}
		if i := strings.Index(v, " #"); i >= 0 {
			v = v[:i]
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out
}

// TestComposeTemplateIsASubset: the two templates have two purposes, and .env.example lists every
// variable; the Compose template adds only the Redis password Compose itself reads.
func TestComposeTemplateIsASubset(t *testing.T) {
	names := func(path string) map[string]bool {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, line := range strings.Split(string(raw), "\n") {
			line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
			if k, _, ok := strings.Cut(line, "="); ok && k != "" && strings.ToUpper(k) == k && !strings.ContainsAny(k, " ") {
				out[k] = true
			}
		}
		return out
	}
	all := names("../.env.example")
	for k := range names("../deploy/compose.env.example") {
		if !all[k] && k != "REDIS_PASSWORD" {
			t.Errorf("deploy/compose.env.example sets %s, which .env.example does not list", k)
		}
	}
}
