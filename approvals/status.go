package approvals

import "context"

// RecentRequests returns the requester's most recent requests, newest first, for /tap status.
func (s *Service) RecentRequests(ctx context.Context, requester string, limit int) ([]*Request, error) {
	rs, err := s.store.RecentByRequester(ctx, requester, limit)
	if err != nil {
		return nil, storeError(err)
	}
	return rs, nil
}

// Withdraw lets the requester cancel their own request while it waits for approval. The target
// is free for a new request at once, and the trail records who withdrew it.
func (s *Service) Withdraw(ctx context.Context, id, actor string) (*Request, error) {
	r, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if actor != r.Requester {
		return r, &Error{Code: Forbidden, Who: []string{r.Requester},
			Message: "Only the person who asked for this pass can cancel the request."}
	}
	if r.State != Pending {
		return r, stateConflict(r)
	}
	r, err = s.transition(ctx, id, Pending, func(r *Request) {
		r.State, r.CancelledBy, r.Failure = Cancelled, actor, "withdrawn by the requester"
	})
	if err != nil {
		return r, err
	}
	s.releaseTarget(ctx, r)
	s.record(ctx, EventCancelled, r, actor, "withdrawn by the requester")
	return r, nil
}
