package approvals_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

// TestRevealClickBeforeDeliveredIsRecorded: a reveal click that lands between Approve storing the
// pass and Delivered recording the DM (seen in practice) still ends Revealed: Delivered must not
// take the request away from the replica showing the pass.
func TestRevealClickBeforeDeliveredIsRecorded(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	ctx := context.Background()
	r := h.submit(t)
	a := h.replica(t, "replica-a", "")
	b := h.replica(t, "replica-b", "")
	if _, err := a.Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{}); err != nil {
		t.Fatal(err)
	}
	dm := approvals.MessageRef{Channel: "D1", TS: "1.1"}
	_, code, err := b.Reveal(ctx, r.ID, "UADA", dm) // click beats Delivered
	if err != nil || code == "" {
		t.Fatal(err)
	}
	if _, err := a.Delivered(ctx, r.ID, dm); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ConfirmReveal(ctx, r.ID); err != nil {
		t.Fatalf("ConfirmReveal after Delivered: %v", err)
	}
	for i := 0; i < 3; i++ {
		h.advance(10 * time.Minute)
		if _, err := b.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	now, err := h.svc.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if now.State != approvals.Revealed {
		t.Errorf("request stuck in %s after the recipient saw the pass", now.State)
	}
	if _, _, err := b.Reveal(ctx, r.ID, "UADA", dm); !errors.Is(err, approvals.ErrAlreadyRevealed) {
		t.Errorf("a second click: %v, want already revealed", err)
	}
}

// TestResubmittedCopyIsRemindedAfresh: a request posted again after an interruption is a new
// request for the approvers, so it is reminded again and the requester may remind once more.
func TestResubmittedCopyIsRemindedAfresh(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	ctx := context.Background()
	r := h.posted(t)
	if _, err := h.svc.Remind(ctx, r.ID, "UBOSS"); err != nil {
		t.Fatal(err)
	}
	h.advance(31 * time.Minute)
	if due, err := h.svc.DueReminders(ctx); err != nil || len(due) != 1 {
		t.Fatalf("due %d %v", len(due), err)
	}
	a := h.replica(t, "replica-a", "approved")
	crashDuring(func() { _, _ = a.Approve(ctx, r.ID, "UAPPR", approvalMsg) })
	h.advance(10 * time.Minute)
	changed, err := h.svc.Sweep(ctx)
	if err != nil || len(changed) != 2 {
		t.Fatalf("sweep %v %v", states(changed), err)
	}
	cp := changed[1]
	cp, _ = h.svc.SetApprovalMessage(ctx, cp.ID, approvals.MessageRef{Channel: "CAPPROVALS", TS: "2.2"})
	h.advance(31 * time.Minute)
	due, _ := h.svc.DueReminders(ctx)
	_, rerr := h.svc.Remind(ctx, cp.ID, "UBOSS")
	if len(due) == 0 || rerr != nil {
		t.Errorf("copy: %d automatic reminders, requester's reminder: %v", len(due), rerr)
	}
}
