package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/auditlogs"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"github.com/tapbot/tapbot/approvals"
)

// The audit log values of Temporary Access Pass records that Graph can filter on (Microsoft's
// audit activity reference). resultReason, which says the method was a Temporary Access Pass,
// cannot be filtered on, so it is checked here.
const (
	auditService    = "Authentication Methods"
	auditRegistered = "Admin registered security info"
	auditDeleted    = "Admin deleted security info"
)

// auditPageSize asks for large pages: the reports APIs allow about 5 requests per 10 s, so fewer
// pages mean fewer Retry-After waits.
const auditPageSize = 999

var _ approvals.AuditLog = (*Client)(nil)

// passFilter selects the records of passes (and other authentication methods) created or
// deleted by an admin or an app at or after since.
func passFilter(since time.Time) string {
	return fmt.Sprintf("activityDateTime ge %s and loggedByService eq '%s' and (activityDisplayName eq '%s' or activityDisplayName eq '%s')",
		since.UTC().Format("2006-01-02T15:04:05.0000000Z"), odataString(auditService), odataString(auditRegistered), odataString(auditDeleted))
}

// PassEvents implements approvals.AuditLog: it reads Entra ID's audit log
// (GET /auditLogs/directoryAudits, application permission AuditLog.Read.All) for Temporary Access
// Passes created or deleted at or after since, by anyone, every page, and returns them oldest
// first, each record once. Graph filters on time, service and activity; whether a record is about
// a Temporary Access Pass is only in its resultReason, which is matched loosely here, as are the
// names of the pass's properties (they vary between events). Each page is one call with its own
// deadline (Options.Timeout), so a long read waits out the reports throttle (Retry-After, through
// the SDK's retry handler) page by page, while ctx bounds the whole read.
func (c *Client) PassEvents(ctx context.Context, since time.Time) ([]approvals.TenantPassEvent, error) {
	filter := passFilter(since)
	top := int32(auditPageSize)
	b := c.svc.AuditLogs().DirectoryAudits()
	var out []approvals.TenantPassEvent
	seen := map[string]bool{}
	next := ""
	for page := 1; ; page++ {
		res, err := c.auditPage(ctx, b, next, &auditlogs.DirectoryAuditsRequestBuilderGetQueryParameters{Filter: &filter, Top: &top})
		if err != nil {
			return nil, err
		}
		for _, rec := range res.GetValue() {
			ev, ok := toPassEvent(rec)
			// Pages may overlap while records arrive; each record counts once.
			if ok && !seen[ev.RecordID] {
				seen[ev.RecordID] = true
				out = append(out, ev)
			}
		}
		link := res.GetOdataNextLink()
		if link == nil || *link == "" {
			break
		}
		if page >= maxPages {
			return nil, fmt.Errorf("graph: the audit log still had more pages after %d; the answer looks broken", maxPages)
		}
		next = *link
	}
	// Graph lists the newest first; the watcher wants them in the order they happened.
	slices.SortStableFunc(out, func(a, b approvals.TenantPassEvent) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.RecordID, b.RecordID)
	})
	return out, nil
}

// CheckAuditLog reads one small page of the audit log, for tapbot doctor: nil when the app may
// read it, *approvals.Error with Forbidden when AuditLog.Read.All is missing.
func (c *Client) CheckAuditLog(ctx context.Context) error {
	filter := passFilter(c.now().Add(-time.Hour))
	top := int32(1)
	_, err := c.auditPage(ctx, c.svc.AuditLogs().DirectoryAudits(), "",
		&auditlogs.DirectoryAuditsRequestBuilderGetQueryParameters{Filter: &filter, Top: &top})
	return err
}

// auditPage gets the first page (next empty) or the page next links to, as one call.
func (c *Client) auditPage(ctx context.Context, b *auditlogs.DirectoryAuditsRequestBuilder, next string,
	q *auditlogs.DirectoryAuditsRequestBuilderGetQueryParameters) (models.DirectoryAuditCollectionResponseable, error) {
	ctx, cancel, err := c.callContext(ctx, opListAudits)
	if err != nil {
		return nil, classify(ctx, opListAudits, "", err)
	}
	defer cancel()
	var res models.DirectoryAuditCollectionResponseable
	if next == "" {
		res, err = b.Get(ctx, &auditlogs.DirectoryAuditsRequestBuilderGetRequestConfiguration{QueryParameters: q})
	} else {
		res, err = b.WithUrl(next).Get(ctx, nil)
	}
	if err != nil {
		return nil, classify(ctx, opListAudits, "", err)
	}
	if res == nil {
		return nil, errors.New("graph: the audit log answered without a body")
	}
	return res, nil
}

