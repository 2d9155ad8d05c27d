package approvals_test

import (
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

// TestFirstMorning: the first day is the day HR meant, whichever midnight their system wrote, and
// the pass starts at the given clock time there in the requester's zone.
func TestFirstMorning(t *testing.T) {
	paris, _ := time.LoadLocation("Europe/Paris")
	la, _ := time.LoadLocation("America/Los_Angeles")
	tests := []struct {
		name  string
		hire  time.Time
		loc   *time.Location
		clock string
		want  time.Time
	}{
		{"midnight UTC, an office east of UTC", time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), paris, "08:00", time.Date(2026, 12, 7, 8, 0, 0, 0, paris)},
		{"midnight UTC, an office west of UTC", time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), la, "08:00", time.Date(2026, 12, 7, 8, 0, 0, 0, la)},
		{"midnight in the office's zone (the day before in UTC)", time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC), paris, "09:30", time.Date(2026, 12, 7, 9, 30, 0, 0, paris)},
		{"a time of day is read as the UTC day", time.Date(2026, 12, 7, 17, 0, 0, 0, time.UTC), paris, "08:00", time.Date(2026, 12, 7, 8, 0, 0, 0, paris)},
		{"no zone known", time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), nil, "08:00", time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := approvals.FirstMorning(tt.hire, tt.loc, tt.clock)
			if err != nil || !got.Equal(tt.want) {
				t.Fatalf("FirstMorning = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	if _, err := approvals.FirstMorning(time.Now(), nil, "8am"); err == nil {
		t.Error("a start time that is not HH:MM was accepted")
	}
}

func TestValidOnboardingKey(t *testing.T) {
	for key, want := range map[string]bool{
		"onboarding:00000000-0000-0000-0000-0000000000b1:2026-12-07": true,
		"onboarding:00000000-0000-0000-0000-0000000000b1:2026-13-07": false,
		"onboarding::2026-12-07":                                     false,
		"onboarding:abc;DROP:2026-12-07":                             false,
		"req:tap_x":                                                  false,
	} {
		if got := approvals.ValidOnboardingKey(key); got != want {
			t.Errorf("ValidOnboardingKey(%q) = %v, want %v", key, got, want)
		}
	}
}
