package main

import (
	"strings"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

// TestPassesTableSaysOriginAndState: each pass is one line with where it came from and where it
// stands.
func TestPassesTableSaysOriginAndState(t *testing.T) {
	at := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	var out strings.Builder
	err := printPasses(&out, []approvals.TenantPass{
		{CreatedAt: at, UserUPN: "ada@example.com", RequestID: "tap_abcdefghijklmnop", MadeBy: "tapbot", EndsAt: at.Add(time.Hour), State: approvals.PassActive},
		{CreatedAt: at, UserUPN: "ext@example.com", MadeBy: "Root Admin (root@example.com)", State: approvals.PassRevoked},
		{CreatedAt: at, UserUPN: "mgr@example.com", MadeBy: "tapbot", State: approvals.PassEnded},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	tests := []struct {
		line int
		want []string
	}{
		{1, []string{"ada@example.com", "request tap_abcdefghijklmnop", "active", "2026-12-02T10:00:00Z"}},
		{2, []string{"ext@example.com", "outside tapbot: Root Admin (root@example.com)", "revoked"}},
		{3, []string{"mgr@example.com", "tapbot (no request)", "ended"}},
	}
	for _, tt := range tests {
		for _, want := range tt.want {
			if !strings.Contains(lines[tt.line], want) {
				t.Errorf("line %d %q lacks %q", tt.line, lines[tt.line], want)
			}
		}
	}
	out.Reset()
	if err := printPasses(&out, nil, false); err != nil || !strings.Contains(out.String(), "no passes") {
		t.Fatalf("empty listing = %q, %v", out.String(), err)
	}
}
