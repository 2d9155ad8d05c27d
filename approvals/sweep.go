package approvals

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// replicaKey names a replica's heartbeat in the store.
func replicaKey(instance string) string { return "replica:" + instance }

// sweepTurnKey names the replica whose turn it is to sweep: its ID and a token of that turn.
const sweepTurnKey = "sweep-turn"

// clockSkew allows for tapbot's clock and Entra ID's disagreeing about when a pass was made.
const clockSkew = 2 * time.Minute

// Cleaning up after an interruption (deleting the pass it may have left) needs Entra ID. While
// Entra ID fails (an outage, or it refuses the app), the sweeper tries again with a doubling
// pause from IssueLease up to cleanupMaxBackoff, holding the request meanwhile. Once the cleanup
// has failed for cleanupGiveUp since its first failure, and at least cleanupMinAttempts times,
// the request ends Failed and the approver and requester are told what to check by hand: half an
// hour outlasts the usual Graph incident, and after it people must know rather than wait on a
// loop. With the defaults that is about six tries.
const (
	cleanupGiveUp      = 30 * time.Minute
	cleanupMinAttempts = 3
	cleanupMaxBackoff  = 10 * time.Minute
)

// errTargetGone is wrapped when Entra ID no longer knows the target: there is nothing left to
// clean up or to issue.
var errTargetGone = errors.New("the target no longer exists in the directory")

// holding is one request whose lease this replica renews with each heartbeat.
type holding struct{ lease time.Duration }

// hold has each Heartbeat renew id's lease for as long as this replica works on it, so another
// replica's sweeper does not take over slow work from a live replica. The returned func stops
// the renewals.
func (s *Service) hold(id string, lease time.Duration) (release func()) {
	h := &holding{lease: lease}
	s.leases.Lock()
	s.holds[id] = h
	s.leases.Unlock()
	return func() {
		s.leases.Lock()
		if s.holds[id] == h {
			delete(s.holds, id)
		}
		s.leases.Unlock()
	}
}

