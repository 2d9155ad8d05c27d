package approvals

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

func selfRequestRefused() error {
	return Errorf(Forbidden, "You cannot ask for a pass for yourself here. Ask your manager or IT to request one for you (if your phone is lost, they can confirm it is you).")
}

// describePrivileges names what makes an account privileged, for a refusal or an approver.
func describePrivileges(p Privileges) string {
	var parts []string
	if len(p.Roles) > 0 {
		parts = append(parts, "directory roles: "+strings.Join(p.Roles, ", "))
	}
	if len(p.Groups) > 0 {
		parts = append(parts, "member of protected groups: "+strings.Join(p.Groups, ", "))
	}
	return strings.Join(parts, "; ")
}

// checkRate counts a request against the requester's hourly limit.
func (s *Service) checkRate(ctx context.Context, requester string) error {
	n, until, err := s.store.Hit(ctx, "rate:"+requester, time.Hour)
	if err != nil {
		return storeError(err)
	}
	if n > s.cfg.RatePerRequester {
		return Errorf(Forbidden, "You have asked for %d passes in the last hour; the limit is %d. Try again after %s.",
			n-1, s.cfg.RatePerRequester, until.UTC().Format("15:04 UTC"))
	}
	return nil
}

func targetKey(t Target) string { return "target:" + t.EntraID }

// lockTTL bounds how long a target stays locked by a request nobody finishes: its time to be
// decided and to be issued.
func (s *Service) lockTTL() time.Duration { return s.cfg.RequestTTL + s.cfg.IssueLease }

// lockTarget allows one open request per target across replicas, from Submit until its pass is
// final (stored, or the request ended). The lock names request id as its holder, so only that
// request renews, hands over or releases it. Holding it through issuing means no other request
// for the person can make a pass that cleaning up after this one would take for its own.
func (s *Service) lockTarget(ctx context.Context, t Target, id string) error {
	ok, err := s.store.CompareAndSwap(ctx, targetKey(t), "", id, s.lockTTL())
	if err != nil {
		return storeError(err)
	}
	if !ok {
		return Errorf(Conflict, "There is already a request for %s waiting for approval; wait for its decision, or ask an approver to deny it first.", t.UPN)
	}
	return nil
}

// releaseTarget lets a new request for the target be made once r is done with the lock.
func (s *Service) releaseTarget(ctx context.Context, r *Request) {
	ok, err := s.store.CompareAndSwap(ctx, targetKey(r.Target), r.ID, "", 0)
	if err == nil && !ok {
		// Replicas from before locks named their holder wrote "1"; such a lock is r's too.
		_, err = s.store.CompareAndSwap(ctx, targetKey(r.Target), "1", "", 0)
	}
	if err != nil {
		s.log.WarnContext(ctx, "could not release the one-pending-request lock; it expires on its own",
			"request_id", r.ID, "err", err)
	}
}

// approversFor is who may decide a request: the protected approvers for a privileged target,
// the configured approvers otherwise (the target's manager is checked separately).
func (s *Service) approversFor(r *Request) []string {
	if r.Privileged.Privileged() {
		return s.cfg.ProtectedApprovers
	}
	return s.cfg.Approvers
}

// routeToManager picks the target's manager as the approver to ask first, when configured and
// when the manager is in chat, is not the requester (by chat or directory account), has an
// enabled member account, and the target is not privileged.
func (s *Service) routeToManager(ctx context.Context, r *Request) error {
	if !s.cfg.RouteToManager || r.Privileged.Privileged() {
		return nil
	}
	m, err := s.dir.Manager(ctx, r.Target.EntraID)
	if ErrorCode(err) == NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if notAPerson(m) != "" {
		// Their approval would be refused, so asking them would leave the request with nobody
		// asked; the approvers decide instead.
		return nil
	}
	for _, email := range uniqueFold(m.Mail, m.UPN) {
		id, err := s.people.FindByEmail(ctx, email)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		// A manager who is the requester under another chat account may not approve either,
		// so asking them would leave the request with nobody asked.
		if id != r.Requester && id != r.Target.SlackID && !sameObject(m.ID, r.RequesterEntraID) {
			r.Manager = id
		}
		return nil
	}
	return nil
}

// Revoke deletes an issued pass in the directory, before or after it was revealed. The
// requester, the approver who approved it, the target's manager asked for it, every approver and
// every protected approver may revoke.
func (s *Service) Revoke(ctx context.Context, id, actor string) (*Request, error) {
	r, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if actor != r.Requester && actor != r.DecidedBy && actor != r.Manager {
		// Revoking only ever removes a credential, so every approver and every protected
		// approver (the security team) may do it.
		may := append(append([]string{}, s.cfg.Approvers...), s.cfg.ProtectedApprovers...)
		ok, err := s.isMember(ctx, actor, may)
		if err != nil {
			return r, err
		}
		if !ok {
			return r, &Error{Code: Forbidden, Who: append([]string{r.Requester}, may...),
				Message: "Only the requester and the approvers can revoke this pass."}
		}
	}
	switch r.State {
	case Issued, Revealing, Revealed:
	case Revoked:
		return r, Errorf(Conflict, "This pass was already revoked.")
	default:
		return r, Errorf(Conflict, "There is no pass to revoke: the request is %s.", r.State)
	}
	if err := s.dir.DeletePass(ctx, r.Target.EntraID, r.PassID); err != nil {
		return r, err
	}
	now := s.now()
	revoked, err := s.store.Update(ctx, id, func(r *Request) error {
		switch r.State {
		case Issued, Revealing, Revealed:
			r.State, r.RevokedBy, r.RevokedAt, r.Owner, r.LeaseUntil = Revoked, actor, now, "", time.Time{}
			return nil
		}
		return ErrConflict
	})
	if err != nil {
		if errors.Is(err, ErrConflict) {
			return r, Errorf(Conflict, "This pass was already revoked.")
		}
		return r, storeError(err)
	}
	if err := s.store.DeleteSecret(ctx, id); err != nil {
		s.log.ErrorContext(ctx, "delete the sealed copy of a revoked pass", "request_id", id, "err", err)
	}
	s.record(ctx, EventRevoked, revoked, actor, "")
	return revoked, nil
}

// Report records the recipient saying "this wasn't me": they did not expect this pass. It
// raises an alarm; it changes nothing, so an approver decides whether to revoke.
func (s *Service) Report(ctx context.Context, id, reporter string) (*Request, error) {
	r, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if reporter != r.Recipient && reporter != r.Target.SlackID {
		return r, Errorf(Forbidden, "Only the person this pass was made for can report it.")
	}
	now := s.now()
	reported, err := s.store.Update(ctx, id, func(r *Request) error { r.ReportedAt = now; return nil })
	if err != nil {
		return r, storeError(err)
	}
	s.record(ctx, EventReported, reported, reporter, "the recipient did not expect this pass")
	return reported, nil
}

// Audit reads the trail since a time, for `tapbot audit`.
func (s *Service) Audit(ctx context.Context, since time.Time) ([]Event, error) {
	es, err := s.store.ReadAudit(ctx, since)
	if err != nil {
		return nil, fmt.Errorf("read audit trail: %w", err)
	}
	return es, nil
}
