package main

import (
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
