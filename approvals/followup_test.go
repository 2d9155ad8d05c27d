package approvals_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

var approvalMsg = approvals.MessageRef{Channel: "CAPPROVALS", TS: "1700000000.000100"}

// posted submits a request and records its approval message, as the bot does.
func (h *harness) posted(t *testing.T) *approvals.Request {
	t.Helper()
	r := h.submit(t)
	r, err := h.svc.SetApprovalMessage(context.Background(), r.ID, approvalMsg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHomeClicksCountOnlyFromTheirOwner(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, approvals.Config{})
	r := h.posted(t)
	if _, err := h.svc.Deny(ctx, r.ID, "UGROUPAPPR", approvals.FromHome("UAPPR")); approvals.ErrorCode(err) != approvals.Forbidden ||
		!strings.Contains(approvals.UserMessage(err), "not on your App Home") {
		t.Fatalf("a click claiming someone else's App Home = %v, want forbidden", err)
	}
	if _, err := h.svc.Deny(ctx, r.ID, "UOUTSIDER", approvals.FromHome("UOUTSIDER")); approvals.ErrorCode(err) != approvals.Forbidden {
		t.Fatalf("a stranger's App Home click = %v, want forbidden", err)
	}
	denied, err := h.svc.Deny(ctx, r.ID, "UGROUPAPPR", approvals.FromHome("UGROUPAPPR"))
	if err != nil || denied.State != approvals.Denied {
		t.Fatalf("deny from own App Home = %+v, %v", denied, err)
	}
	if denied.ApprovalMessage != approvalMsg {
		t.Fatalf("approval message became %+v", denied.ApprovalMessage)
	}

	// A request whose message is not known yet does not take the App Home as its message.
	r = h.submit(t)
	issued, err := h.svc.Approve(ctx, r.ID, "UAPPR", approvals.FromHome("UAPPR"))
	if err != nil || issued.ApprovalMessage != (approvals.MessageRef{}) {
		t.Fatalf("approve from App Home = %+v, %v; want issued with no approval message", issued, err)
	}
}

func TestPendingForSaysWhy(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, approvals.Config{RouteToManager: true, ProtectedApprovers: []string{"USEC", "SSECURITY"}})
	h.people.emails["UMGR"] = "mgr@example.com"
	h.people.groups["SSECURITY"] = []string{"UGUARD"}
	h.dir.managers = map[string]approvals.DirectoryUser{"entra-ada": {ID: "entra-mgr", UPN: "mgr@example.com", Mail: "mgr@example.com"}}
	h.dir.privileges = map[string]approvals.Privileges{"entra-ext": {Roles: []string{"Global Administrator"}}}
	routed := h.posted(t) // for Ada, whose manager is in chat
	h.advance(time.Minute)
	privileged, err := h.svc.Submit(ctx, approvals.Draft{Requester: "UBOSS", TargetEmail: "ext@example.com", Reason: "admin lost phone", UsableOnce: true})
	if err != nil {
		t.Fatal(err)
	}
	h.advance(time.Minute)
	// Never offered: approvers cannot see it in chat yet.
	if _, err := h.svc.Submit(ctx, approvals.Draft{Requester: "UAPPR", TargetEmail: "boss@example.com", Reason: "not posted yet", UsableOnce: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.SetApprovalMessage(ctx, privileged.ID, approvals.MessageRef{Channel: "CAPPROVALS", TS: "1700000000.000200"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		user string
		want map[string]approvals.Authority
	}{
		{"UAPPR", map[string]approvals.Authority{routed.ID: {}}},
		{"UGROUPAPPR", map[string]approvals.Authority{routed.ID: {Group: "SAPPROVERS"}}},
		{"UMGR", map[string]approvals.Authority{routed.ID: {Manager: true}}},
		{"USEC", map[string]approvals.Authority{privileged.ID: {Protected: true}}},
		{"UGUARD", map[string]approvals.Authority{privileged.ID: {Protected: true, Group: "SSECURITY"}}},
		{"UBOSS", map[string]approvals.Authority{}}, // the requester, though an approver
		{"UADA", map[string]approvals.Authority{}},  // the target
		{"UOUTSIDER", map[string]approvals.Authority{}},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			got, err := h.svc.PendingFor(ctx, tt.user)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("PendingFor(%s) = %d requests, want %d", tt.user, len(got), len(tt.want))
			}
			for _, d := range got {
				if want, ok := tt.want[d.Request.ID]; !ok || d.Authority != want {
					t.Fatalf("PendingFor(%s) offers %s because %+v; want %+v", tt.user, d.Request.ID, d.Authority, tt.want)
				}
			}
		})
	}
	if mine, err := h.svc.PendingBy(ctx, "UBOSS"); err != nil || len(mine) != 2 || mine[0].ID != routed.ID {
		t.Fatalf("PendingBy(requester) = %d requests, %v; want both, oldest first", len(mine), err)
	}
	h.advance(25 * time.Hour)
	if got, _ := h.svc.PendingFor(ctx, "UAPPR"); len(got) != 0 {
		t.Fatal("an expired request is still offered")
	}
}

