package approvals

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"time"
)

// homeChannel marks a MessageRef as a person's App Home rather than a message.
const homeChannel = "app_home"

// FromHome is where a click in user's own App Home comes from. It is no posted message, so it
// is never recorded as a request's approval message, and Approve and Deny accept it only from
// that user; every other rule applies as to a click on the approval message.
func FromHome(user string) MessageRef { return MessageRef{Channel: homeChannel, TS: user} }

// homeOf reports whose App Home m is, when it is one.
func (m MessageRef) homeOf() (string, bool) { return m.TS, m.Channel == homeChannel && m.TS != "" }

// Authority says why a person may decide a request: App Home shows it beside each request, so
// an approver sees which rule put the decision in their hands.
type Authority struct {
	// Manager is set when the person is asked as the target's manager (TAP_ROUTE_TO_MANAGER).
	Manager bool
	// Protected is set when the target is privileged, so only the protected approvers
	// (TAP_PROTECTED_APPROVERS) decide; otherwise the person is one of TAP_APPROVERS.
	Protected bool
	// Group is the user group (S…) through which the person is listed; empty when their own ID
	// is listed (or they are the manager).
	Group string
}

// Decidable is a pending request a person may decide, and why they may.
type Decidable struct {
	Request   *Request
	Authority Authority
}

// homeHistory is how far back App Home looks for a person's decisions.
const homeHistory = 7 * 24 * time.Hour

// PendingFor lists the pending requests user may decide now, oldest first, each with why. It
// applies the rules Approve and Deny apply by chat account, so App Home offers no button that
// the click would refuse for them, and never a person's own request or a request for them. The
// directory identity check (fourEyes) runs only when Approve is clicked: rendering a Home tab
// costs no Graph call, and the click refuses another chat account of the requester or target.
func (s *Service) PendingFor(ctx context.Context, user string) ([]Decidable, error) {
	rs, err := s.openPending(ctx)
	if err != nil {
		return nil, err
	}
	var out []Decidable
	for _, r := range rs {
		if err := s.mayDecide(ctx, r, user); err != nil {
			if ErrorCode(err) != "" {
				continue // refused: not theirs to decide
			}
			return nil, err
		}
		a, err := s.authority(ctx, r, user)
		if err != nil {
			return nil, err
		}
		out = append(out, Decidable{Request: r, Authority: a})
	}
	return out, nil
}

// PendingBy lists the requests user asked for that still wait for a decision, oldest first.
func (s *Service) PendingBy(ctx context.Context, user string) ([]*Request, error) {
	rs, err := s.openPending(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(rs, func(r *Request) bool { return r.Requester != user }), nil
}

// openPending reads the requests that can still be decided and were put before approvers,
// oldest first.
func (s *Service) openPending(ctx context.Context) ([]*Request, error) {
	ids, err := s.store.OpenRequests(ctx)
	if err != nil {
		return nil, storeError(err)
	}
	now := s.now()
	var out []*Request
	for _, id := range ids {
		r, err := s.store.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, storeError(err)
		}
		// Only what approvers can see in chat: a request whose message is not recorded yet may
		// still be cancelled because it could not be posted.
		if r.State == Pending && now.Before(r.ExpiresAt) && !r.ApprovalMessage.IsZero() {
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// authority explains why approver may decide r, once mayDecide has allowed it.
func (s *Service) authority(ctx context.Context, r *Request, approver string) (Authority, error) {
	a := Authority{Protected: r.Privileged.Privileged()}
	if approver == r.Manager && !a.Protected {
		a.Manager = true
		return a, nil
	}
	list := s.approversFor(r)
	if slices.Contains(list, approver) {
		return a, nil
	}
	for _, id := range list {
		if !strings.HasPrefix(id, "S") {
			continue
		}
		members, err := s.groupMembers(ctx, id)
		if err != nil {
			return a, err
		}
		if members[approver] {
			a.Group = id
			return a, nil
		}
	}
	return a, errors.New("approvals: a permitted approver matched no rule") // mayDecide and authority disagree
}

// DecisionsBy returns the approvals and denials user made in the last week, newest first, at
// most n, from the audit trail.
func (s *Service) DecisionsBy(ctx context.Context, user string, n int) ([]Event, error) {
	es, err := s.store.ReadAudit(ctx, s.now().Add(-homeHistory))
	if err != nil {
		return nil, storeError(err)
	}
	var out []Event
	for _, e := range slices.Backward(es) {
		if len(out) == n {
			break
		}
		if e.Actor == user && (e.Event == EventApproved || e.Event == EventDenied) {
			out = append(out, e)
		}
	}
	return out, nil
}

// ApproversFor is who may decide r besides its manager: the protected approvers for a
// privileged target, TAP_APPROVERS otherwise. A reminder mentions them.
func (s *Service) ApproversFor(r *Request) []string { return s.approversFor(r) }
