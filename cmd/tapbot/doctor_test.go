package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapbot/tapbot/internal/graphfake"
)

// doctor runs `tapbot doctor` in-process with the world's environment (tapbot itself is not
// started: build the world withoutStart) and returns what it printed.
func (w *world) doctor() (string, error) {
	w.t.Helper()
	for k, v := range w.env {
		w.t.Setenv(k, v) // azidentity reads AZURE_* from the process environment
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := runDoctorWith(ctx, os.Getenv, &out, hostRouter{w.graph.Addr(): w.graph.Transport()})
	return out.String(), err
}

// assertNoSecret fails when the doctor's output holds a token, secret or key of the world, or
// any of extra.
func (w *world) assertNoSecret(out string, extra ...string) {
	w.t.Helper()
	secrets := append([]string{w.graph.ClientSecret(), w.env["SLACK_BOT_TOKEN"], w.env["SLACK_APP_TOKEN"],
		"xoxb-test-token", "xapp-test-token", graphfake.TokenPrefix}, extra...)
	if k := w.env["TAP_ENCRYPTION_KEY"]; k != "" {
		secrets = append(secrets, k)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			w.t.Errorf("doctor's output shows a secret (%.6s…):\n%s", s, out)
		}
	}
}

// allGreen is every line an all-green run with Redis prints, by prefix.
var allGreen = []string{
	"✓ Configuration: read (approval channel CAPPROVALS, redis store)",
	"✓ Slack bot token: accepted for workspace tapbot-fake (bot @tapbot)",
	"✓ Slack bot scopes: all 8 present",
	"✓ Slack socket mode: the app-level token opens socket-mode connections",
	"✓ Approval channel (TAP_APPROVAL_CHANNEL): the bot is in #capprovals",
	"✓ Audit channel: TAP_AUDIT_CHANNEL is not set",
	"✓ Approvers (TAP_APPROVERS): UAPPROVER (@approver), SAPPROVERS (1 member)",
	"✓ Requesters: TAP_REQUESTERS is not set",
	"✓ Protected approvers: TAP_PROTECTED_APPROVERS is not set",
	"✓ Graph sign-in: Entra ID issued an access token",
	"✓ Graph permissions: all 6 application permissions granted",
	"✓ TAP policy: enabled; lifetimes 1h to 8h, default 1h",
	"✓ New hires: TAP_ONBOARDING is off",
	"✓ Tenant watch: tapbot can read Entra ID's audit log (AuditLog.Read.All)",
	"✓ Store: Redis at ",
	"✓ Redis writable: wrote, read and deleted a key",
	"✓ Encryption key: 1 key; seal and open round-trip",
	"All 17 checks passed.",
}

func requireLines(t *testing.T, out string, prefixes ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for _, p := range prefixes {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, p) }) {
			t.Errorf("no line starting %q in:\n%s", p, out)
		}
	}
}

func TestDoctorAllGreen(t *testing.T) {
	w := newWorld(t, withoutStart, withRedis)
	out, err := w.doctor()
	if err != nil {
		t.Fatalf("doctor = %v, want nil\n%s", err, out)
	}
	requireLines(t, out, allGreen...)
	if n := strings.Count(out, "\n"); n != len(allGreen) {
		t.Errorf("%d lines, want %d:\n%s", n, len(allGreen), out)
	}
	if strings.Contains(out, "✗") || strings.Contains(out, "○") {
		t.Errorf("an all-green run shows a failure or a skip:\n%s", out)
	}
	w.assertNoSecret(out)
	if dump := w.redisDump(); strings.Contains(dump, "doctor") {
		t.Errorf("doctor left a key in Redis:\n%s", dump)
	}
	t.Logf("all green:\n%s", out)
}

func TestDoctorAllGreenEmbeddedStore(t *testing.T) {
	w := newWorld(t, withoutStart, withEnv("TAP_AUDIT_CHANNEL", general),
		withEnv("TAP_REQUESTERS", manager), withEnv("TAP_PROTECTED_APPROVERS", "SAPPROVERS"))
	out, err := w.doctor()
	if err != nil {
		t.Fatalf("doctor = %v, want nil\n%s", err, out)
	}
	requireLines(t, out,
		"✓ Configuration: read (approval channel CAPPROVALS, embedded store)",
		"✓ Audit channel (TAP_AUDIT_CHANNEL): the bot is in #cgeneral",
		"✓ Requesters (TAP_REQUESTERS): UMANAGER (@manager)",
		"✓ Protected approvers (TAP_PROTECTED_APPROVERS): SAPPROVERS (1 member)",
		"✓ Store: embedded (REDIS_URL is not set): fine for a single replica",
		"✓ Encryption key: TAP_ENCRYPTION_KEY is not set",
		"All 16 checks passed.")
	w.assertNoSecret(out)
}

