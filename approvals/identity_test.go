package approvals_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tapbot/tapbot/approvals"
)

// withAlias gives the approver UAPPR (appr@example.com, directory account entra-appr) a second
// chat account, UALIAS, whose email is another address of that same directory account, and adds
// a person who is in the directory but not in chat, and a chat user who is not in the directory.
func withAlias(h *harness) {
	h.people.emails["UALIAS"] = "appr.alias@example.com"
	h.dir.users["appr.alias@example.com"] = h.dir.users["appr@example.com"]
	h.dir.users["nochat@example.com"] = approvals.DirectoryUser{ID: "entra-nochat", UPN: "nochat@example.com"}
	h.people.emails["UNOENTRA"] = "guest@partner.example"
}

var aliasApprovers = []string{"UAPPR", "UALIAS", "UGROUPAPPR", "UNOENTRA", "UNOMAIL"}

func TestSubmitComparesDirectoryAccounts(t *testing.T) {
	tests := []struct {
		name     string
		cfg      approvals.Config
		draft    approvals.Draft
		findErr  error
		code     approvals.Code
		msg      string
		accepted bool
	}{
		{name: "the approver asks for their alias",
			draft: approvals.Draft{Requester: "UAPPR", TargetUserID: "UALIAS"},
			code:  approvals.Forbidden, msg: "You cannot ask for a pass for yourself"},
		{name: "the alias asks for the approver's UPN",
			draft: approvals.Draft{Requester: "UALIAS", TargetEmail: "appr@example.com"},
			code:  approvals.Forbidden, msg: "You cannot ask for a pass for yourself"},
		{name: "self requests allowed: the alias may ask, another person approves",
			cfg:      approvals.Config{AllowSelfRequest: true},
			draft:    approvals.Draft{Requester: "UAPPR", TargetUserID: "UALIAS"},
			accepted: true},
		{name: "a requester not in the directory",
			draft: approvals.Draft{Requester: "UNOENTRA", TargetUserID: "UADA"},
			code:  approvals.Forbidden, msg: "You cannot ask for passes: tapbot cannot tell who you are in Entra ID, because your Slack email, guest@partner.example, is not"},
		{name: "a requester without a Slack email",
			draft: approvals.Draft{Requester: "UNOMAIL", TargetUserID: "UADA"},
			code:  approvals.Forbidden, msg: "Slack shows no usable email address for you"},
		{name: "the directory does not answer",
			draft:   approvals.Draft{Requester: "UBOSS", TargetUserID: "UADA"},
			findErr: approvals.Errorf(approvals.Unavailable, "Microsoft Graph is throttling or unavailable; try again in a few minutes."),
			code:    approvals.Unavailable, msg: "tapbot could not check in Entra ID who you are, so nothing was done: Microsoft Graph is throttling"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Approvers = aliasApprovers
			h := newHarness(t, cfg)
			withAlias(h)
			h.dir.findErr = tt.findErr
			tt.draft.Reason, tt.draft.UsableOnce = "lost phone", true
			r, err := h.svc.Submit(context.Background(), tt.draft)
			if tt.accepted {
				if err != nil || r.RequesterEntraID != "entra-appr" {
					t.Fatalf("Submit = %+v, %v; want accepted, with the requester's directory account", r, err)
				}
				return
			}
			if approvals.ErrorCode(err) != tt.code || !strings.Contains(approvals.UserMessage(err), tt.msg) {
				t.Fatalf("Submit = %q (%s), want %s containing %q", approvals.UserMessage(err), approvals.ErrorCode(err), tt.code, tt.msg)
			}
			if stored, _ := h.store.RecentByRequester(context.Background(), tt.draft.Requester, 10); len(stored) != 0 {
				t.Fatalf("a refused request was stored: %+v", stored[0])
			}
		})
	}
}

