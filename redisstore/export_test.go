package redisstore

// SetAuditPage makes ReadAudit read pages of n events until the test ends, so paging is tested
// without thousands of events.
func SetAuditPage(n int64) (restore func()) {
	old := auditPage
	auditPage = n
	return func() { auditPage = old }
}