// TestDoctorNamesEachFailure breaks one thing at a time: the ✗ line must name it and say what to
// do, the checks that depend on it are skipped, the others still run, and the error counts the
// failures.
func TestDoctorNamesEachFailure(t *testing.T) {
	allBut := func(list []string, drop string) []string {
		return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return s == drop })
	}
	tests := []struct {
		name   string
		opts   []worldOption
		setup  func(w *world)
		want   []string // line prefixes (or fragments after the prefix) that must be printed
		failed int
	}{
		{
			name: "wrong bot token",
			opts: []worldOption{withEnv("SLACK_BOT_TOKEN", "xoxb-wrong-123")},
			want: []string{
				"✗ Slack bot token: Slack does not accept SLACK_BOT_TOKEN (invalid_auth) — copy the Bot User OAuth Token",
				"○ Slack bot scopes: skipped: needs an accepted bot token",
				"○ Approval channel: skipped: needs an accepted bot token",
				"○ Approvers: skipped: needs an accepted bot token",
				"✓ Slack socket mode:", "✓ Graph sign-in:",
			},
			failed: 1,
		},
		{
			name: "wrong app token",
			opts: []worldOption{withEnv("SLACK_APP_TOKEN", "xapp-wrong-123")},
			want: []string{
				"✗ Slack socket mode: Slack does not accept SLACK_APP_TOKEN (invalid_auth) — create an app-level token with the connections:write scope",
				"✓ Slack bot token:",
			},
			failed: 1,
		},
		{
			name:  "socket connections rate-limited by running replicas",
			setup: func(w *world) { w.slack.ThrottleFor("apps.connections.open", time.Minute) },
			want: []string{
				"✗ Slack socket mode: Slack is rate-limiting apps.connections.open for another 1m0s — it allows about one call a minute for the whole app, running replicas included: run doctor again in a minute",
				"✓ Slack bot token:",
			},
			failed: 1,
		},
		{
			name:  "missing Slack scope",
			setup: func(w *world) { w.slack.SetScopes(allBut(scopeNames(), "usergroups:read")...) },
			want: []string{
				"✗ Slack bot scopes: missing usergroups:read (resolve approver user groups) — add them under OAuth & Permissions → Bot Token Scopes (or paste manifest.yaml again) and reinstall the app",
				"○ Approvers (TAP_APPROVERS): skipped: needs usergroups:read to resolve SAPPROVERS",
				"✓ Approval channel (TAP_APPROVAL_CHANNEL):",
			},
			failed: 1,
		},
		{
			name:  "bot not in the approval channel",
			setup: func(w *world) { w.slack.SetBotMember(approvalChannel, false) },
			want: []string{
				"✗ Approval channel (TAP_APPROVAL_CHANNEL): the bot is not in #capprovals (CAPPROVALS), so it cannot post there — /invite @tapbot in that channel",
			},
			failed: 1,
		},
		{
			name: "private approval channel the bot is not in",
			setup: func(w *world) {
				w.slack.SetChannelPrivate(approvalChannel, true)
				w.slack.SetBotMember(approvalChannel, false)
			},
			want: []string{
				"✗ Approval channel (TAP_APPROVAL_CHANNEL): Slack shows the bot no channel CAPPROVALS: it does not exist, or it is private and the bot is not in it — check TAP_APPROVAL_CHANNEL",
			},
			failed: 1,
		},
		{
			name: "approver user does not exist",
			opts: []worldOption{withEnv("TAP_APPROVERS", "UNOBODY,SAPPROVERS")},
			want: []string{
				"✗ Approvers (TAP_APPROVERS): UNOBODY is not a user in this workspace — fix TAP_APPROVERS",
			},
			failed: 1,
		},
		{
			name: "user group does not exist",
			opts: []worldOption{withEnv("TAP_APPROVERS", approver+",SNOPE"), withEnv("TAP_PROTECTED_APPROVERS", "SGONE")},
			want: []string{
				"✗ Approvers (TAP_APPROVERS): SNOPE is not a user group in this workspace — fix TAP_APPROVERS",
				"✗ Protected approvers (TAP_PROTECTED_APPROVERS): SGONE is not a user group in this workspace — fix TAP_PROTECTED_APPROVERS",
			},
			failed: 2,
		},
		{
			name: "wrong client secret",
			opts: []worldOption{withEnv("AZURE_CLIENT_SECRET", "not-the-secret-123")},
			want: []string{
				"✗ Graph sign-in: Entra ID refused the client secret: AADSTS7000215: Invalid client secret provided (invalid_client) — put the client secret's Value (not its Secret ID)",
				"— put the client secret's Value (not its Secret ID)",
				"○ Graph permissions: skipped: needs a Graph token",
				"○ TAP policy: skipped: needs a Graph token",
				"○ Tenant watch: skipped: needs a Graph token",
				"✓ Slack bot token:",
			},
			failed: 1,
		},
		{
			name:  "TAP disabled in the policy",
			setup: func(w *world) { p := graphfake.DefaultPolicy; p.Enabled = false; w.graph.SetPolicy(p) },
			want: []string{
				"✗ TAP policy: Temporary Access Pass is disabled in the tenant's authentication methods policy — enable it in the Entra admin center",
				"✓ Graph permissions:",
			},
			failed: 1,
		},
		{
			name: "missing Graph permission",
			setup: func(w *world) {
				w.graph.SetRoles(allBut(graphfake.DefaultRoles, "Policy.Read.AuthenticationMethod")...)
			},
			want: []string{
				"✗ Graph permissions: missing Policy.Read.AuthenticationMethod (read the Temporary Access Pass policy) — in the Entra admin center → App registrations",
				"✗ TAP policy: cannot read the Temporary Access Pass policy: Entra ID does not allow tapbot to read the Temporary Access Pass policy",
				"✓ Graph sign-in:",
			},
			failed: 2,
		},
		{
			name: "audit log not readable",
			setup: func(w *world) {
				w.graph.SetRoles(allBut(graphfake.DefaultRoles, "AuditLog.Read.All")...)
			},
			want: []string{
				"✗ Tenant watch: Entra ID does not let tapbot read its audit log (AuditLog.Read.All is not granted): only the tenant watcher is off, so passes made outside tapbot are not raised; everything else works — in the Entra admin center",
				"add AuditLog.Read.All, then Grant admin consent; or set TAP_TENANT_WATCH_INTERVAL=off",
				"✓ Graph permissions: all 6 application permissions granted",
				"✓ TAP policy:",
			},
			failed: 1,
		},
		{
			name: "Redis unreachable",
			opts: []worldOption{withRedis, func(w *world) { w.env["REDIS_URL"] = "unix://" + w.t.TempDir() + "/nothing.sock" }},
			want: []string{
				"✗ Store: cannot reach Redis at ",
				"— check REDIS_URL",
				"○ Redis writable: skipped: needs a reachable Redis",
				"✓ Encryption key: 1 key",
			},
			failed: 1,
		},
		{
			name: "config error",
			opts: []worldOption{withEnv("TAP_APPROVERS", "")},
			want: []string{
				"✗ Configuration: TAP_APPROVERS: required: a comma-separated list of Slack user IDs",
				"○ Approvers (TAP_APPROVERS): skipped: needs a valid TAP_APPROVERS (see Configuration)",
				"✓ Slack bot token:", "✓ Graph sign-in:", "✓ Store: embedded",
				"1 of 16 checks failed, 1 skipped: fix the ✗ lines above and run tapbot doctor again.",
			},
			failed: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, append(slices.Clone(tt.opts), withoutStart)...)
			if tt.setup != nil {
				tt.setup(w)
			}
			out, err := w.doctor()
			w.slack.ResetViolations() // the refused calls are the point of the test
			t.Logf("%s:\n%s", tt.name, out)
			wantErr := "doctor: 1 check failed"
			if tt.failed != 1 {
				wantErr = fmt.Sprintf("doctor: %d checks failed", tt.failed)
			}
			if err == nil || err.Error() != wantErr {
				t.Errorf("doctor = %v, want %q", err, wantErr)
			}
			for _, want := range tt.want {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q", want)
				}
			}
			sc := bufio.NewScanner(strings.NewReader(out))
			var failures int
			for sc.Scan() {
				if l := sc.Text(); strings.HasPrefix(l, "✗ ") {
					failures++
					if !strings.Contains(l, " — ") {
						t.Errorf("a failure line says no fix: %s", l)
					}
				}
			}
			if failures != tt.failed {
				t.Errorf("%d ✗ lines, want %d", failures, tt.failed)
			}
			if !strings.Contains(out, "checks failed") {
				t.Errorf("no summary line")
			}
			w.assertNoSecret(out, "xoxb-wrong-123", "xapp-wrong-123", "not-the-secret-123")
		})
	}
}

