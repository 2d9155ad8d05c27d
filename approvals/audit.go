package approvals

import (
	"context"
	"time"
)

// Event names of the audit trail, the public contract of `tapbot audit --json`.
const (
	EventRequested     = "requested"
	EventApproved      = "approved"
	EventDenied        = "denied"
	EventExpired       = "expired"
	EventCancelled     = "cancelled"
	EventIssued        = "issued"
	EventIssueFailed   = "issue_failed"
	EventRevealed      = "revealed"
	EventRevealRefused = "reveal_refused"
	// EventRevealInDoubt is a pass put on screen after its reveal was taken over: it may have
	// been shown twice, and it was deleted in Entra ID (DoubtDetail).
	EventRevealInDoubt = "reveal_in_doubt"
	EventRevoked       = "revoked"
	EventReported      = "reported"
)

// Event is one line of the audit trail: who did what to which request, and when. It never holds
// the pass.
type Event struct {
	Time          time.Time `json:"time"`
	Event         string    `json:"event"`
	RequestID     string    `json:"request_id"`
	Actor         string    `json:"actor"` // chat user ID who acted; empty when tapbot acted on its own
	Target        string    `json:"target"`
	TargetEntraID string    `json:"target_entra_id,omitempty"`
	TargetSlackID string    `json:"target_slack_id,omitempty"`
	Requester     string    `json:"requester,omitempty"`
	Lifetime      string    `json:"lifetime,omitempty"`
	UsableOnce    bool      `json:"usable_once"`
	Reason        string    `json:"reason,omitempty"`
	Detail        string    `json:"detail,omitempty"`
	// RequesterEntraID is the requester's directory account, which the four-eyes rules compare.
	RequesterEntraID string `json:"requester_entra_id,omitempty"`
}

// DefaultAuditRetention is how long the trail is kept in the store (TAP_AUDIT_RETENTION).
const DefaultAuditRetention = 90 * 24 * time.Hour

// AuditSink receives every event as it happens, for example to post it in an audit channel.
type AuditSink func(ctx context.Context, e Event, r *Request)

func eventFor(name string, r *Request, actor, detail string, at time.Time) Event {
	return Event{
		Time: at.UTC(), Event: name, RequestID: r.ID, Actor: actor,
		Target: r.Target.UPN, TargetEntraID: r.Target.EntraID, TargetSlackID: r.Target.SlackID,
		Requester: r.Requester, RequesterEntraID: r.RequesterEntraID,
		Lifetime: FormatDuration(r.Lifetime), UsableOnce: r.UsableOnce, Reason: r.Reason, Detail: detail,
	}
}

// record writes an event to the log and the store's trail and hands it to the sink. A trail that
// cannot be written is logged loudly but does not undo what already happened.
func (s *Service) record(ctx context.Context, name string, r *Request, actor, detail string) {
	e := eventFor(name, r, actor, detail, s.now())
	s.log.InfoContext(ctx, "audit", "event", e.Event, "request_id", e.RequestID, "actor", e.Actor,
		"target", e.Target, "target_entra_id", e.TargetEntraID, "target_slack_id", e.TargetSlackID,
		"requester", e.Requester, "requester_entra_id", e.RequesterEntraID, "lifetime", e.Lifetime,
		"usable_once", e.UsableOnce, "reason", e.Reason, "detail", e.Detail)
	if err := s.store.AppendAudit(ctx, e, s.cfg.AuditRetention); err != nil {
		s.log.ErrorContext(ctx, "audit trail not written to the store", "event", name, "request_id", r.ID, "err", err)
	}
	if s.sink != nil {
		s.sink(ctx, e, r)
	}
}
