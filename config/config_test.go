package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapbot/tapbot/config"
)

const key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="

func env(overrides map[string]string) func(string) string {
	base := map[string]string{
		"SLACK_APP_TOKEN":      "xapp-1-A-1-abc",
		"SLACK_BOT_TOKEN":      "xoxb-1-abc",
		"TAP_APPROVAL_CHANNEL": "C0APPROVE",
		"TAP_APPROVERS":        "U0AAA, S0GROUP",
	}
	for k, v := range overrides {
		base[k] = v
	}
	return func(k string) string { return base[k] }
}

func TestLoadDefaults(t *testing.T) {
	c, err := config.Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.SlackAPIURL != "https://slack.com/api/" || c.GraphBaseURL != "https://graph.microsoft.com/v1.0" ||
		c.DefaultLifetime != time.Hour || c.MaxLifetime != 8*time.Hour || c.RequestTTL != 24*time.Hour ||
		c.HTTPAddr != ":8080" || c.RedisURL != "" || len(c.Approvers) != 2 || c.Requesters != nil ||
		c.GraphConcurrency != 8 || c.GraphTimeout != 30*time.Second || c.ShutdownTimeout != 20*time.Second ||
		c.GroupCacheTTL != 5*time.Minute || c.AllowSelfRequest || c.RouteToManager || c.RatePerRequester != 10 ||
		c.AuditRetention != 90*24*time.Hour || c.AuditChannel != "" || c.RedisReplicas != 0 {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestLoadNamesTheBadVariable(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]string
		want string // start of the one-line error
	}{
		{"no app token", map[string]string{"SLACK_APP_TOKEN": ""}, "SLACK_APP_TOKEN: required"},
		{"bot token as app token", map[string]string{"SLACK_APP_TOKEN": "xoxb-1"}, "SLACK_APP_TOKEN: must be an app-level token"},
		{"no bot token", map[string]string{"SLACK_BOT_TOKEN": ""}, "SLACK_BOT_TOKEN: required"},
		{"bad slack url", map[string]string{"SLACK_API_URL": "slack.com"}, "SLACK_API_URL:"},
		{"bad graph url", map[string]string{"GRAPH_BASE_URL": "ftp://x"}, "GRAPH_BASE_URL:"},
		{"secret without tenant", map[string]string{"AZURE_CLIENT_SECRET": "s", "AZURE_CLIENT_ID": "c"}, "AZURE_TENANT_ID: required"},
		{"channel name instead of ID", map[string]string{"TAP_APPROVAL_CHANNEL": "#approvals"}, "TAP_APPROVAL_CHANNEL:"},
		{"no approvers", map[string]string{"TAP_APPROVERS": " , "}, "TAP_APPROVERS: required"},
		{"handle as approver", map[string]string{"TAP_APPROVERS": "@ada"}, "TAP_APPROVERS:"},
		{"bad requester", map[string]string{"TAP_REQUESTERS": "ada"}, "TAP_REQUESTERS:"},
		{"zero default", map[string]string{"TAP_DEFAULT_LIFETIME": "0m"}, "TAP_DEFAULT_LIFETIME:"},
		{"default over max", map[string]string{"TAP_DEFAULT_LIFETIME": "9h"}, `TAP_DEFAULT_LIFETIME: "9h" is longer than TAP_MAX_LIFETIME (the default 8h)`},
		{"max over Entra's limit", map[string]string{"TAP_MAX_LIFETIME": "31d"}, "TAP_MAX_LIFETIME:"},
		{"bad ttl", map[string]string{"TAP_REQUEST_TTL": "soon"}, "TAP_REQUEST_TTL:"},
		{"redis without key", map[string]string{"REDIS_URL": "redis://localhost:6379"}, "TAP_ENCRYPTION_KEY: required when REDIS_URL"},
		{"short key", map[string]string{"REDIS_URL": "redis://localhost:6379", "TAP_ENCRYPTION_KEY": "c2hvcnQ="}, "TAP_ENCRYPTION_KEY:"},
		{"bad redis url", map[string]string{"REDIS_URL": "localhost:6379", "TAP_ENCRYPTION_KEY": key}, "REDIS_URL:"},
		{"bad listen address", map[string]string{"TAP_HTTP_ADDR": "8080"}, "TAP_HTTP_ADDR:"},
		{"zero concurrency", map[string]string{"TAP_GRAPH_CONCURRENCY": "0"}, "TAP_GRAPH_CONCURRENCY:"},
		{"graph timeout without unit", map[string]string{"TAP_GRAPH_TIMEOUT": "30"}, "TAP_GRAPH_TIMEOUT:"},
		{"negative shutdown", map[string]string{"TAP_SHUTDOWN_TIMEOUT": "-1s"}, "TAP_SHUTDOWN_TIMEOUT:"},
		{"self request yes-ish", map[string]string{"TAP_ALLOW_SELF_REQUEST": "sometimes"}, "TAP_ALLOW_SELF_REQUEST:"},
		{"group name not ID", map[string]string{"TAP_PROTECTED_GROUPS": "Domain Admins"}, "TAP_PROTECTED_GROUPS:"},
		{"protected approver handle", map[string]string{"TAP_PROTECTED_APPROVERS": "@sec"}, "TAP_PROTECTED_APPROVERS:"},
		{"zero rate", map[string]string{"TAP_RATE_PER_REQUESTER": "0"}, "TAP_RATE_PER_REQUESTER:"},
		{"audit channel name", map[string]string{"TAP_AUDIT_CHANNEL": "#audit"}, "TAP_AUDIT_CHANNEL:"},
		{"audit retention", map[string]string{"TAP_AUDIT_RETENTION": "forever"}, "TAP_AUDIT_RETENTION:"},
		{"group cache", map[string]string{"TAP_GROUP_CACHE_TTL": "5"}, "TAP_GROUP_CACHE_TTL:"},
		{"replicas not a number", map[string]string{"REDIS_URL": "redis://localhost:6379", "TAP_ENCRYPTION_KEY": key, "TAP_REDIS_REPLICAS": "one"},
			`TAP_REDIS_REPLICAS: "one" is not a number of replicas from 0 to 5`},
		{"negative replicas", map[string]string{"REDIS_URL": "redis://localhost:6379", "TAP_ENCRYPTION_KEY": key, "TAP_REDIS_REPLICAS": "-1"}, "TAP_REDIS_REPLICAS:"},
		{"too many replicas", map[string]string{"REDIS_URL": "redis://localhost:6379", "TAP_ENCRYPTION_KEY": key, "TAP_REDIS_REPLICAS": "11"}, "TAP_REDIS_REPLICAS:"},
		{"replicas of the embedded store", map[string]string{"TAP_REDIS_REPLICAS": "1"}, "TAP_REDIS_REPLICAS: needs REDIS_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(env(tt.set))
			if err == nil {
				t.Fatalf("Load accepted %v", tt.set)
			}
			if !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error = %q, want one line starting %q", err, tt.want)
			}
		})
	}
}