func scopeNames() []string {
	var out []string
	for _, s := range SlackBotScopes {
		out = append(out, s.Name)
	}
	return out
}

// TestDoctorCommandExitsNonZero runs the real command line: a failed check makes the process
// exit 1 with the summary on stdout and main's one line on stderr.
func TestDoctorCommandExitsNonZero(t *testing.T) {
	w := newWorld(t, withoutStart, withRedis)
	caPath := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caPath, w.graph.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	w.env["TAPBOT_TEST_CA"] = caPath // the child trusts the fake Entra ID like a replica does
	w.slack.SetBotMember(approvalChannel, false)
	out, err := w.command("doctor")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("tapbot doctor exit = %v, want status 1\n%s", err, out)
	}
	requireLines(t, out,
		"✓ Graph sign-in:", "✓ Redis writable:",
		"✗ Approval channel (TAP_APPROVAL_CHANNEL): the bot is not in #capprovals",
		"1 of 17 checks failed: fix the ✗ lines above and run tapbot doctor again.",
		"tapbot: doctor: 1 check failed")
	w.assertNoSecret(out)
}

// TestManifestScopesMatchDoctor keeps manifest.yaml and SlackBotScopes one list: an app created
// from the manifest is exactly what doctor expects.
func TestManifestScopesMatchDoctor(t *testing.T) {
	raw, err := os.ReadFile("../../manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := manifestBotScopes(t, string(raw))
	want := scopeNames()
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Fatalf("manifest.yaml bot scopes = %v\nSlackBotScopes        = %v", got, want)
	}
}

