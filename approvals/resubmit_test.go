package approvals_test

import (
	"context"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

// TestTwoSweepersResubmitOnce: the replica approving a request dies before Graph; sweeper 1
// takes the approval over and stalls just before it posts the copy; its lease runs out and
// sweeper 2 takes over and posts the copy. When sweeper 1 wakes up it must not believe it holds
// the copy's lock too (the two picked the same copy name, and a lock recognises its own value),
// nor cancel the copy sweeper 2 put before the approvers.
func TestTwoSweepersResubmitOnce(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	ctx := context.Background()
	r := h.submit(t)
	died := make(chan struct{})
	go func() {
		defer close(died)
		_, _ = h.replica(t, "replica-a", "approved").Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{})
	}()
	<-died
	h.advance(approvals.DefaultIssue + time.Second)

	at, stalled, wake := pauseAt("resubmitting")
	defer wake()
	slow := h.replicaWith(t, "sweeper-1", at)
	slowDone := make(chan error, 1)
	go func() {
		_, err := slow.Sweep(ctx)
		slowDone <- err
	}()
	<-stalled
	h.advance(approvals.DefaultIssue + time.Second)

	out, err := h.replica(t, "sweeper-2", "").Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var copyID string
	for _, o := range out {
		if o.State == approvals.Pending {
			copyID = o.ID
		}
	}
	if copyID == "" {
		t.Fatalf("sweeper 2 posted no copy: %v", states(out))
	}
	wake()
	<-slowDone

	cp, err := h.svc.Get(ctx, copyID)
	if err != nil || cp.State != approvals.Pending {
		t.Fatalf("the copy sweeper 2 posted is %v (%v), want still pending", cp.State, err)
	}
	orig, _ := h.svc.Get(ctx, r.ID)
	if orig.State != approvals.Failed || orig.Resubmitted != copyID {
		t.Fatalf("the interrupted request is %s, resubmitted as %q; want failed, resubmitted as %q", orig.State, orig.Resubmitted, copyID)
	}
	// The copy holds the person's lock: another request for them is refused.
	if _, err := h.svc.Submit(ctx, approvals.Draft{Requester: "UBOSS", TargetUserID: "UADA", Reason: "again", UsableOnce: true}); approvals.ErrorCode(err) != approvals.Conflict {
		t.Fatalf("a second request for the same person = %v, want refused while the copy is pending", err)
	}
}