func TestDecisionsBy(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, approvals.Config{RatePerRequester: 100})
	var ids []string
	for range 3 {
		r := h.posted(t)
		ids = append(ids, r.ID)
		if _, err := h.svc.Deny(ctx, r.ID, "UAPPR", approvalMsg); err != nil {
			t.Fatal(err)
		}
		h.advance(time.Minute)
	}
	got, err := h.svc.DecisionsBy(ctx, "UAPPR", 2)
	if err != nil || len(got) != 2 || got[0].RequestID != ids[2] || got[1].RequestID != ids[1] || got[0].Event != approvals.EventDenied {
		t.Fatalf("DecisionsBy = %+v, %v; want the last two denials, newest first", got, err)
	}
	if got, _ := h.svc.DecisionsBy(ctx, "UGROUPAPPR", 10); len(got) != 0 {
		t.Fatalf("someone else's decisions: %+v", got)
	}
}

func TestRemindersAreSentOnce(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, approvals.Config{})
	r := h.posted(t)
	if due, err := h.svc.DueReminders(ctx); err != nil || len(due) != 0 {
		t.Fatalf("reminders right away = %d, %v", len(due), err)
	}
	h.advance(approvals.DefaultRemindAfter)
	due, err := h.svc.DueReminders(ctx)
	if err != nil || len(due) != 1 || due[0].ID != r.ID || due[0].RemindedAt.IsZero() {
		t.Fatalf("reminders after 30m = %+v, %v; want this request, marked", due, err)
	}
	h.advance(time.Hour)
	if due, _ := h.svc.DueReminders(ctx); len(due) != 0 {
		t.Fatal("a request was bumped twice")
	}

	if _, err := h.svc.Remind(ctx, r.ID, "UAPPR"); approvals.ErrorCode(err) != approvals.Forbidden {
		t.Fatalf("reminder by someone else = %v, want forbidden", err)
	}
	if _, err := h.svc.Remind(ctx, r.ID, "UBOSS"); err != nil {
		t.Fatalf("the requester's reminder: %v", err)
	}
	_, err = h.svc.Remind(ctx, r.ID, "UBOSS")
	if approvals.ErrorCode(err) != approvals.Conflict || !strings.Contains(approvals.UserMessage(err), "already reminded") {
		t.Fatalf("second reminder = %v, want a conflict saying it was already sent", err)
	}
	if _, err := h.svc.Deny(ctx, r.ID, "UAPPR", approvalMsg); err != nil {
		t.Fatal(err)
	}
	events, _ := h.svc.Audit(ctx, time.Time{})
	n := 0
	for _, e := range events {
		if e.Event == approvals.EventReminded {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d reminded events in the audit trail, want 2 (tapbot's and the requester's)", n)
	}

	// A decided request cannot be bumped any more.
	other := h.posted(t)
	if _, err := h.svc.Deny(ctx, other.ID, "UAPPR", approvalMsg); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Remind(ctx, other.ID, "UBOSS"); approvals.ErrorCode(err) != approvals.Conflict {
		t.Fatalf("reminder of a denied request = %v, want a conflict", err)
	}
}