// manifestBotScopes reads oauth_config.scopes.bot from the manifest: the list items under the
// "bot:" key nested in "scopes:" under "oauth_config:" (comments and blank lines skipped).
func manifestBotScopes(t *testing.T, manifest string) []string {
	t.Helper()
	var path []string // the keys we are inside, by indent
	var indents []int
	var out []string
	listIndent := -1
	for _, line := range strings.Split(manifest, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if strings.HasPrefix(trimmed, "- ") {
			if strings.Join(path, ".") == "oauth_config.scopes.bot" && (listIndent < 0 || indent == listIndent) {
				listIndent = indent
				out = append(out, strings.Trim(strings.TrimSpace(strings.TrimPrefix(trimmed, "- ")), `"'`))
			}
			continue
		}
		for len(indents) > 0 && indents[len(indents)-1] >= indent {
			indents, path = indents[:len(indents)-1], path[:len(path)-1]
		}
		if key, _, ok := strings.Cut(trimmed, ":"); ok {
			indents, path = append(indents, indent), append(path, key)
		}
	}
	if len(out) == 0 {
		t.Fatal("manifest.yaml has no oauth_config.scopes.bot list")
	}
	return out
}

// TestDoctorRunsWhatDoesNotDependOnABrokenValue: a wrong variable skips only the checks that
// read it (and those that need their result); Slack, Graph and Redis are still checked.
func TestDoctorRunsWhatDoesNotDependOnABrokenValue(t *testing.T) {
	tests := []struct {
		name    string
		set     map[string]string
		lines   []string // every line, by prefix, in order
		summary string
	}{
		{
			name: "one bad approver",
			set:  map[string]string{"TAP_APPROVERS": "@ari"},
			lines: []string{
				`✗ Configuration: TAP_APPROVERS: "@ari" is not a Slack user ID`,
				"✓ Slack bot token:", "✓ Slack bot scopes:", "✓ Slack socket mode:", "✓ Approval channel (TAP_APPROVAL_CHANNEL):", "✓ Audit channel:",
				"○ Approvers (TAP_APPROVERS): skipped: needs a valid TAP_APPROVERS (see Configuration)",
				"✓ Requesters:", "✓ Protected approvers:", "✓ Graph sign-in:", "✓ Graph permissions:", "✓ TAP policy:",
				"✓ New hires:", "✓ Tenant watch:", "✓ Store: Redis at", "✓ Redis writable:", "✓ Encryption key:",
			},
			summary: "1 of 17 checks failed, 1 skipped",
		},
		{
			name: "bot token in the wrong variable",
			set:  map[string]string{"SLACK_BOT_TOKEN": "xapp-test-token"},
			lines: []string{
				"✗ Configuration: SLACK_BOT_TOKEN: must be a bot token",
				"○ Slack bot token: skipped: needs a valid SLACK_BOT_TOKEN (see Configuration)",
				"○ Slack bot scopes: skipped: needs an accepted bot token", "✓ Slack socket mode:",
				"○ Approval channel: skipped: needs an accepted bot token", "✓ Audit channel:",
				"○ Approvers: skipped: needs an accepted bot token", "✓ Requesters:", "✓ Protected approvers:",
				"✓ Graph sign-in:", "✓ Graph permissions:", "✓ TAP policy:", "✓ New hires:", "✓ Tenant watch:", "✓ Store: Redis at", "✓ Redis writable:", "✓ Encryption key:",
			},
			summary: "1 of 17 checks failed, 4 skipped",
		},
		{
			name: "bad Redis URL and Graph timeout, an audit channel name",
			set:  map[string]string{"REDIS_URL": "localhost:6379", "TAP_GRAPH_TIMEOUT": "30", "TAP_AUDIT_CHANNEL": "#audit"},
			lines: []string{
				`✗ Configuration: TAP_GRAPH_TIMEOUT: "30" is not a duration`,
				"✗ Configuration: REDIS_URL: must be a redis://",
				`✗ Configuration: TAP_AUDIT_CHANNEL: "#audit" is not a channel ID`,
				"✓ Slack bot token:", "✓ Slack bot scopes:", "✓ Slack socket mode:", "✓ Approval channel (TAP_APPROVAL_CHANNEL):",
				"○ Audit channel (TAP_AUDIT_CHANNEL): skipped: needs a valid TAP_AUDIT_CHANNEL",
				"✓ Approvers (TAP_APPROVERS):", "✓ Requesters:", "✓ Protected approvers:",
				"○ Graph sign-in: skipped: needs a valid TAP_GRAPH_TIMEOUT", "○ Graph permissions: skipped", "○ TAP policy: skipped", "○ New hires: skipped", "○ Tenant watch: skipped",
				"○ Store: skipped: needs a valid REDIS_URL", "○ Redis writable: skipped", "✓ Encryption key:",
			},
			summary: "3 of 19 checks failed, 8 skipped",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, withoutStart, withRedis)
			for k, v := range tt.set {
				w.env[k] = v
			}
			out, err := w.doctor()
			t.Logf("%s:\n%s", tt.name, out)
			if err == nil {
				t.Fatal("doctor passed with a broken configuration")
			}
			lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
			if len(lines) != len(tt.lines)+1 {
				t.Fatalf("%d lines, want %d", len(lines), len(tt.lines)+1)
			}
			for i, want := range tt.lines {
				if !strings.HasPrefix(lines[i], want) {
					t.Errorf("line %d = %q, want it to start %q", i+1, lines[i], want)
				}
			}
			if last := lines[len(lines)-1]; !strings.HasPrefix(last, tt.summary) {
				t.Errorf("summary = %q, want %q", last, tt.summary)
			}
			w.assertNoSecret(out)
		})
	}
}

// TestDoctorTenantWatchOff: with TAP_TENANT_WATCH_INTERVAL=off the audit log is not needed, so a
// missing AuditLog.Read.All fails nothing and the line says the watcher is off.
func TestDoctorTenantWatchOff(t *testing.T) {
	w := newWorld(t, withoutStart, withEnv("TAP_TENANT_WATCH_INTERVAL", "off"))
	w.graph.SetRoles(slices.DeleteFunc(slices.Clone(graphfake.DefaultRoles), func(r string) bool { return r == "AuditLog.Read.All" })...)
	out, err := w.doctor()
	if err != nil {
		t.Fatalf("doctor = %v, want nil\n%s", err, out)
	}
	requireLines(t, out, "✓ Tenant watch: TAP_TENANT_WATCH_INTERVAL is off: tapbot does not read the audit log")
}
