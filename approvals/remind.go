package approvals

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// EventReminded is the audit event of a pending request bumped to its approvers: by tapbot after
// TAP_REMIND_AFTER (no actor) or by its requester.
const EventReminded = "reminded"

// DefaultRemindAfter is how long a request waits before tapbot bumps it (TAP_REMIND_AFTER).
const DefaultRemindAfter = 30 * time.Minute

// remindAfter is the configured wait, 0 when reminders are off.
func (s *Service) remindAfter() time.Duration {
	return offOrDefault(s.cfg.RemindAfter, DefaultRemindAfter)
}

// offOrDefault reads a follow-up setting: negative means off (0), zero means the default.
func offOrDefault(d, def time.Duration) time.Duration {
	switch {
	case d < 0:
		return 0
	case d == 0:
		return def
	}
	return d
}

// TakeRemindTurn reports whether this replica should look for requests to bump now: one replica
// a turn, so replicas do not all read the store for the same answer.
func (s *Service) TakeRemindTurn(ctx context.Context, turn time.Duration) (bool, error) {
	return s.store.Claim(ctx, "remind-turn", turn)
}

// remindDue reports whether tapbot should bump r now: still decidable, seen by approvers, not
// bumped by tapbot yet, and quiet for the whole wait (a requester's own reminder restarts it,
// so approvers are not pinged twice within minutes).
func (s *Service) remindDue(r *Request, now time.Time) bool {
	wait := s.remindAfter()
	if wait == 0 || r.State != Pending || !r.RemindedAt.IsZero() || r.ApprovalMessage.IsZero() || !now.Before(r.ExpiresAt) {
		return false
	}
	since := r.CreatedAt
	if r.RequesterRemindedAt.After(since) {
		since = r.RequesterRemindedAt
	}
	return !now.Before(since.Add(wait))
}

// DueReminders marks each request that is due a bump as reminded and returns them, for the
// caller to bump. The mark is written first and only from a request not yet marked, so of any
// number of replicas and sweeps exactly one bumps a request, and only once; a bump that then
// fails to post is not tried again (it is logged).
func (s *Service) DueReminders(ctx context.Context) ([]*Request, error) {
	if s.remindAfter() == 0 {
		return nil, nil
	}
	ids, err := s.store.OpenRequests(ctx)
	if err != nil {
		return nil, fmt.Errorf("reminders: %w", err)
	}
	now := s.now()
	var due []*Request
	var errs []error
	for _, id := range ids {
		r, err := s.store.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("reminder %s: %w", id, err))
			continue
		}
		if !s.remindDue(r, now) {
			continue
		}
		marked, err := s.store.Update(ctx, id, func(r *Request) error {
			if !s.remindDue(r, now) {
				return ErrConflict
			}
			r.RemindedAt = now
			return nil
		})
		if errors.Is(err, ErrConflict) {
			continue // decided or bumped meanwhile
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("reminder %s: %w", id, err))
			continue
		}
		s.record(ctx, EventReminded, marked, "", "no decision after "+FormatDuration(now.Sub(marked.CreatedAt).Truncate(time.Minute)))
		due = append(due, marked)
	}
	return due, errors.Join(errs...)
}

// Remind records the requester's one reminder and returns the request, for the caller to bump
// to its approvers. Only the requester may, once per request, while it waits for a decision.
func (s *Service) Remind(ctx context.Context, id, requester string) (*Request, error) {
	r, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if requester != r.Requester {
		return r, Errorf(Forbidden, "Only the person who asked for this pass can remind the approvers.")
	}
	now := s.now()
	var refusal error
	reminded, err := s.store.Update(ctx, id, func(cur *Request) error {
		refusal = nil // Update may run this again on a fresh copy
		switch {
		case cur.State != Pending:
			refusal = stateConflict(cur)
		case !now.Before(cur.ExpiresAt):
			refusal = Errorf(Conflict, "This request expired without a decision; ask for a new one with /tap.")
		case !cur.RequesterRemindedAt.IsZero():
			refusal = Errorf(Conflict, "You already reminded the approvers about this request at %s; each request gets one reminder from you. If it is urgent, ask an approver directly.",
				cur.RequesterRemindedAt.UTC().Format("15:04 UTC on Jan 2"))
		case cur.ApprovalMessage.IsZero():
			refusal = Errorf(Conflict, "This request has not reached the approvers yet; try again in a minute.")
		default:
			cur.RequesterRemindedAt = now
			return nil
		}
		return ErrConflict
	})
	if refusal != nil {
		return r, refusal
	}
	if err != nil {
		return r, storeError(err)
	}
	s.record(ctx, EventReminded, reminded, requester, "the requester reminded the approvers")
	return reminded, nil
}
