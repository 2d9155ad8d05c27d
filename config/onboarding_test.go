package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tapbot/tapbot/config"
)

func TestOnboardingSettings(t *testing.T) {
	tests := []struct {
		name    string
		set     map[string]string
		on      bool
		notice  time.Duration
		start   string
		wantErr string
	}{
		{name: "off by default", notice: 72 * time.Hour, start: "08:00"},
		{name: "on", set: map[string]string{"TAP_ONBOARDING": "on", "TAP_ONBOARDING_NOTICE": "5d", "TAP_ONBOARDING_START": "09:30"},
			on: true, notice: 5 * 24 * time.Hour, start: "09:30"},
		{name: "ON in capitals", set: map[string]string{"TAP_ONBOARDING": "ON"}, on: true, notice: 72 * time.Hour, start: "08:00"},
		{name: "not on or off", set: map[string]string{"TAP_ONBOARDING": "yes please"}, wantErr: `TAP_ONBOARDING: "yes please" is neither on`},
		{name: "notice beyond what a start may be ahead", set: map[string]string{"TAP_ONBOARDING_NOTICE": "3w"}, wantErr: "TAP_ONBOARDING_NOTICE:"},
		{name: "notice too long for a start 14 days ahead", set: map[string]string{"TAP_ONBOARDING_NOTICE": "13d"}, wantErr: `TAP_ONBOARDING_NOTICE: "13d" is too long; use from 1d to 12d`},
		{name: "the longest notice", set: map[string]string{"TAP_ONBOARDING_NOTICE": "12d"}, notice: 12 * 24 * time.Hour, start: "08:00"},
		{name: "start not a time", set: map[string]string{"TAP_ONBOARDING_START": "8am"}, wantErr: `TAP_ONBOARDING_START: "8am" is not a time of day as HH:MM`},
		{name: "start without a leading zero", set: map[string]string{"TAP_ONBOARDING_START": "8:00"}, wantErr: `TAP_ONBOARDING_START: "8:00" is not a time of day as HH:MM`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load(env(tt.set))
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to start %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Onboarding != tt.on || c.OnboardingNotice != tt.notice || c.OnboardingStart != tt.start {
				t.Fatalf("got on=%v notice=%v start=%q, want %v %v %q", c.Onboarding, c.OnboardingNotice, c.OnboardingStart, tt.on, tt.notice, tt.start)
			}
		})
	}
}
