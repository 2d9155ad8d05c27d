package approvals_test

import (
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

func TestParseLifetime(t *testing.T) {
	tests := []struct {
		in     string
		want   time.Duration
		ok     bool
		format string // how FormatDuration writes it back
	}{
		{"90m", 90 * time.Minute, true, "1h30m"}, {"2h", 2 * time.Hour, true, "2h"}, {"1h30m", 90 * time.Minute, true, "1h30m"},
		{"1d", 24 * time.Hour, true, "1d"}, {"1D", 24 * time.Hour, true, "1d"}, {"25h", 25 * time.Hour, true, "1d1h"},
		{"0m", 0, false, ""}, {"-1h", 0, false, ""}, {"45s", 0, false, ""}, {"h", 0, false, ""}, {"1", 0, false, ""},
		{"1.5h", 0, false, ""}, {"", 0, false, ""}, {"999999999d", 0, false, ""},
	}
	for _, tt := range tests {
		got, err := approvals.ParseLifetime(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseLifetime(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok && approvals.FormatDuration(got) != tt.format {
			t.Errorf("FormatDuration(%v) = %q, want %q", got, approvals.FormatDuration(got), tt.format)
		}
	}
}
