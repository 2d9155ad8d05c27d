package approvals_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

func TestSelfRequests(t *testing.T) {
	ctx := context.Background()
	self := approvals.Draft{Requester: "UADA", TargetUserID: "UADA", Reason: "lost my phone", UsableOnce: true}
	selfByEmail := approvals.Draft{Requester: "UADA", TargetEmail: "ada@example.com", Reason: "lost my phone", UsableOnce: true}

	h := newHarness(t, approvals.Config{})
	for _, d := range []approvals.Draft{self, selfByEmail} {
		if _, err := h.svc.Submit(ctx, d); approvals.ErrorCode(err) != approvals.Forbidden || !strings.Contains(approvals.UserMessage(err), "for yourself") {
			t.Fatalf("self request %+v = %v, want refused", d, err)
		}
	}

	h = newHarness(t, approvals.Config{AllowSelfRequest: true, Approvers: []string{"UADA", "UAPPR"}})
	r, err := h.svc.Submit(ctx, self)
	if err != nil {
		t.Fatalf("self request with TAP_ALLOW_SELF_REQUEST: %v", err)
	}
	if _, err := h.svc.Approve(ctx, r.ID, "UADA", approvals.MessageRef{}); approvals.ErrorCode(err) != approvals.Forbidden {
		t.Fatalf("self-approval of a self request = %v, want refused", err)
	}
	if _, err := h.svc.Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{}); err != nil {
		t.Fatalf("another approver: %v", err)
	}
}

func TestPrivilegedTargets(t *testing.T) {
	ctx := context.Background()
	admin := approvals.Privileges{Roles: []string{"Global Administrator"}}

	h := newHarness(t, approvals.Config{})
	h.dir.privileges = map[string]approvals.Privileges{"entra-ada": admin}
	_, err := h.svc.Submit(ctx, approvals.Draft{Requester: "UBOSS", TargetUserID: "UADA", Reason: "x", UsableOnce: true})
	if approvals.ErrorCode(err) != approvals.Forbidden || !strings.Contains(approvals.UserMessage(err), "Global Administrator") {
		t.Fatalf("privileged target without protected approvers = %v, want refused naming the role", err)
	}

	h = newHarness(t, approvals.Config{ProtectedApprovers: []string{"USEC"}})
	h.dir.privileges = map[string]approvals.Privileges{"entra-ada": admin}
	r := h.submit(t)
	if !r.Privileged.Privileged() {
		t.Fatal("the request does not record that its target is privileged")
	}
	_, err = h.svc.Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{})
	if approvals.ErrorCode(err) != approvals.Forbidden || !slices.Equal(approvals.WhoMay(err), []string{"USEC"}) {
		t.Fatalf("ordinary approver on a privileged request = %v (who %v), want refused naming USEC", err, approvals.WhoMay(err))
	}
	if _, err := h.svc.Approve(ctx, r.ID, "USEC", approvals.MessageRef{}); err != nil {
		t.Fatalf("protected approver: %v", err)
	}
}

func TestRatePerRequester(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, approvals.Config{RatePerRequester: 2})
	for i, target := range []string{"ada@example.com", "ext@example.com"} {
		if _, err := h.svc.Submit(ctx, approvals.Draft{Requester: "UAPPR", TargetEmail: target, Reason: "x", UsableOnce: true}); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	_, err := h.svc.Submit(ctx, approvals.Draft{Requester: "UAPPR", TargetEmail: "boss@example.com", Reason: "x", UsableOnce: true})
	if approvals.ErrorCode(err) != approvals.Forbidden || !strings.Contains(approvals.UserMessage(err), "Try again after 10:00 UTC") {
		t.Fatalf("third request in an hour = %v, want refused with when to try again", err)
	}
	h.advance(time.Hour)
	if _, err := h.svc.Submit(ctx, approvals.Draft{Requester: "UAPPR", TargetEmail: "boss@example.com", Reason: "x", UsableOnce: true}); err != nil {
		t.Fatalf("after the hour: %v", err)
	}
}