func TestApproveComparesDirectoryAccounts(t *testing.T) {
	unavailable := approvals.Errorf(approvals.Unavailable, "Microsoft Graph is throttling or unavailable; try again in a few minutes.")
	tests := []struct {
		name     string
		cfg      approvals.Config
		draft    approvals.Draft
		approver string
		// legacy clears the requester's directory account, as in a record from before it was kept.
		legacy  bool
		findErr error // what the directory answers from the click on
		code    approvals.Code
		msg     string
	}{
		{name: "the alias asked for someone not in chat; the approver's own account approves",
			draft: approvals.Draft{Requester: "UALIAS", TargetEmail: "nochat@example.com"}, approver: "UAPPR",
			code: approvals.Forbidden, msg: "You asked for this pass from another Slack account"},
		{name: "the approver asked; the alias approves",
			draft: approvals.Draft{Requester: "UAPPR", TargetEmail: "nochat@example.com"}, approver: "UALIAS",
			code: approvals.Forbidden, msg: "You asked for this pass from another Slack account"},
		{name: "the pass is for the approver; the alias approves",
			draft: approvals.Draft{Requester: "UBOSS", TargetUserID: "UAPPR"}, approver: "UALIAS",
			code: approvals.Forbidden, msg: "This pass is for your own Entra ID account (appr@example.com)"},
		{name: "a self request allowed; the requester's alias approves",
			cfg:   approvals.Config{AllowSelfRequest: true},
			draft: approvals.Draft{Requester: "UAPPR", TargetUserID: "UAPPR"}, approver: "UALIAS",
			code: approvals.Forbidden, msg: "You asked for this pass from another Slack account"},
		{name: "a record from before requesters were resolved",
			draft: approvals.Draft{Requester: "UALIAS", TargetEmail: "nochat@example.com"}, approver: "UAPPR", legacy: true,
			code: approvals.Forbidden, msg: "You asked for this pass from another Slack account"},
		{name: "an approver not in the directory",
			draft: approvals.Draft{Requester: "UBOSS", TargetUserID: "UADA"}, approver: "UNOENTRA",
			code: approvals.Forbidden, msg: "You cannot approve passes: tapbot cannot tell who you are in Entra ID, because your Slack email, guest@partner.example, is not the user principal name, mail or alias of any Entra ID account"},
		{name: "an approver without a Slack email",
			draft: approvals.Draft{Requester: "UBOSS", TargetUserID: "UADA"}, approver: "UNOMAIL",
			code: approvals.Forbidden, msg: "You cannot approve passes"},
		{name: "the directory does not answer",
			draft: approvals.Draft{Requester: "UBOSS", TargetUserID: "UADA"}, approver: "UAPPR", findErr: unavailable,
			code: approvals.Unavailable, msg: "so nothing was done: Microsoft Graph is throttling"},
		{name: "another person approves",
			draft: approvals.Draft{Requester: "UALIAS", TargetEmail: "nochat@example.com"}, approver: "UGROUPAPPR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := tt.cfg
			cfg.Approvers = aliasApprovers
			h := newHarness(t, cfg)
			withAlias(h)
			tt.draft.Reason, tt.draft.UsableOnce = "lost phone", true
			r, err := h.svc.Submit(ctx, tt.draft)
			if err != nil {
				t.Fatal(err)
			}
			if tt.legacy {
				if _, err := h.store.Update(ctx, r.ID, func(r *approvals.Request) error { r.RequesterEntraID = ""; return nil }); err != nil {
					t.Fatal(err)
				}
			}
			h.dir.findErr = tt.findErr
			got, err := h.svc.Approve(ctx, r.ID, tt.approver, approvals.MessageRef{})
			if tt.code == "" {
				if err != nil || got.State != approvals.Issued {
					t.Fatalf("Approve by %s = %v, want issued", tt.approver, err)
				}
				return
			}
			if approvals.ErrorCode(err) != tt.code || !strings.Contains(approvals.UserMessage(err), tt.msg) {
				t.Fatalf("Approve by %s = %q (%s), want %s containing %q", tt.approver, approvals.UserMessage(err), approvals.ErrorCode(err), tt.code, tt.msg)
			}
			now, _ := h.svc.Get(ctx, r.ID)
			if now.State != approvals.Pending || h.dir.created != 0 {
				t.Fatalf("a refused approval changed things: state %s, %d passes created", now.State, h.dir.created)
			}
		})
	}
}

