package config

import (
	"fmt"
	"strings"
	"time"
)

// OnboardingNotice is how far ahead of a hire date tapbot asks the manager. Submit accepts a
// start at most 14 days ahead (approvals.MaxStartAhead); the first morning is up to a day and a
// half after the hire date's timestamp (a west-of-Greenwich morning of a date written as midnight
// UTC), so the notice stops two days short of that.
var OnboardingNotice = DurationSetting{Name: "TAP_ONBOARDING_NOTICE", Default: "3d", Min: "1d", Max: "12d"}

// loadOnboarding reads the new-hire look-ahead: TAP_ONBOARDING (on|off, default off),
// TAP_ONBOARDING_NOTICE and TAP_ONBOARDING_START (the first-morning start, HH:MM).
func (c *Config) loadOnboarding(l *loader) {
	switch v := l.get("TAP_ONBOARDING"); strings.ToLower(v) {
	case "", "off":
	case "on":
		c.Onboarding = true
	default:
		l.fail("TAP_ONBOARDING", fmt.Sprintf("%q is neither on (ask each new hire's manager for a first-morning pass before their hire date) nor off (the default)", v))
	}
	l.duration(&c.OnboardingNotice, OnboardingNotice)
	c.OnboardingStart = "08:00"
	if v := strings.TrimSpace(l.get("TAP_ONBOARDING_START")); v != "" {
		t, err := time.Parse("15:04", v)
		if err != nil || len(v) != 5 {
			l.fail("TAP_ONBOARDING_START", fmt.Sprintf("%q is not a time of day as HH:MM, like 08:00 or 09:30", v))
		} else {
			c.OnboardingStart = t.Format("15:04")
		}
	}
}
