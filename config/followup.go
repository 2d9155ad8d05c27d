package config

import "fmt"

// loadFollowUp reads what tapbot does after a request without anyone clicking: reminders,
// watching the person's sign-in methods after the reveal, and watching the tenant's audit log
// for passes made outside tapbot.
func (c *Config) loadFollowUp(l *loader) {
	l.duration(&c.RemindAfter, RemindAfter)
	if l.ok(RemindAfter.Name, RequestTTL.Name) && c.RemindAfter > 0 && c.RemindAfter >= c.RequestTTL {
		l.fail(RemindAfter.Name, fmt.Sprintf("%s is not shorter than %s (%s), so no request would ever be reminded; use a shorter time, or off",
			shown(l.get, RemindAfter), RequestTTL.Name, shown(l.get, RequestTTL)))
	}
	l.duration(&c.WatchInterval, WatchInterval)
	if v, err := boolean("TAP_REVOKE_AFTER_REGISTRATION", l.get("TAP_REVOKE_AFTER_REGISTRATION")); l.report(err) {
		c.RevokeAfterRegistration = v
	}
	if l.ok(WatchInterval.Name) && c.RevokeAfterRegistration && c.WatchInterval < 0 {
		l.fail("TAP_REVOKE_AFTER_REGISTRATION", "needs TAP_WATCH_INTERVAL, which is off: tapbot only learns of a registration by watching")
	}
	l.duration(&c.TenantWatchInterval, TenantWatchInterval)
	l.duration(&c.AuditLogRetention, AuditLogRetention)
	// azidentity reads AZURE_CLIENT_ID itself; the tenant watcher only needs to know it, to
	// recognise what tapbot's own app registration or user-assigned managed identity did.
	c.OwnAppID = l.get("AZURE_CLIENT_ID")
}