// TestDenyNeedsNoDirectory: a no creates nothing, so it works while Entra ID is down and costs
// no lookup.
func TestDenyNeedsNoDirectory(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, approvals.Config{})
	r := h.submit(t)
	h.dir.findErr = approvals.Errorf(approvals.Unavailable, "down")
	asked := len(h.dir.finds)
	if denied, err := h.svc.Deny(ctx, r.ID, "UAPPR", approvals.MessageRef{}); err != nil || denied.State != approvals.Denied {
		t.Fatalf("Deny while the directory is down = %v", err)
	}
	if len(h.dir.finds) != asked {
		t.Fatalf("Deny looked people up in the directory: %v", h.dir.finds[asked:])
	}
}

// TestManagerWhoIsTheRequesterIsNotAsked: a manager found in chat under another account of the
// requester could not approve, so the approvers' channel is asked instead of them.
func TestManagerWhoIsTheRequesterIsNotAsked(t *testing.T) {
	h := newHarness(t, approvals.Config{RouteToManager: true, Approvers: aliasApprovers})
	withAlias(h)
	h.dir.managers = map[string]approvals.DirectoryUser{"entra-ada": {ID: "entra-appr", UPN: "appr@example.com", Mail: "appr.alias@example.com"}}
	r, err := h.svc.Submit(context.Background(), approvals.Draft{Requester: "UAPPR", TargetUserID: "UADA", Reason: "x", UsableOnce: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Manager != "" {
		t.Fatalf("manager %q asked, who is the requester under another Slack account", r.Manager)
	}
}

// TestDirectoryAccountsAreReusedBriefly: a burst by one person costs one directory lookup, for
// TAP_GROUP_CACHE_TTL; a person tapbot could not find is looked up again at once, so fixing their
// email counts at the next click.
func TestDirectoryAccountsAreReusedBriefly(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, approvals.Config{Approvers: aliasApprovers})
	withAlias(h)
	lookups := func(addr string) int {
		h.dir.mu.Lock()
		defer h.dir.mu.Unlock()
		n := 0
		for _, q := range h.dir.finds {
			if strings.EqualFold(q, addr) {
				n++
			}
		}
		return n
	}
	submit := func(target string) *approvals.Request {
		t.Helper()
		r, err := h.svc.Submit(ctx, approvals.Draft{Requester: "UBOSS", TargetEmail: target, Reason: "x", UsableOnce: true})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	first, second := submit("ada@example.com"), submit("ext@example.com")
	if n := lookups("boss@example.com"); n != 1 {
		t.Fatalf("the requester was looked up %d times for two requests within the TTL, want once", n)
	}
	if _, err := h.svc.Approve(ctx, first.ID, "UNOENTRA", approvals.MessageRef{}); approvals.ErrorCode(err) != approvals.Forbidden {
		t.Fatalf("approval by a guest not in the directory = %v", err)
	}
	h.dir.mu.Lock()
	h.dir.users["guest@partner.example"] = approvals.DirectoryUser{ID: "entra-guest", UPN: "guest@partner.example"}
	h.dir.mu.Unlock()
	for _, r := range []*approvals.Request{first, second} {
		if _, err := h.svc.Approve(ctx, r.ID, "UNOENTRA", approvals.MessageRef{}); err != nil {
			t.Fatalf("approval once the guest's email is in the directory: %v", err)
		}
	}
	if n := lookups("guest@partner.example"); n != 2 {
		t.Fatalf("the approver was looked up %d times; want once refused, then once for both approvals", n)
	}
	h.advance(approvals.DefaultGroupTTL)
	submit("nochat@example.com")
	if n := lookups("boss@example.com"); n != 2 {
		t.Fatalf("the requester was looked up %d times; want again once the TTL passed", n)
	}
}