// toPassEvent reads a directoryAudit record as a pass created or deleted; ok is false for a
// record about anything else (another authentication method, say).
func toPassEvent(rec models.DirectoryAuditable) (approvals.TenantPassEvent, bool) {
	if rec == nil || deref(rec.GetId()) == "" || rec.GetActivityDateTime() == nil {
		return approvals.TenantPassEvent{}, false
	}
	reason := strings.ToLower(deref(rec.GetResultReason()))
	if !strings.Contains(reason, "temporary access pass") {
		return approvals.TenantPassEvent{}, false
	}
	ev := approvals.TenantPassEvent{RecordID: *rec.GetId(), At: rec.GetActivityDateTime().UTC()}
	what := strings.ToLower(deref(rec.GetActivityDisplayName())) + " " + reason
	switch {
	case strings.Contains(what, "delet") || strings.Contains(what, "remov"):
		ev.Change = approvals.PassDeleted
	case strings.Contains(what, "regist") || strings.Contains(what, "creat") || strings.Contains(what, "add"):
		ev.Change = approvals.PassCreated
	default:
		return approvals.TenantPassEvent{}, false
	}
	if by := rec.GetInitiatedBy(); by != nil {
		if app := by.GetApp(); app != nil && (deref(app.GetAppId()) != "" || deref(app.GetServicePrincipalId()) != "") {
			ev.By = approvals.AuditActor{AppID: deref(app.GetAppId()), ServicePrincipalID: deref(app.GetServicePrincipalId()),
				DisplayName: strings.TrimSpace(deref(app.GetDisplayName()))}
		} else if u := by.GetUser(); u != nil {
			ev.By = approvals.AuditActor{UserID: deref(u.GetId()), UPN: deref(u.GetUserPrincipalName()),
				DisplayName: strings.TrimSpace(deref(u.GetDisplayName()))}
		}
	}
	targets := rec.GetTargetResources()
	for i, t := range targets {
		if t == nil {
			continue
		}
		if i == 0 {
			ev.UserID, ev.UserUPN = deref(t.GetId()), deref(t.GetUserPrincipalName())
		}
		for _, p := range t.GetModifiedProperties() {
			if p != nil {
				readPassProperty(&ev, deref(p.GetDisplayName()), auditValue(p.GetNewValue(), p.GetOldValue()))
			}
		}
	}
	return ev, true
}

// readPassProperty fills in what one modified property says about the pass. Names vary between
// events ("TemporaryAccessPass.Id", "StartDateTime", "AccessPassUsage"...), so they are matched by
// what they contain.
func readPassProperty(ev *approvals.TenantPassEvent, name, value string) {
	n := strings.ToLower(name)
	if value == "" {
		return
	}
	switch {
	case strings.Contains(n, "usage") || strings.Contains(n, "usableonce") || strings.Contains(n, "onetime"):
		v := strings.ToLower(value)
		switch {
		case strings.Contains(v, "multi") || v == "false":
			ev.Usage = approvals.UsageMulti
		case strings.Contains(v, "once") || strings.Contains(v, "onetime") || strings.Contains(v, "single") || v == "true":
			ev.Usage = approvals.UsageOnce
		}
	case strings.Contains(n, "start"):
		if t, ok := auditTime(value); ok {
			ev.StartsAt = t
		}
	case strings.Contains(n, "end") || strings.Contains(n, "expir"):
		if t, ok := auditTime(value); ok {
			ev.EndsAt = t
		}
	case n == "id" || strings.HasSuffix(n, ".id") || strings.HasSuffix(n, "passid") || strings.HasSuffix(n, "methodid"):
		ev.PassID = value
	}
}

// auditValue is a modified property's value without its JSON quoting: the new value, or the old
// one when the change removed it (a deletion). Values come as JSON strings ("\"x\""), sometimes
// as a one-element JSON array, sometimes bare.
func auditValue(newValue, oldValue *string) string {
	raw := strings.TrimSpace(deref(newValue))
	if raw == "" || raw == `""` || raw == "[]" || raw == "null" {
		raw = strings.TrimSpace(deref(oldValue))
	}
	var s string
	if json.Unmarshal([]byte(raw), &s) == nil {
		return strings.TrimSpace(s)
	}
	var list []string
	if json.Unmarshal([]byte(raw), &list) == nil {
		if len(list) > 0 {
			return strings.TrimSpace(list[0])
		}
		return ""
	}
	if raw == "null" {
		return ""
	}
	return strings.Trim(raw, `"`)
}

// auditTime parses the times audit records hold: ISO 8601 in UTC, sometimes with seven
// fractional digits, sometimes in the US format the admin center shows.
func auditTime(v string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.0000000", "2006-01-02T15:04:05", "1/2/2006 3:04:05 PM"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