func TestLoadRedisWithKeys(t *testing.T) {
	c, err := config.Load(env(map[string]string{"REDIS_URL": "rediss://:pw@redis:6380/1", "TAP_ENCRYPTION_KEY": key + "," + key}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.EncryptionKeys) != 2 {
		t.Fatalf("keys = %d, want 2", len(c.EncryptionKeys))
	}
	if c.RedisReplicas != 0 {
		t.Fatalf("TAP_REDIS_REPLICAS unset = %d, want 0 (no WAIT)", c.RedisReplicas)
	}
}

// TestLoadRedisReplicas: TAP_REDIS_REPLICAS is how many replicas must acknowledge a claim.
func TestLoadRedisReplicas(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  int
	}{{"", 0}, {"0", 0}, {"1", 1}, {"5", 5}} {
		c, err := config.Load(env(map[string]string{"REDIS_URL": "redis://redis:6379", "TAP_ENCRYPTION_KEY": key, "TAP_REDIS_REPLICAS": tt.value}))
		if err != nil || c.RedisReplicas != tt.want {
			t.Fatalf("TAP_REDIS_REPLICAS=%q: %d, %v; want %d", tt.value, c.RedisReplicas, err, tt.want)
		}
	}
}

func TestLoadDotEnvNeverOverridesTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".env")
	content := "# comment\nTAPBOT_TEST_A=from-file\nexport TAPBOT_TEST_B=\"quoted value\"\nTAPBOT_TEST_C=file\nTAPBOT_TEST_D=value   # a comment\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TAPBOT_TEST_C", "env")
	t.Setenv("TAPBOT_TEST_A", "")
	os.Unsetenv("TAPBOT_TEST_A")
	t.Setenv("TAPBOT_TEST_B", "")
	os.Unsetenv("TAPBOT_TEST_B")
	t.Setenv("TAPBOT_TEST_D", "")
	os.Unsetenv("TAPBOT_TEST_D")
	if err := config.LoadDotEnv(path); err != nil {
		t.Fatal(err)
	}
	if a, b, c := os.Getenv("TAPBOT_TEST_A"), os.Getenv("TAPBOT_TEST_B"), os.Getenv("TAPBOT_TEST_C"); a != "from-file" || b != "quoted value" || c != "env" {
		t.Fatalf("after .env: A=%q B=%q C=%q", a, b, c)
	}
	if d := os.Getenv("TAPBOT_TEST_D"); d != "value" {
		t.Fatalf("an inline comment stayed in the value: %q", d)
	}
	if err := config.LoadDotEnv(filepath.Join(dir, "missing")); err != nil {
		t.Fatalf("a missing .env is not an error: %v", err)
	}
	if err := os.WriteFile(path, []byte("NOEQUALS\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := config.LoadDotEnv(path); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("bad line error = %v", err)
	}
}