func TestOnePendingRequestPerTarget(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, approvals.Config{})
	first := h.submit(t)
	_, err := h.svc.Submit(ctx, approvals.Draft{Requester: "UAPPR", TargetEmail: "ada@example.com", Reason: "x", UsableOnce: true})
	if approvals.ErrorCode(err) != approvals.Conflict || !strings.Contains(approvals.UserMessage(err), "already a request for ada@example.com") {
		t.Fatalf("second pending request for the same target = %v", err)
	}
	if _, err := h.svc.Deny(ctx, first.ID, "UAPPR", approvals.MessageRef{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Submit(ctx, approvals.Draft{Requester: "UAPPR", TargetEmail: "ada@example.com", Reason: "x", UsableOnce: true}); err != nil {
		t.Fatalf("after the first was denied: %v", err)
	}
}

func TestManagerRouting(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name        string
		manager     approvals.DirectoryUser
		wantManager string
	}{
		{"manager in Slack", approvals.DirectoryUser{ID: "m1", UPN: "appr@example.com", Mail: "appr@example.com"}, "UAPPR"},
		{"manager is the requester", approvals.DirectoryUser{ID: "m2", UPN: "boss@example.com"}, ""},
		{"manager not in Slack", approvals.DirectoryUser{ID: "m3", UPN: "nobody@example.com"}, ""},
		// Their approval would be refused (four eyes needs enabled member accounts), so asking
		// them would leave the request with nobody asked.
		{"manager disabled", approvals.DirectoryUser{ID: "m4", UPN: "appr@example.com", Mail: "appr@example.com", Disabled: true}, ""},
		{"manager a guest", approvals.DirectoryUser{ID: "m5", UPN: "appr@example.com", Mail: "appr@example.com", Guest: true}, ""},
		{"manager an external account", approvals.DirectoryUser{ID: "m6", UPN: "appr_partner.example#EXT#@example.com", Mail: "appr@example.com"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, approvals.Config{RouteToManager: true, Approvers: []string{"UBOSS"}})
			h.dir.managers = map[string]approvals.DirectoryUser{"entra-ada": tt.manager}
			r := h.submit(t)
			if r.Manager != tt.wantManager {
				t.Fatalf("manager = %q, want %q", r.Manager, tt.wantManager)
			}
			if tt.wantManager == "" {
				return
			}
			// The manager is not in TAP_APPROVERS but may decide this request.
			if _, err := h.svc.Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{}); err != nil {
				t.Fatalf("manager approval: %v", err)
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	ctx := context.Background()
	for _, who := range []string{"UBOSS", "UAPPR", "UGROUPAPPR"} {
		t.Run(who, func(t *testing.T) {
			h := newHarness(t, approvals.Config{})
			r := h.submit(t)
			issued, err := h.svc.Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.svc.Revoke(ctx, r.ID, "URANDOM"); approvals.ErrorCode(err) != approvals.Forbidden {
				t.Fatalf("revoke by a stranger = %v", err)
			}
			revoked, err := h.svc.Revoke(ctx, r.ID, who)
			if err != nil || revoked.State != approvals.Revoked || revoked.RevokedBy != who {
				t.Fatalf("revoke by %s = %+v, %v", who, revoked, err)
			}
			if !slices.Contains(h.dir.deleted, issued.PassID) {
				t.Fatal("the pass was not deleted in Entra ID")
			}
			if _, code, err := h.svc.Reveal(ctx, r.ID, "UADA", approvals.MessageRef{}); code != "" || err == nil {
				t.Fatalf("reveal after revoke = %q, %v", code, err)
			}
			if _, err := h.svc.Revoke(ctx, r.ID, who); approvals.ErrorCode(err) != approvals.Conflict {
				t.Fatalf("second revoke = %v", err)
			}
		})
	}
	h := newHarness(t, approvals.Config{})
	r := h.submit(t)
	if _, err := h.svc.Revoke(ctx, r.ID, "UBOSS"); approvals.ErrorCode(err) != approvals.Conflict {
		t.Fatalf("revoking a pending request = %v, want conflict", err)
	}
}

func TestAuditTrail(t *testing.T) {
	ctx := context.Background()
	var sunk []string
	h := newHarness(t, approvals.Config{})
	svc := approvals.NewService(h.svc.Config(), h.store, h.dir, h.people, h.sealer, approvals.WithClock(h.clock),
		approvals.WithAuditSink(func(_ context.Context, e approvals.Event, _ *approvals.Request) { sunk = append(sunk, e.Event) }))
	r, err := svc.Submit(ctx, approvals.Draft{Requester: "UBOSS", TargetUserID: "UADA", Reason: "lost phone", UsableOnce: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{}); err != nil {
		t.Fatal(err)
	}
	_, code, _ := svc.Reveal(ctx, r.ID, "UADA", approvals.MessageRef{})
	if _, err := svc.ConfirmReveal(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Reveal(ctx, r.ID, "UADA", approvals.MessageRef{}); !errors.Is(err, approvals.ErrAlreadyRevealed) {
		t.Fatal(err)
	}
	if _, err := svc.Report(ctx, r.ID, "UADA"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Revoke(ctx, r.ID, "UAPPR"); err != nil {
		t.Fatal(err)
	}
	events, err := svc.Audit(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range events {
		names = append(names, e.Event)
		if e.RequestID != r.ID || e.Target != "ada@example.com" || e.TargetEntraID != "entra-ada" || e.Reason != "lost phone" || e.Lifetime != "1h" {
			t.Errorf("event lacks request details: %+v", e)
		}
		if code != "" && strings.Contains(e.Detail+e.Reason, code) {
			t.Error("an audit event holds the pass")
		}
	}
	want := []string{"requested", "approved", "issued", "revealed", "reveal_refused", "reported", "revoked"}
	if !slices.Equal(names, want) || !slices.Equal(sunk, want) {
		t.Fatalf("trail = %v, sink = %v, want %v", names, sunk, want)
	}
	if events[1].Actor != "UAPPR" || events[3].Actor != "UADA" {
		t.Fatalf("actors: approved by %q, revealed by %q", events[1].Actor, events[3].Actor)
	}
}

// TestTargetFoundByDirectoryMail: a requester who types a UPN that differs from the mail address
// Slack knows must not become the recipient, nor slip past the self-request rule.
func TestTargetFoundByDirectoryMail(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, approvals.Config{})
	h.dir.users["a.lovelace@corp.example"] = approvals.DirectoryUser{ID: "entra-ada", UPN: "a.lovelace@corp.example", Mail: "ada@example.com"}
	r, err := h.svc.Submit(ctx, approvals.Draft{Requester: "UBOSS", TargetEmail: "a.lovelace@corp.example", Reason: "x", UsableOnce: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Target.SlackID != "UADA" || r.Recipient != "UADA" {
		t.Fatalf("target by UPN: Slack ID %q, recipient %q; want Ada, found by her directory mail", r.Target.SlackID, r.Recipient)
	}
	if _, err := h.svc.Submit(ctx, approvals.Draft{Requester: "UADA", TargetEmail: "a.lovelace@corp.example", Reason: "x", UsableOnce: true}); approvals.ErrorCode(err) != approvals.Forbidden {
		t.Fatalf("Ada asking for herself by UPN = %v, want refused", err)
	}
}
