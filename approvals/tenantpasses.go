package approvals

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// TenantPass is one pass the audit log shows made in the tenant, with where it came from and
// where it stands: the listing of `tapbot passes`.
type TenantPass struct {
	CreatedAt time.Time
	UserUPN   string
	PassID    string
	StartsAt  time.Time // zero when the audit record does not say
	EndsAt    time.Time // zero when the audit record does not say
	Usage     PassUsage
	// RequestID is the tapbot request that issued it; empty for a pass made outside tapbot.
	RequestID string
	// MadeBy is who made a pass outside tapbot, as the audit log names them; for tapbot's own
	// passes, "tapbot".
	MadeBy string
	// ExternalID is the alert's ID for a pass made outside tapbot that the watcher saw.
	ExternalID string
	// State is active, ended, deleted, revoked, acknowledged, or unseen (made outside tapbot,
	// not yet read by the watcher).
	State string
}

// The states TenantPasses reports.
const (
	PassActive       = "active"
	PassEnded        = "ended"
	PassDeletedState = "deleted"
	PassRevoked      = "revoked"
	PassAcknowledged = "acknowledged"
	PassUnseen       = "unseen"
)

// TenantPasses lists every pass creation the audit log holds since a time, oldest first, with
// its origin (the tapbot request that issued it, or who made it outside tapbot) and its state
// as tapbot's store and the log's deletions tell it. ownAppIDs are tapbot's app (client) IDs.
func TenantPasses(ctx context.Context, store Store, log AuditLog, ownAppIDs []string, since, now time.Time) ([]TenantPass, error) {
	events, err := log.PassEvents(ctx, since)
	if err != nil {
		return nil, fmt.Errorf("read the audit log: %w", err)
	}
	deletedAt := map[string]AuditActor{}
	for _, e := range events {
		if e.Change == PassDeleted && e.PassID != "" {
			deletedAt[e.PassID] = e.By
		}
	}
	own := func(a AuditActor) bool {
		return a.AppID != "" && slices.ContainsFunc(ownAppIDs, func(id string) bool { return strings.EqualFold(id, a.AppID) })
	}
	var out []TenantPass
	for _, e := range events {
		if e.Change != PassCreated {
			continue
		}
		p := TenantPass{CreatedAt: e.At, UserUPN: e.UserUPN, PassID: e.PassID, StartsAt: e.StartsAt, EndsAt: e.EndsAt, Usage: e.Usage}
		timeState := func() string {
			if _, gone := deletedAt[e.PassID]; gone && e.PassID != "" {
				return PassDeletedState
			}
			if !p.EndsAt.IsZero() && !now.Before(p.EndsAt) {
				return PassEnded
			}
			return PassActive
		}
		reqID := ""
		if e.PassID != "" {
			if reqID, err = store.Value(ctx, passRequestKey(e.PassID)); err != nil {
				return nil, err
			}
		}
		switch {
		case reqID != "":
			p.RequestID, p.MadeBy = reqID, "tapbot"
			p.State = timeState()
			r, err := store.Get(ctx, reqID)
			switch {
			case errors.Is(err, ErrNotFound):
			case err != nil:
				return nil, err
			default:
				if p.EndsAt.IsZero() {
					p.EndsAt = r.PassExpiresAt
				}
				p.State = requestPassState(r, now)
			}
		case own(e.By):
			p.MadeBy, p.State = "tapbot", timeState()
		default:
			p.MadeBy, p.State = e.By.Describe(), PassUnseen
			id, err := store.Value(ctx, recordKey(e.RecordID))
			if err != nil {
				return nil, err
			}
			if ValidID(id) {
				p.ExternalID = id
				p.State = timeState()
				if x, _, err := loadExternalFrom(ctx, store, id); err == nil {
					switch x.State {
					case ExternalRevoked:
						p.State = PassRevoked
					case ExternalDeleted:
						p.State = PassDeletedState
					case ExternalAcknowledged:
						if p.State == PassActive {
							p.State = PassAcknowledged
						}
					}
				} else if !errors.Is(err, ErrNotFound) {
					return nil, err
				}
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// requestPassState is where a tapbot request's pass stands.
func requestPassState(r *Request, now time.Time) string {
	switch {
	case r.State == Revoked && r.RemovedInEntraBy != "":
		return PassDeletedState
	case r.State == Revoked:
		return PassRevoked
	case r.State == Issued || r.State == Revealing || r.State == Revealed:
		if !r.PassExpiresAt.IsZero() && !now.Before(r.PassExpiresAt) {
			return PassEnded
		}
		return PassActive
	}
	return PassEnded // failed or expired: the pass was deleted or never reached anyone
}
