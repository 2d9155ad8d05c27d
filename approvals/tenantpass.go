package approvals

import (
	"context"
	"time"
)

// PassChange says what an audit record did to a Temporary Access Pass.
type PassChange string

// The changes the tenant watcher reads from Entra ID's audit log.
const (
	PassCreated PassChange = "created"
	PassDeleted PassChange = "deleted"
)

// PassUsage is whether a pass found in the audit log works once or several times; the log does
// not always say.
type PassUsage string

// The usages an audit record can state.
const (
	UsageUnknown PassUsage = ""
	UsageOnce    PassUsage = "once"
	UsageMulti   PassUsage = "multi"
)

// AuditActor is who made a change in the tenant: a person (UserID, UPN) or an application
// (AppID, ServicePrincipalID), with the name Entra ID shows for it.
type AuditActor struct {
	UserID             string
	UPN                string
	AppID              string
	ServicePrincipalID string
	DisplayName        string
}

// IsApp reports whether an application, not a person, made the change.
func (a AuditActor) IsApp() bool { return a.AppID != "" || a.ServicePrincipalID != "" }

// TenantPassEvent is one Temporary Access Pass created or deleted in the tenant, as Entra ID's
// audit log (directoryAudits) records it, whoever made it: tapbot, an admin in the portal or
// with PowerShell, or another application.
type TenantPassEvent struct {
	// RecordID is the audit record's id: each record is handled once, across replicas and
	// restarts, however often overlapping reads return it.
	RecordID string
	Change   PassChange
	At       time.Time // activityDateTime
	UserID   string    // the person the pass is for: targetResources[0].id
	UserUPN  string
	// PassID is the pass's authentication method ID when the record carries it.
	PassID   string
	StartsAt time.Time // zero when the record does not say
	EndsAt   time.Time // zero when the record does not say
	Usage    PassUsage
	By       AuditActor
}

// AuditLog reads Entra ID's audit log for Temporary Access Passes.
type AuditLog interface {
	// PassEvents returns the pass creations and deletions whose activityDateTime is at or after
	// since, oldest first, every page read. Records that are not about a Temporary Access Pass
	// are left out. It returns *Error with Forbidden when the app may not read the audit log
	// (AuditLog.Read.All not granted) and Unavailable when Graph is down or throttles past ctx.
	PassEvents(ctx context.Context, since time.Time) ([]TenantPassEvent, error)
}
