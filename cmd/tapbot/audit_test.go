package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAuditSinceTakesEveryDuration: --since reads durations like every variable does, seconds
// and days included, and refuses what is out of its range with one line that echoes it.
func TestAuditSinceTakesEveryDuration(t *testing.T) {
	w := newWorld(t, withoutStart, withRedis)
	tests := []struct {
		since string
		want  string // a line of the output; an error when it starts with "tapbot:"
	}{
		{"30s", "no audit events in that window"},
		{"1d12h", "no audit events in that window"},
		{"90m", "no audit events in that window"},
		{"30x", `tapbot: audit: --since: "30x" is not a duration; use a number and a unit such as 30s, 90m, 1h30m, 1d or 1d12h, from 1s to 3650d`},
		{"0s", `tapbot: audit: --since: "0s" is too short; use from 1s to 3650d`},
	}
	for _, tt := range tests {
		t.Run(tt.since, func(t *testing.T) {
			out, err := w.command("audit", "--since", tt.since)
			if strings.HasPrefix(tt.want, "tapbot:") != (err != nil) {
				t.Fatalf("tapbot audit --since %s = %v\n%s", tt.since, err, out)
			}
			if got := strings.TrimSpace(out); got != tt.want {
				t.Fatalf("tapbot audit --since %s printed\n%s\nwant\n%s", tt.since, got, tt.want)
			}
		})
	}
}

// TestAuditNeedsOnlyTheStore: an auditor reads the trail with REDIS_URL alone (or
// REDIS_URL_FILE), holding neither the bot's Slack tokens nor the encryption key; whatever else
// is set, and wrong, does not stop it.
func TestAuditNeedsOnlyTheStore(t *testing.T) {
	w := newWorld(t, withRedis)
	w.tap(manager, "<@UADA> 1h once new laptop")
	w.approvalMessage(1)
	urlFile := filepath.Join(t.TempDir(), "redis_url")
	if err := os.WriteFile(urlFile, []byte(w.env["REDIS_URL"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"REDIS_URL alone", map[string]string{"REDIS_URL": w.env["REDIS_URL"]}},
		{"REDIS_URL_FILE alone", map[string]string{"REDIS_URL_FILE": urlFile}},
		{"the bot's other settings wrong", map[string]string{"REDIS_URL": w.env["REDIS_URL"], "SLACK_BOT_TOKEN": "xoxb-...", "TAP_APPROVERS": "@ari"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, status := runTapbot(t, tt.env, "audit", "--json")
			if status != 0 || stderr != "" {
				t.Fatalf("tapbot audit: exit %d\n%s", status, stderr)
			}
			if !strings.Contains(stdout, `"event":"requested"`) {
				t.Fatalf("tapbot audit printed no requested event:\n%s", stdout)
			}
		})
	}
	t.Run("a wrong REDIS_URL is still one line", func(t *testing.T) {
		_, stderr, status := runTapbot(t, map[string]string{"REDIS_URL": "localhost:6379"}, "audit")
		if status != 1 || !strings.HasPrefix(stderr, "tapbot: REDIS_URL: must be a redis://") || strings.Count(stderr, "\n") != 1 {
			t.Fatalf("exit %d, stderr %q", status, stderr)
		}
	})
}
