package config

import "fmt"

// loadFollowUp reads what tapbot does after a request without anyone clicking: reminders, and
// watching the person's sign-in methods after the reveal.
func (c *Config) loadFollowUp(get func(string) string) error {
	var err error
	if c.RemindAfter, err = RemindAfter.Read(get(RemindAfter.Name)); err != nil {
		return err
	}
	if c.RemindAfter > 0 && c.RemindAfter >= c.RequestTTL {
		return &Error{RemindAfter.Name, fmt.Sprintf("%s is not shorter than %s (%s), so no request would ever be reminded; use a shorter time, or off",
			shown(get, RemindAfter), RequestTTL.Name, shown(get, RequestTTL))}
	}
	if c.WatchInterval, err = WatchInterval.Read(get(WatchInterval.Name)); err != nil {
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