// Heartbeat tells the other replicas this one is alive for ttl; the sweeper takes over the
// in-flight work of a replica whose heartbeat has run out. It also renews the leases of the
// requests this replica is working on and, while it sweeps, its sweep turn: both last as long as
// the replica lives and works, not a fixed time.
func (s *Service) Heartbeat(ctx context.Context, ttl time.Duration) error {
	if err := s.store.Touch(ctx, replicaKey(s.cfg.Instance), ttl); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	s.leases.Lock()
	held := make(map[string]*holding, len(s.holds))
	for id, h := range s.holds {
		held[id] = h
	}
	s.leases.Unlock()
	var errs []error
	for id, h := range held {
		if err := s.renew(ctx, id, h); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.renewTurn(ctx, ttl); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// renew extends the lease of a request this replica works on, and the target lock it holds
// while its pass is being made. A request that is no longer this replica's is let go.
func (s *Service) renew(ctx context.Context, id string, h *holding) error {
	until := s.now().Add(h.lease)
	r, err := s.store.Update(ctx, id, func(r *Request) error {
		if r.Owner != s.cfg.Instance || r.State.Final() {
			return ErrConflict
		}
		if until.After(r.LeaseUntil) {
			r.LeaseUntil = until
		}
		return nil
	})
	if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
		s.leases.Lock()
		if s.holds[id] == h {
			delete(s.holds, id)
		}
		s.leases.Unlock()
		return nil
	}
	if err != nil {
		return fmt.Errorf("renew the lease of %s: %w", id, err)
	}
	if r.State == Issuing {
		ok, err := s.store.CompareAndSwap(ctx, targetKey(r.Target), id, id, s.lockTTL())
		if err != nil {
			return fmt.Errorf("renew the target lock of %s: %w", id, err)
		}
		if !ok {
			s.log.WarnContext(ctx, "the request no longer holds its target's lock", "request_id", id)
		}
	}
	s.checkpoint("renewed")
	return nil
}

// TakeSweepTurn reports whether this replica should sweep now: one replica a turn. The turn
// names the replica that took it, and its heartbeat renews it while a sweep outlasts it.
func (s *Service) TakeSweepTurn(ctx context.Context, turn time.Duration) (bool, error) {
	holder := s.cfg.Instance + "/" + NewID()
	ok, err := s.store.CompareAndSwap(ctx, sweepTurnKey, "", holder, turn)
	if err != nil {
		return false, err
	}
	if !ok {
		s.log.DebugContext(ctx, "another replica's sweep turn")
		return false, nil
	}
	s.leases.Lock()
	s.turn, s.turnHolder, s.turnLost = turn, holder, false
	s.leases.Unlock()
	return true, nil
}

// renewTurn keeps this replica's sweep turn while it sweeps; if another replica has it now,
// the sweep stops after the request at hand.
func (s *Service) renewTurn(ctx context.Context, ttl time.Duration) error {
	s.leases.Lock()
	turn, holder, sweeping := s.turn, s.turnHolder, s.sweeping
	s.leases.Unlock()
	if !sweeping || turn == 0 {
		return nil
	}
	ok, err := s.store.CompareAndSwap(ctx, sweepTurnKey, holder, holder, max(turn, ttl))
	if err != nil {
		return fmt.Errorf("renew the sweep turn: %w", err)
	}
	if !ok {
		s.leases.Lock()
		s.turnLost = true
		s.leases.Unlock()
	}
	return nil
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
	s.leases.Lock()
	s.sweeping = true
	s.leases.Unlock()
	defer func() {
		s.leases.Lock()
		s.sweeping, s.turn, s.turnHolder, s.turnLost = false, 0, "", false
		s.leases.Unlock()
	}()
	ids, err := s.store.OpenRequests(ctx)
	if err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	var changed []*Request
	var errs []error
	for _, id := range ids {
		s.leases.Lock()
		lost := s.turnLost
		s.leases.Unlock()
		if lost {
			s.log.InfoContext(ctx, "another replica took the sweep turn; leaving the rest of this sweep to it")
			break
		}
		out, err := s.sweepOne(ctx, id)
		if err != nil {
			errs = append(errs, fmt.Errorf("sweep %s: %w", id, err))
		}
		changed = append(changed, out...)
	}
	s.log.DebugContext(ctx, "swept", "open", len(ids), "changed", len(changed))
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
	case r.State == Issued && now.Add(clockSkew).Before(r.PassExpiresAt):
		// A sealed copy must be there, stored or under a claim, or nobody can ever reveal the pass.
		kept, err := s.store.HasSealedCopy(ctx, id)
		if err != nil || kept {
			return nil, err
		}
		out, err := s.passGone(ctx, r, now)
		if errors.Is(err, ErrConflict) {
			return nil, nil // a click or another sweeper got there first
		}
		return out, err
	case r.State == Issued && !r.PassExpiresAt.IsZero() && !now.Before(r.PassExpiresAt) && !r.UnopenedAt.IsZero():
		// Clicked, but never unsealed: "expired before it was revealed" would blame the person.
		failed, err := s.transition(ctx, id, Issued, func(r *Request) {
			r.State, r.RevealToken = Failed, ""
			r.Failure = "No tapbot replica that was asked could unseal the pass before it expired: it was sealed with a TAP_ENCRYPTION_KEY they do not have. Nobody saw it, and it no longer works. Ask for a new one with /tap, and tell your IT team to give every replica the same keys."
		})
		if err != nil {
			return nil, err
		}
		s.dropSealedCopy(ctx, failed)
		s.record(ctx, EventExpired, failed, "", "the pass expired unopened: no replica that was clicked could unseal it (TAP_ENCRYPTION_KEY)")
		return []*Request{failed}, nil
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
// read it: two overlapping sweeps, or an owner that came back or renewed its lease, make the
// later change a conflict, so nothing is delivered or resubmitted twice.
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

// takeOver makes a stale request this replica's before the sweeper acts on it, so of
// overlapping sweeps only one acts, and an owner that was only slow finds out at its next step.
func (s *Service) takeOver(ctx context.Context, seen *Request, now time.Time, also func(*Request)) (*Request, error) {
	return s.transitionFrom(ctx, seen, seen.State, func(r *Request) {
		r.Owner, r.LeaseUntil = s.cfg.Instance, now.Add(s.cfg.IssueLease)
		if also != nil {
			also(r)
		}
	})
}

// recover finishes or reports the change a stopped replica left.
func (s *Service) recover(ctx context.Context, r *Request, now time.Time) ([]*Request, error) {
	switch r.State {
	case Issued:
		// The pass is stored; only the recipient's DM is missing.
		mine, err := s.takeOver(ctx, r, now, nil)
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
				mine, err := s.takeOver(ctx, r, now, func(r *Request) { r.State = Issued })
				if err != nil {
					return nil, err
				}
				s.releaseTarget(ctx, mine)
				s.log.InfoContext(ctx, "completing an issue a stopped replica left", "request_id", r.ID, "from", r.Owner)
				return []*Request{mine}, nil
			}
		}
		return s.abandonIssue(ctx, r, now)
	case Revealing:
		// Made this replica's before anything else is looked at: the stalled owner, if it is only
		// slow, can then neither take the pass nor put it back (Store.TakeSecret checks the
		// owner), so what the sweeper sees next stays so.
		mine, err := s.takeOver(ctx, r, now, nil)
		if err != nil {
			return nil, err
		}
		stored, err := s.store.HasSecret(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		if stored {
			// The pass never left the store: the recipient can click again, under a new token,
			// so no claim the stalled owner may have left is ever picked up.
			_, err := s.owned(ctx, r.ID, Revealing, func(r *Request) {
				r.State, r.Owner, r.LeaseUntil, r.RevealToken = Issued, "", time.Time{}, ""
			})
			return nil, err
		}
		// Taken, or lost: the owner may have put it on screen, and in doubt a pass is never shown
		// again.
		return s.abandonReveal(ctx, mine, r)
	}
	_, err := s.store.Update(ctx, r.ID, func(r *Request) error { r.Owner, r.LeaseUntil = "", time.Time{}; return nil })
	return nil, err
}

// passGone ends an issued request whose sealed pass the store no longer has, neither stored nor
// claimed (a Redis restart without persistence, a failover that lost it): nobody can reveal it,
// so the pass is deleted in Entra ID and the recipient and requester are told the truth, as a
// click would find (lostPass), instead of a Reveal button that fails every time.
func (s *Service) passGone(ctx context.Context, seen *Request, now time.Time) ([]*Request, error) {
	mine, err := s.takeOver(ctx, seen, now, nil)
	if err != nil {
		return nil, err
	}
	s.log.WarnContext(ctx, "sweep: an issued pass has no sealed copy left in the store; deleting it in Entra ID", "request_id", mine.ID)
	deleted := "It was deleted in Entra ID for safety; ask for a new one with /tap."
	if err := s.deletePass(ctx, mine, mine.PassID); err != nil {
		deleted = fmt.Sprintf("tapbot could not delete it in Entra ID: delete the Temporary Access Pass of %s there by hand, and ask for a new one with /tap.", mine.Target.UPN)
	}
	failed, err := s.owned(ctx, mine.ID, Issued, func(r *Request) {
		r.State, r.Owner, r.LeaseUntil, r.RevealToken = Failed, "", time.Time{}, ""
		r.Failure = "The pass is no longer in tapbot's store (the store lost it, in a restart or a failover), so it cannot be revealed, and nobody saw it through tapbot. " + deleted
	})
	if err != nil {
		return nil, err
	}
	s.dropSealedCopy(ctx, failed)
	s.record(ctx, EventRevoked, failed, "", "the sealed pass was gone from the store before it was revealed; the pass was deleted in Entra ID for safety")
	return []*Request{failed}, nil
}

// cleanUp deletes the pass the interrupted change seen may have left, for mine, the request as
// this replica took it over; the lease is renewed while Entra ID answers.
func (s *Service) cleanUp(ctx context.Context, mine, seen *Request) error {
	release := s.hold(mine.ID, s.cfg.IssueLease)
	defer release()
	return s.deleteInterruptedPasses(ctx, seen)
}

// abandonReveal ends a reveal that was interrupted after the pass left the store (mine is the
// request as this replica took it over from seen): nobody knows whether it reached the screen,
// and a credential in an unknown place is deleted, and the people involved are told to ask
// again.
func (s *Service) abandonReveal(ctx context.Context, mine, seen *Request) ([]*Request, error) {
	// A deleted account (errTargetGone) has no pass left to delete.
	if cleanupErr := s.cleanUp(ctx, mine, seen); cleanupErr != nil && !errors.Is(cleanupErr, errTargetGone) {
		return s.cleanupFailed(ctx, mine, cleanupErr, fmt.Sprintf(
			"tapbot was interrupted while showing the pass, and could not delete it in Entra ID for safety because Entra ID kept failing for %s. Delete the Temporary Access Pass of %s in Entra ID by hand, and ask for a new one with /tap.",
			FormatDuration(cleanupGiveUp), mine.Target.UPN))
	}
	failed, err := s.owned(ctx, mine.ID, Revealing, func(r *Request) {
		r.State, r.Owner, r.LeaseUntil, r.RevealToken = Failed, "", time.Time{}, ""
		r.Failure = "tapbot was interrupted while showing the pass, so it was deleted in Entra ID for safety. Ask for a new one with /tap."
	})
	if err != nil {
		return nil, err
	}
	s.dropSealedCopy(ctx, failed) // the claimed copy the interrupted reveal took
	s.record(ctx, EventRevoked, failed, "", "a reveal was interrupted after the pass left the store; the pass was deleted for safety")
	return []*Request{failed}, nil
}

// abandonIssue ends an approval that stopped before its pass was safely stored: any pass it
// created is deleted in Entra ID, the request fails, and a copy goes back to the approvers, so
// approving again is one click (a new pass replaces any old one anyway). The copy inherits the
// target lock. When the target no longer exists, or Entra ID keeps failing past cleanupGiveUp,
// the request just fails and says so.
func (s *Service) abandonIssue(ctx context.Context, seen *Request, now time.Time) ([]*Request, error) {
	mine, err := s.takeOver(ctx, seen, now, func(r *Request) {
		// A name of this takeover's own: a copy name two sweepers shared would let both win its
		// lock (CompareAndSwap recognises its own value) and the slower cancel the other's copy.
		if r.Resubmitted != "" {
			r.Superseded = append(r.Superseded, r.Resubmitted)
		}
		r.Resubmitted = NewID()
	})
	if err != nil {
		return nil, err
	}
	switch cleanupErr := s.cleanUp(ctx, mine, seen); {
	case errors.Is(cleanupErr, errTargetGone):
		s.log.InfoContext(ctx, "the target of an interrupted approval no longer exists", "request_id", mine.ID, "target", mine.Target.UPN)
		return s.endIssue(ctx, mine, fmt.Sprintf(
			"%s no longer exists in Entra ID, so tapbot stopped: no pass was delivered and none is left. If the account is restored, ask again with /tap.",
			mine.Target.UPN), "the target no longer exists in Entra ID", true)
	case cleanupErr != nil:
		return s.cleanupFailed(ctx, mine, cleanupErr, fmt.Sprintf(
			"tapbot was interrupted while creating the pass and nothing was delivered, but it could not make sure no pass was left because Entra ID kept failing for %s. Check %s in Entra ID and delete any Temporary Access Pass there, then ask again with /tap.",
			FormatDuration(cleanupGiveUp), mine.Target.UPN))
	}

	// The copy needs the one-open-request lock like any request: handed over from this one, or
	// from the copy an earlier takeover of it named (it stopped, or was too slow), or taken
	// afresh when this one's ran out.
	s.checkpoint("resubmitting")
	again := mine.Resubmitted
	var locked bool
	for _, from := range slices.Concat([]string{mine.ID}, mine.Superseded, []string{""}) {
		ok, err := s.store.CompareAndSwap(ctx, targetKey(mine.Target), from, again, s.lockTTL())
		if err != nil {
			return nil, storeError(err)
		}
		if ok {
			locked = true
			break
		}
	}
	if !locked {
		return s.endIssue(ctx, mine,
			"tapbot was interrupted while creating the pass, and nothing was delivered; any pass it had made was deleted. Another request for this person is already waiting for approval.",
			"interrupted; another request for the target is pending", false)
	}
	cp := mine.Clone()
	cp.ID, cp.State, cp.CreatedAt = again, Pending, s.now()
	cp.ExpiresAt = cp.CreatedAt.Add(s.cfg.RequestTTL)
	cp.DecidedBy, cp.DecidedAt, cp.PassID, cp.PassExpiresAt, cp.PassStartsAt = "", time.Time{}, "", time.Time{}, time.Time{}
	cp.Owner, cp.LeaseUntil, cp.ApprovalMessage, cp.RevealMessage = "", time.Time{}, MessageRef{}, MessageRef{}
	cp.Resubmitted, cp.Superseded, cp.NotCreated, cp.CleanupFailures, cp.CleanupSince = "", nil, false, 0, time.Time{}
	cp.RemindedAt, cp.RequesterRemindedAt = time.Time{}, time.Time{}
	cp.Baseline, cp.BaselineAt = nil, time.Time{}
	if err := s.store.Create(ctx, cp); err != nil && !errors.Is(err, ErrConflict) {
		return nil, fmt.Errorf("resubmit: %w", err) // the lock stays with the copy's name for the retry
	}
	failed, err := s.owned(ctx, mine.ID, Issuing, func(f *Request) {
		f.State, f.Owner, f.LeaseUntil = Failed, "", time.Time{}
		f.Failure = "tapbot was interrupted while creating the pass, and nothing was delivered; any pass it had made was deleted. The request was posted again for approval."
	})
	if err != nil {
		_, _ = s.Cancel(ctx, again, "a duplicate of an interrupted request")
		return nil, err
	}
	s.dropSealedCopy(ctx, failed)
	for _, old := range mine.Superseded {
		// A copy an earlier takeover made before it stopped was never put before anyone.
		if _, err := s.Cancel(ctx, old, "superseded by "+again+", the copy of an interrupted request"); err == nil {
			s.log.InfoContext(ctx, "cancelled the copy an earlier takeover made", "request_id", old, "copy", again)
		}
	}
	resubmitted, err := s.store.Get(ctx, again)
	if err != nil {
		resubmitted = cp
	}
	s.record(ctx, EventIssueFailed, failed, "", "interrupted; resubmitted as "+again)
	s.record(ctx, EventRequested, resubmitted, resubmitted.Requester, "resubmitted after "+mine.ID+" was interrupted")
	return []*Request{failed, resubmitted}, nil
}

// endIssue fails an Issuing request this replica took over, without a copy; locked says whether
// it still holds its target's lock.
func (s *Service) endIssue(ctx context.Context, mine *Request, reason, detail string, locked bool) ([]*Request, error) {
	failed, err := s.owned(ctx, mine.ID, Issuing, func(f *Request) {
		f.State, f.Owner, f.LeaseUntil, f.Resubmitted, f.Failure = Failed, "", time.Time{}, "", reason
	})
	if err != nil {
		return nil, err
	}
	if locked {
		s.releaseTarget(ctx, failed)
	}
	s.dropSealedCopy(ctx, failed)
	s.record(ctx, EventIssueFailed, failed, "", detail)
	return []*Request{failed}, nil
}

// dropSealedCopy deletes a sealed pass a slower owner may have stored for a request that has
// just ended without it.
func (s *Service) dropSealedCopy(ctx context.Context, r *Request) {
	if err := s.store.DeleteSecret(ctx, r.ID); err != nil {
		s.log.ErrorContext(ctx, "could not delete a sealed pass of an ended request; it expires with the pass",
			"request_id", r.ID, "err", err)
	}
}

// cleanupFailed counts a failed cleanup of mine, taken over by this replica. Below the bound
// (cleanupGiveUp, cleanupMinAttempts) it keeps the request leased to itself until the next try,
// so the next sweeps leave it alone; past it, the request ends Failed with giveUp as the reason.
func (s *Service) cleanupFailed(ctx context.Context, mine *Request, cause error, giveUp string) ([]*Request, error) {
	now := s.now()
	attempts, since := mine.CleanupFailures+1, mine.CleanupSince
	if since.IsZero() {
		since = now
	}
	s.log.WarnContext(ctx, "could not clean up after an interruption; Entra ID is failing",
		"request_id", mine.ID, "attempt", attempts, "failing_since", since, "err", cause)
	if attempts >= cleanupMinAttempts && now.Sub(since) >= cleanupGiveUp {
		failed, err := s.owned(ctx, mine.ID, mine.State, func(f *Request) {
			f.State, f.Owner, f.LeaseUntil, f.Resubmitted = Failed, "", time.Time{}, ""
			f.Failure, f.CleanupFailures, f.CleanupSince = giveUp, attempts, since
		})
		if err != nil {
			return nil, err
		}
		if mine.State == Issuing {
			s.releaseTarget(ctx, failed)
		}
		s.dropSealedCopy(ctx, failed)
		s.log.ErrorContext(ctx, "gave up cleaning up after an interruption; people were told to check Entra ID by hand",
			"request_id", mine.ID, "target", mine.Target.UPN, "attempts", attempts, "err", cause)
		s.record(ctx, EventIssueFailed, failed, "", "gave up after "+strconv.Itoa(attempts)+" tries to clean up in Entra ID: "+UserMessage(cause))
		return []*Request{failed}, nil
	}
	backoff := cleanupMaxBackoff
	if attempts <= 16 {
		backoff = min(s.cfg.IssueLease<<(attempts-1), cleanupMaxBackoff)
	}
	_, err := s.owned(ctx, mine.ID, mine.State, func(f *Request) {
		f.CleanupFailures, f.CleanupSince, f.LeaseUntil = attempts, since, now.Add(max(backoff, s.cfg.IssueLease))
	})
	return nil, errors.Join(fmt.Errorf("clean up after an interruption (try %d): %w", attempts, cause), err)
}

// deleteInterruptedPasses deletes the pass an interrupted change of r left. When r recorded the
// pass's ID, that pass; when the create call never began, none. Otherwise the pass was made but
// its ID was lost, and it is found by listing the target's passes: only a pass created within
// r's issuing window (from its approval to the end of its lease, give or take clock skew) that no
// other request recorded as its own. The target lock, held from Submit until the pass is final,
// keeps other requests from making passes in that window in the first place.
func (s *Service) deleteInterruptedPasses(ctx context.Context, r *Request) error {
	if r.PassID != "" {
		if err := s.dir.DeletePass(ctx, r.Target.EntraID, r.PassID); err != nil {
			return fmt.Errorf("delete interrupted pass: %w", err)
		}
		return nil
	}
	if r.NotCreated {
		return nil
	}
	passes, err := s.dir.ListPasses(ctx, r.Target.EntraID)
	if ErrorCode(err) == NotFound {
		return fmt.Errorf("list passes after interruption: %w: %w", errTargetGone, err)
	}
	if err != nil {
		return fmt.Errorf("list passes after interruption: %w", err)
	}
	from, until := r.DecidedAt.Add(-clockSkew), r.LeaseUntil.Add(clockSkew)
	for _, p := range passes {
		if p.CreatedAt.Before(from) || p.CreatedAt.After(until) {
			continue
		}
		known, err := s.store.Alive(ctx, issuedPassKey(p.ID))
		if err != nil {
			return fmt.Errorf("check whose pass %s is: %w", p.ID, err)
		}
		if known {
			continue // another request's, recorded before this one began
		}
		if err := s.dir.DeletePass(ctx, r.Target.EntraID, p.ID); err != nil {
			return fmt.Errorf("delete interrupted pass: %w", err)
		}
		s.log.InfoContext(ctx, "deleted a pass an interrupted approval made", "request_id", r.ID, "target", r.Target.UPN)
	}
	return nil
}
