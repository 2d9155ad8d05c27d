package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

// loadFollowUp reads what tapbot does after a request without anyone clicking: reminders, and
// watching the person's sign-in methods after the reveal.
func (c *Config) loadFollowUp(get func(string) string) error {
	var err error
	if c.RemindAfter, err = orOff("TAP_REMIND_AFTER", get("TAP_REMIND_AFTER"), approvals.DefaultRemindAfter, time.Minute); err != nil {
		return err
	}
	if c.RemindAfter > 0 && c.RemindAfter >= c.RequestTTL {
		return &Error{"TAP_REMIND_AFTER", fmt.Sprintf("%s is not shorter than TAP_REQUEST_TTL (%s), so no request would ever be reminded; use a shorter time, or off",
			approvals.FormatDuration(c.RemindAfter), approvals.FormatDuration(c.RequestTTL))}
	}
	if c.WatchInterval, err = orOff("TAP_WATCH_INTERVAL", get("TAP_WATCH_INTERVAL"), approvals.DefaultWatchInterval, time.Second); err != nil {
		return err
	}
	if c.RevokeAfterRegistration, err = boolean("TAP_REVOKE_AFTER_REGISTRATION", get("TAP_REVOKE_AFTER_REGISTRATION")); err != nil {
		return err
	}
	if c.RevokeAfterRegistration && c.WatchInterval < 0 {
		return &Error{"TAP_REVOKE_AFTER_REGISTRATION", "needs TAP_WATCH_INTERVAL, which is off: tapbot only learns of a registration by watching"}
	}
	return nil
}

// orOff reads a duration such as 30m or 1h, at least min, or "off" (returned as -1).
func orOff(name, v string, def, min time.Duration) (time.Duration, error) {
	if strings.EqualFold(v, "off") {
		return -1, nil
	}
	d, err := seconds(name, v, def)
	if err != nil {
		return 0, &Error{name, fmt.Sprintf("%q is not a duration such as 30m or 1h, or off", v)}
	}
	if d < min {
		return 0, &Error{name, fmt.Sprintf("%s is too short; use at least %s, or off", d, min)}
	}
	return d, nil
}