// TestLoadReportsEveryProblemAtOnce: one start names every missing or wrong variable, one line
// each, in the order Load reads them, and errors.As still finds a *config.Error.
func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	tests := []struct {
		name string
		env  func(string) string
		want []string // each problem's start, in order
	}{
		{
			name: "empty configuration",
			env:  func(string) string { return "" },
			want: []string{"SLACK_APP_TOKEN: required", "SLACK_BOT_TOKEN: required", "TAP_APPROVAL_CHANNEL: required", "TAP_APPROVERS: required"},
		},
		{
			name: "many wrong values",
			env: env(map[string]string{
				"SLACK_BOT_TOKEN": "xapp-1", "TAP_APPROVAL_CHANNEL": "#approvals", "TAP_REQUEST_TTL": "30s",
				"TAP_GRAPH_TIMEOUT": "30", "REDIS_URL": "redis://localhost:6379", "TAP_HTTP_ADDR": "8080",
				"TAP_GROUP_CACHE_TTL": "forever", "TAP_WATCH_INTERVAL": "off", "TAP_REVOKE_AFTER_REGISTRATION": "true",
			}),
			want: []string{
				"SLACK_BOT_TOKEN: must be a bot token", `TAP_GRAPH_TIMEOUT: "30" is not a duration`, "TAP_APPROVAL_CHANNEL:",
				`TAP_REQUEST_TTL: "30s" is too short`, "TAP_ENCRYPTION_KEY: required when REDIS_URL is set", "TAP_HTTP_ADDR:",
				`TAP_GROUP_CACHE_TTL: "forever" is not a duration`, "TAP_REVOKE_AFTER_REGISTRATION: needs TAP_WATCH_INTERVAL",
			},
		},
		{
			// A comparison with a variable that is itself wrong would be noise: only the wrong one is named.
			name: "no follow-on problems",
			env:  env(map[string]string{"TAP_MAX_LIFETIME": "forever", "TAP_DEFAULT_LIFETIME": "9h", "TAP_REQUEST_TTL": "soon", "TAP_REMIND_AFTER": "2d"}),
			want: []string{`TAP_MAX_LIFETIME: "forever"`, `TAP_REQUEST_TTL: "soon"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(tt.env)
			problems := config.Problems(err)
			var got []string
			for _, p := range problems {
				got = append(got, p.Error())
				if strings.Contains(p.Error(), "\n") {
					t.Errorf("a problem spans lines: %q", p)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("problems:\n  %s\nwant %d starting:\n  %s", strings.Join(got, "\n  "), len(tt.want), strings.Join(tt.want, "\n  "))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("problem %d = %q, want it to start %q", i+1, got[i], w)
				}
			}
			var first *config.Error
			if !errors.As(err, &first) || first.Error() != got[0] {
				t.Errorf("errors.As found %v, want the first problem %q", first, got[0])
			}
		})
	}
}

// TestLoadKeepsWhatIsRight: with some variables wrong, the Config still holds every other value,
// for tapbot doctor to check what does not depend on the wrong ones.
func TestLoadKeepsWhatIsRight(t *testing.T) {
	c, err := config.Load(env(map[string]string{"TAP_APPROVERS": "@ada", "SLACK_APP_TOKEN": "", "REDIS_URL": "redis://r:6379", "TAP_ENCRYPTION_KEY": key}))
	if err == nil {
		t.Fatal("Load accepted a handle as approver")
	}
	if c.SlackBotToken != "xoxb-1-abc" || c.ApprovalChannel != "C0APPROVE" || c.RedisURL != "redis://r:6379" || len(c.EncryptionKeys) != 1 ||
		c.Approvers != nil || c.SlackAppToken != "" || c.RequestTTL != 24*time.Hour {
		t.Fatalf("partial config = %+v", c)
	}
}