func TestRequesterReminderRestartsTheWait(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, approvals.Config{RemindAfter: 30 * time.Minute})
	r := h.posted(t)
	h.advance(20 * time.Minute)
	if _, err := h.svc.Remind(ctx, r.ID, "UBOSS"); err != nil {
		t.Fatal(err)
	}
	h.advance(15 * time.Minute)
	if due, _ := h.svc.DueReminders(ctx); len(due) != 0 {
		t.Fatal("tapbot bumped 15 minutes after the requester did")
	}
	h.advance(15 * time.Minute)
	if due, _ := h.svc.DueReminders(ctx); len(due) != 1 {
		t.Fatal("no bump 30 minutes after the requester's reminder")
	}
	off := newHarness(t, approvals.Config{RemindAfter: -1})
	off.posted(t)
	off.advance(time.Hour)
	if due, _ := off.svc.DueReminders(ctx); len(due) != 0 {
		t.Fatal("reminders that are off were sent")
	}
}

// revealed walks a request to Revealed, with a watch turn in between as the bot would have.
func (h *harness) revealed(t *testing.T, watchBeforeReveal bool) *approvals.Request {
	t.Helper()
	ctx := context.Background()
	r := h.posted(t)
	if _, err := h.svc.Approve(ctx, r.ID, "UAPPR", approvalMsg); err != nil {
		t.Fatal(err)
	}
	if watchBeforeReveal {
		if regs, err := h.svc.WatchPasses(ctx); err != nil || len(regs) != 0 {
			t.Fatalf("watch before the reveal = %+v, %v", regs, err)
		}
	}
	if _, _, err := h.svc.Reveal(ctx, r.ID, "UADA", approvals.MessageRef{}); err != nil {
		t.Fatal(err)
	}
	r, err := h.svc.ConfirmReveal(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestWatchFindsTheNewSignInMethod(t *testing.T) {
	ctx := context.Background()
	old := approvals.AuthMethod{ID: "old-key", Kind: approvals.MethodFIDO2, Name: "Old key"}
	oldApp := approvals.AuthMethod{ID: "old-app", Kind: approvals.MethodAuthenticator} // no creation time
	tests := []struct {
		name        string
		revoke      bool
		baseline    bool // a watch turn came between issue and reveal
		added       approvals.AuthMethod
		wantFound   bool
		wantRevoked bool
	}{
		{name: "passkey", added: approvals.AuthMethod{ID: "new-key", Kind: approvals.MethodFIDO2, Name: "YubiKey 5"}, wantFound: true},
		{name: "passkey, then the pass is deleted", revoke: true, added: approvals.AuthMethod{ID: "new-key", Kind: approvals.MethodFIDO2}, wantFound: true, wantRevoked: true},
		{name: "Windows Hello", added: approvals.AuthMethod{ID: "whfb", Kind: approvals.MethodWindowsHello}, wantFound: true},
		{name: "Authenticator without a creation time, after a baseline", baseline: true,
			added: approvals.AuthMethod{ID: "new-app", Kind: approvals.MethodAuthenticator}, wantFound: true},
		{name: "a phone number is not what the pass is for", added: approvals.AuthMethod{ID: "phone", Kind: approvals.MethodPhone}},
		{name: "password", added: approvals.AuthMethod{ID: "pw", Kind: approvals.MethodPassword}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, approvals.Config{RevokeAfterRegistration: tt.revoke})
			h.dir.methods = map[string][]approvals.AuthMethod{"entra-ada": {oldApp,
				func() approvals.AuthMethod { m := old; m.CreatedAt = h.clock().Add(-48 * time.Hour); return m }()}}
			r := h.revealed(t, tt.baseline)
			if regs, err := h.svc.WatchPasses(ctx); err != nil || len(regs) != 0 {
				t.Fatalf("watch with only old methods = %+v, %v", regs, err)
			}
			h.advance(5 * time.Minute)
			m := tt.added
			if m.Kind != approvals.MethodAuthenticator {
				m.CreatedAt = h.clock()
			}
			h.dir.mu.Lock()
			h.dir.methods["entra-ada"] = append(h.dir.methods["entra-ada"], m)
			h.dir.mu.Unlock()
			regs, err := h.svc.WatchPasses(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.wantFound {
				if len(regs) != 0 {
					t.Fatalf("found %+v", regs)
				}
				return
			}
			if len(regs) != 1 || regs[0].Method.ID != m.ID || regs[0].Request.ID != r.ID || regs[0].Revoked != tt.wantRevoked {
				t.Fatalf("WatchPasses = %+v, want %s found (revoked %v)", regs, m.ID, tt.wantRevoked)
			}
			got, _ := h.svc.Get(ctx, r.ID)
			if got.RegisteredAt.IsZero() || !strings.Contains(got.Registered, m.Describe()) {
				t.Fatalf("request not marked registered: %+v", got)
			}
			if deleted := slices.Contains(h.dir.deleted, r.PassID); deleted != tt.wantRevoked {
				t.Fatalf("pass deleted = %v, want %v", deleted, tt.wantRevoked)
			}
			if tt.wantRevoked && (got.State != approvals.Revoked || got.RevokedBy != "") {
				t.Fatalf("after registration: state %s, revoked by %q; want revoked by tapbot", got.State, got.RevokedBy)
			}
			if regs, _ := h.svc.WatchPasses(ctx); len(regs) != 0 {
				t.Fatal("the same registration was reported twice")
			}
		})
	}
}

func TestWatchEnds(t *testing.T) {
	ctx := context.Background()
	t.Run("when the pass expires", func(t *testing.T) {
		h := newHarness(t, approvals.Config{})
		h.revealed(t, false)
		h.advance(time.Hour)
		h.dir.methods = map[string][]approvals.AuthMethod{"entra-ada": {{ID: "late", Kind: approvals.MethodFIDO2, CreatedAt: h.clock()}}}
		if regs, _ := h.svc.WatchPasses(ctx); len(regs) != 0 {
			t.Fatal("a registration after the pass expired was reported")
		}
	})
	t.Run("when tapbot may not look", func(t *testing.T) {
		h := newHarness(t, approvals.Config{})
		h.revealed(t, false)
		h.dir.methodsErr = approvals.Errorf(approvals.Forbidden, "the app lacks UserAuthenticationMethod.Read.All")
		if _, err := h.svc.WatchPasses(ctx); err != nil {
			t.Fatalf("a refusal is not an error to retry: %v", err)
		}
		h.dir.methodsErr = nil
		h.dir.methods = map[string][]approvals.AuthMethod{"entra-ada": {{ID: "k", Kind: approvals.MethodFIDO2, CreatedAt: h.clock()}}}
		if regs, _ := h.svc.WatchPasses(ctx); len(regs) != 0 {
			t.Fatal("still watching after Graph refused")
		}
	})
	t.Run("after an outage, it looks again", func(t *testing.T) {
		h := newHarness(t, approvals.Config{})
		h.revealed(t, false)
		h.dir.methodsErr = approvals.Errorf(approvals.Unavailable, "throttled")
		if _, err := h.svc.WatchPasses(ctx); err == nil {
			t.Fatal("an outage was not reported")
		}
		h.dir.methodsErr = nil
		h.dir.methods = map[string][]approvals.AuthMethod{"entra-ada": {{ID: "k", Kind: approvals.MethodFIDO2, CreatedAt: h.clock()}}}
		if regs, _ := h.svc.WatchPasses(ctx); len(regs) != 1 {
			t.Fatal("the registration after an outage was missed")
		}
	})
	t.Run("when revoked by hand", func(t *testing.T) {
		h := newHarness(t, approvals.Config{})
		r := h.revealed(t, false)
		if _, err := h.svc.Revoke(ctx, r.ID, "UBOSS"); err != nil {
			t.Fatal(err)
		}
		h.dir.methods = map[string][]approvals.AuthMethod{"entra-ada": {{ID: "k", Kind: approvals.MethodFIDO2, CreatedAt: h.clock()}}}
		if regs, _ := h.svc.WatchPasses(ctx); len(regs) != 0 {
			t.Fatal("a revoked pass was still watched")
		}
	})
	t.Run("off", func(t *testing.T) {
		h := newHarness(t, approvals.Config{WatchInterval: -1})
		h.revealed(t, false)
		h.dir.methods = map[string][]approvals.AuthMethod{"entra-ada": {{ID: "k", Kind: approvals.MethodFIDO2, CreatedAt: h.clock()}}}
		if ok, _ := h.svc.TakeWatchTurn(ctx); ok {
			t.Fatal("a watch turn while watching is off")
		}
		if regs, _ := h.svc.WatchPasses(ctx); len(regs) != 0 {
			t.Fatal("watched while off")
		}
	})
}
