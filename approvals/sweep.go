package approvals

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// replicaKey names a replica's heartbeat in the store.
func replicaKey(instance string) string { return "replica:" + instance }

// Heartbeat tells the other replicas this one is alive for ttl; the sweeper takes over the
// in-flight work of a replica whose heartbeat has run out.
func (s *Service) Heartbeat(ctx context.Context, ttl time.Duration) error {
	if err := s.store.Touch(ctx, replicaKey(s.cfg.Instance), ttl); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// TakeSweepTurn reports whether this replica should sweep now: one replica a turn.
func (s *Service) TakeSweepTurn(ctx context.Context, turn time.Duration) (bool, error) {
	return s.store.Claim(ctx, "sweep-turn", turn)
}

// FirstDelivery reports whether an envelope ID is seen for the first time across all replicas,
// so a redelivered envelope is not acted on twice.
func (s *Service) FirstDelivery(ctx context.Context, envelopeID string) (bool, error) {
	return s.store.Claim(ctx, "envelope:"+envelopeID, time.Hour)
}

// Sweep expires what nobody decided or revealed in time and finishes or reports what a stopped
// replica left half done. It returns every request it changed, and every request it took over
// to deliver, so the caller can bring the chat up to date.
func (s *Service) Sweep(ctx context.Context) ([]*Request, error) {
	ids, err := s.store.OpenRequests(ctx)
	if err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	var changed []*Request
	var errs []error
	for _, id := range ids {
		out, err := s.sweepOne(ctx, id)
		if err != nil {
			errs = append(errs, fmt.Errorf("sweep %s: %w", id, err))
		}
		changed = append(changed, out...)
	}
	return changed, errors.Join(errs...)
}

func (s *Service) sweepOne(ctx context.Context, id string) ([]*Request, error) {
	r, err := s.store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if r.Owner != "" {
		stale, err := s.stale(ctx, r, now)
		if err != nil || !stale {
			return nil, err
		}
		out, err := s.recover(ctx, r, now)
		if errors.Is(err, ErrConflict) {
			return nil, nil // another sweeper or the owner got there first
		}
		return out, err
	}
	switch {
	case r.State == Pending && !now.Before(r.ExpiresAt):
		expired, err := s.transition(ctx, id, Pending, func(r *Request) { r.State = Expired })
		if err != nil {
			return nil, err
		}
		s.releaseTarget(ctx, expired)
		s.record(ctx, EventExpired, expired, "", "no decision within TAP_REQUEST_TTL")
		return []*Request{expired}, nil
	case r.State == Issued && !r.PassExpiresAt.IsZero() && !now.Before(r.PassExpiresAt):
		lapsed, err := s.transition(ctx, id, Issued, func(r *Request) { r.State = Expired })
		if err != nil {
			return nil, err
		}
		if err := s.store.DeleteSecret(ctx, id); err != nil {
			s.log.ErrorContext(ctx, "delete lapsed sealed pass", "request_id", id, "err", err)
		}
		s.record(ctx, EventExpired, lapsed, "", "the pass expired before it was revealed")
		return []*Request{lapsed}, nil
	}
	return nil, nil
}

// stale reports whether the replica that owns r's in-flight change is gone or out of time.
func (s *Service) stale(ctx context.Context, r *Request, now time.Time) (bool, error) {
	if !now.Before(r.LeaseUntil) {
		return true, nil
	}
	if r.Owner == s.cfg.Instance {
		return false, nil
	}
	alive, err := s.store.Alive(ctx, replicaKey(r.Owner))
	if err != nil {
		return false, err
	}
	return !alive, nil
}

// transitionFrom is transition that also requires the request to still be owned as the sweeper
// read it: two overlapping sweeps, or an owner that came back, make the later change a conflict,
// so nothing is delivered or resubmitted twice.
func (s *Service) transitionFrom(ctx context.Context, seen *Request, from State, change func(*Request)) (*Request, error) {
	r, err := s.store.Update(ctx, seen.ID, func(r *Request) error {
		if r.State != from || r.Owner != seen.Owner || !r.LeaseUntil.Equal(seen.LeaseUntil) {
			return ErrConflict
		}
		change(r)
		return nil
	})
	if errors.Is(err, ErrConflict) {
		return nil, fmt.Errorf("taking over %s: %w", seen.ID, ErrConflict)
	}
	if err != nil {
		return nil, storeError(err)
	}
	return r, nil
}

// recover finishes or reports the change a stopped replica left.
func (s *Service) recover(ctx context.Context, r *Request, now time.Time) ([]*Request, error) {
	takeOver := func(r *Request) { r.Owner, r.LeaseUntil = s.cfg.Instance, now.Add(s.cfg.IssueLease) }
	switch r.State {
	case Issued:
		// The pass is stored; only the recipient's DM is missing.
		mine, err := s.transitionFrom(ctx, r, Issued, takeOver)
		if err != nil {
			return nil, err
		}
		s.log.InfoContext(ctx, "taking over delivery from a stopped replica", "request_id", r.ID, "from", r.Owner)
		return []*Request{mine}, nil
	case Issuing:
		if r.PassID != "" {
			stored, err := s.store.HasSecret(ctx, r.ID)
			if err != nil {
				return nil, err
			}
			if stored {
				mine, err := s.transitionFrom(ctx, r, Issuing, func(r *Request) { r.State = Issued; takeOver(r) })
				if err != nil {
					return nil, err
				}
				s.log.InfoContext(ctx, "completing an issue a stopped replica left", "request_id", r.ID, "from", r.Owner)
				return []*Request{mine}, nil
			}
		}
		return s.abandonIssue(ctx, r)
	case Revealing:
		stored, err := s.store.HasSecret(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		if stored {
			// The pass never left the store: the recipient can click again.
			_, err := s.transitionFrom(ctx, r, Revealing, func(r *Request) { r.State, r.Owner, r.LeaseUntil = Issued, "", time.Time{} })
			return nil, err
		}
		// The pass left the store but nobody knows whether it reached the screen: a credential
		// in an unknown place is deleted, and the people involved are told to ask again.
		if err := s.deleteInterruptedPasses(ctx, r); err != nil {
			return nil, err
		}
		failed, err := s.transitionFrom(ctx, r, Revealing, func(r *Request) {
			r.State, r.Owner, r.LeaseUntil = Failed, "", time.Time{}
			r.Failure = "tapbot was interrupted while showing the pass, so it was deleted in Entra ID for safety. Ask for a new one with /tap."
		})
		if err != nil {
			return nil, err
		}
		s.record(ctx, EventRevoked, failed, "", "a reveal was interrupted after the pass left the store; the pass was deleted for safety")
		return []*Request{failed}, nil
	}
	_, err := s.store.Update(ctx, r.ID, func(r *Request) error { r.Owner, r.LeaseUntil = "", time.Time{}; return nil })
	return nil, err
}

// abandonIssue ends an approval that stopped before its pass was safely stored: any pass it
// created is deleted in Entra ID, the request fails, and a copy goes back to the approvers, so
// approving again is one click (a new pass replaces any old one anyway).
func (s *Service) abandonIssue(ctx context.Context, r *Request) ([]*Request, error) {
	if err := s.deleteInterruptedPasses(ctx, r); err != nil {
		return nil, err // try again next sweep rather than leave a live pass behind
	}
	// The copy needs the one-pending-request lock like any request; when another request for
	// the target is already pending, the interrupted one just fails and says so.
	locked, err := s.store.Claim(ctx, targetKey(r.Target), s.cfg.RequestTTL+s.cfg.IssueLease)
	if err != nil {
		return nil, storeError(err)
	}
	if !locked {
		failed, err := s.transitionFrom(ctx, r, Issuing, func(f *Request) {
			f.State, f.Owner, f.LeaseUntil = Failed, "", time.Time{}
			f.Failure = "tapbot was interrupted while creating the pass, and nothing was delivered; any pass it had made was deleted. Another request for this person is already waiting for approval."
		})
		if err != nil {
			return nil, err
		}
		s.record(ctx, EventIssueFailed, failed, "", "interrupted; another request for the target is pending")
		return []*Request{failed}, nil
	}
	again := r.Clone()
	again.ID, again.State, again.CreatedAt = NewID(), Pending, s.now()
	again.ExpiresAt = again.CreatedAt.Add(s.cfg.RequestTTL)
	again.DecidedBy, again.DecidedAt, again.PassID, again.PassExpiresAt = "", time.Time{}, "", time.Time{}
	again.Owner, again.LeaseUntil, again.ApprovalMessage, again.RevealMessage = "", time.Time{}, MessageRef{}, MessageRef{}
	if err := s.store.Create(ctx, again); err != nil {
		s.releaseTarget(ctx, again)
		return nil, fmt.Errorf("resubmit: %w", err)
	}
	failed, err := s.transitionFrom(ctx, r, Issuing, func(f *Request) {
		f.State, f.Owner, f.LeaseUntil, f.Resubmitted = Failed, "", time.Time{}, again.ID
		f.Failure = "tapbot was interrupted while creating the pass, and nothing was delivered; any pass it had made was deleted. The request was posted again for approval."
	})
	if err != nil {
		_, _ = s.Cancel(ctx, again.ID, "a duplicate of an interrupted request")
		return nil, err
	}

	s.record(ctx, EventIssueFailed, failed, "", "interrupted; resubmitted as "+again.ID)
	s.record(ctx, EventRequested, again, again.Requester, "resubmitted after "+r.ID+" was interrupted")
	return []*Request{failed, again}, nil
}

// deleteInterruptedPasses deletes the pass an interrupted change left: the recorded one, or
// when the approval died before recording it, any pass created for the target since then.
func (s *Service) deleteInterruptedPasses(ctx context.Context, r *Request) error {
	if r.PassID != "" {
		if err := s.dir.DeletePass(ctx, r.Target.EntraID, r.PassID); err != nil {
			return fmt.Errorf("delete interrupted pass: %w", err)
		}
		return nil
	}
	passes, err := s.dir.ListPasses(ctx, r.Target.EntraID)
	if err != nil {
		return fmt.Errorf("list passes after interruption: %w", err)
	}
	// Allow for clock skew between tapbot and Entra ID.
	since := r.DecidedAt.Add(-2 * time.Minute)
	for _, p := range passes {
		if p.CreatedAt.Before(since) {
			continue
		}
		if err := s.dir.DeletePass(ctx, r.Target.EntraID, p.ID); err != nil {
			return fmt.Errorf("delete interrupted pass: %w", err)
		}
		s.log.InfoContext(ctx, "deleted a pass an interrupted approval made", "request_id", r.ID, "target", r.Target.UPN)
	}
	return nil
}
