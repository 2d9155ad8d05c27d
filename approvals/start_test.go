package approvals_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

// TestSubmitErrorsNameTheirField: a form can only show an error beside the input it is about if
// the service says which one.
func TestSubmitErrorsNameTheirField(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name   string
		policy *approvals.PassPolicy
		draft  approvals.Draft
		field  string
		msg    string
	}{
		{name: "no reason", draft: approvals.Draft{TargetUserID: "UADA", Reason: " "}, field: approvals.FieldReason, msg: "reason is required"},
		{name: "over TAP_MAX_LIFETIME", draft: approvals.Draft{TargetUserID: "UADA", Reason: "x", Lifetime: 9 * time.Hour}, field: approvals.FieldLifetime, msg: "at most 8h"},
		{name: "under the tenant minimum", draft: approvals.Draft{TargetUserID: "UADA", Reason: "x", Lifetime: 30 * time.Minute}, field: approvals.FieldLifetime, msg: "from 1h to 8h"},
		{name: "multi-use in a one-time tenant", policy: &approvals.PassPolicy{Enabled: true, OneTimeOnly: true},
			draft: approvals.Draft{TargetUserID: "UADA", Reason: "x"}, field: approvals.FieldUsage, msg: "only one-time"},
		{name: "self request", draft: approvals.Draft{TargetUserID: "UBOSS", Reason: "x", UsableOnce: true}, field: approvals.FieldTarget, msg: "for yourself"},
		{name: "no Entra account", draft: approvals.Draft{TargetEmail: "ghost@example.com", Reason: "x", UsableOnce: true}, field: approvals.FieldTarget, msg: "No Entra ID account"},
		{name: "no email in Slack", draft: approvals.Draft{TargetUserID: "UNOMAIL", Reason: "x", UsableOnce: true}, field: approvals.FieldTarget, msg: "no email"},
		{name: "start in the past", draft: approvals.Draft{TargetUserID: "UADA", Reason: "x", UsableOnce: true, StartsAt: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)},
			field: approvals.FieldStart, msg: "already passed"},
		{name: "start too far ahead", draft: approvals.Draft{TargetUserID: "UADA", Reason: "x", UsableOnce: true, StartsAt: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC).Add(15 * day)},
			field: approvals.FieldStart, msg: "at most 14d ahead"},
		{name: "tenant turned TAP off", policy: &approvals.PassPolicy{Enabled: false},
			draft: approvals.Draft{TargetUserID: "UADA", Reason: "x", UsableOnce: true}, field: "", msg: "turned off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, approvals.Config{})
			if tt.policy != nil {
				h.dir.policy = *tt.policy
			}
			tt.draft.Requester = "UBOSS"
			_, err := h.svc.Submit(context.Background(), tt.draft)
			if err == nil {
				t.Fatal("Submit accepted the draft")
			}
			if got := approvals.ErrorField(err); got != tt.field || !strings.Contains(approvals.UserMessage(err), tt.msg) {
				t.Fatalf("Submit error %q is about %q, want %q containing %q", approvals.UserMessage(err), got, tt.field, tt.msg)
			}
		})
	}
	h := newHarness(t, approvals.Config{})
	h.submit(t)
	_, err := h.svc.Submit(context.Background(), approvals.Draft{Requester: "UBOSS", TargetUserID: "UADA", Reason: "again", UsableOnce: true})
	if approvals.ErrorField(err) != approvals.FieldTarget || !strings.Contains(approvals.UserMessage(err), "already a request") {
		t.Fatalf("second pending request for the target: %v (field %q), want a refusal about the target", err, approvals.ErrorField(err))
	}
}

// TestPassStartingLater is the new hire's pass: it starts on their first morning, its lifetime
// runs from then, and nothing expires it before start plus lifetime.
func TestPassStartingLater(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	ctx := context.Background()
	start := h.clock().Add(2*24*time.Hour + 30*time.Minute)
	r, err := h.svc.Submit(ctx, approvals.Draft{Requester: "UBOSS", TargetUserID: "UADA", Reason: "first day", UsableOnce: true, StartsAt: start})
	if err != nil {
		t.Fatal(err)
	}
	if !r.StartsAt.Equal(start) {
		t.Fatalf("request starts %v, want %v", r.StartsAt, start)
	}
	issued, err := h.svc.Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.dir.starts) != 1 || !h.dir.starts[0].Equal(start) {
		t.Fatalf("Entra was asked for starts %v, want [%v]", h.dir.starts, start)
	}
	if !issued.PassStartsAt.Equal(start) || !issued.PassExpiresAt.Equal(start.Add(time.Hour)) || !issued.StartsLater(h.clock()) {
		t.Fatalf("pass works %v to %v; want %v to %v", issued.PassStartsAt, issued.PassExpiresAt, start, start.Add(time.Hour))
	}
	if _, err := h.svc.Delivered(ctx, r.ID, approvals.MessageRef{Channel: "DADA", TS: "1.2"}); err != nil {
		t.Fatal(err)
	}
	h.advance(3 * time.Hour) // well past approval plus lifetime, still before the start
	if changed, err := h.svc.Sweep(ctx); err != nil || len(changed) != 0 {
		t.Fatalf("sweep before the pass even started changed %d requests (%v)", len(changed), err)
	}
	h.advance(2 * 24 * time.Hour)
	changed, err := h.svc.Sweep(ctx)
	if err != nil || len(changed) != 1 || changed[0].State != approvals.Expired {
		t.Fatalf("sweep after start plus lifetime = %v, %v; want the pass expired", changed, err)
	}
}

// TestStartPassedWhileWaiting: approved after its start time, a pass starts at once (Entra ID
// refuses a start in the past).
func TestStartPassedWhileWaiting(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	ctx := context.Background()
	r, err := h.svc.Submit(ctx, approvals.Draft{Requester: "UBOSS", TargetUserID: "UADA", Reason: "x", UsableOnce: true, StartsAt: h.clock().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	h.advance(2 * time.Hour)
	issued, err := h.svc.Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.dir.starts) != 1 || !h.dir.starts[0].IsZero() || issued.StartsLater(h.clock()) {
		t.Fatalf("Entra was asked for starts %v, want one pass that starts at once", h.dir.starts)
	}
}

func TestWithdraw(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	ctx := context.Background()
	r := h.submit(t)
	if _, err := h.svc.Withdraw(ctx, r.ID, "UAPPR"); approvals.ErrorCode(err) != approvals.Forbidden {
		t.Fatalf("an approver withdrawing someone's request: %v, want Forbidden", err)
	}
	got, err := h.svc.Withdraw(ctx, r.ID, "UBOSS")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != approvals.Cancelled || got.CancelledBy != "UBOSS" {
		t.Fatalf("withdrawn request = %s by %q", got.State, got.CancelledBy)
	}
	if _, err := h.svc.Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{}); approvals.ErrorCode(err) != approvals.Conflict {
		t.Fatalf("approving a withdrawn request: %v, want a conflict", err)
	}
	if _, err := h.svc.Withdraw(ctx, r.ID, "UBOSS"); approvals.ErrorCode(err) != approvals.Conflict {
		t.Fatalf("withdrawing twice: %v, want a conflict", err)
	}
	again := h.submit(t) // the target is free for a new request at once
	recent, err := h.svc.RecentRequests(ctx, "UBOSS", 10)
	if err != nil || len(recent) != 2 || recent[0].ID != again.ID || recent[1].State != approvals.Cancelled {
		t.Fatalf("recent requests = %v, %v; want the new one, then the cancelled one", recent, err)
	}
	events, _ := h.svc.Audit(ctx, time.Time{})
	found := false
	for _, e := range events {
		found = found || e.Event == approvals.EventCancelled && e.Actor == "UBOSS" && e.RequestID == r.ID
	}
	if !found {
		t.Fatalf("no cancelled event by the requester in the trail: %+v", events)
	}
}

func TestLifetimeRange(t *testing.T) {
	tests := []struct {
		name        string
		cfg         approvals.Config
		policy      approvals.PassPolicy
		lo, hi, def time.Duration
		wantErr     string
	}{
		{name: "TAP_MAX_LIFETIME lower than the tenant", cfg: approvals.Config{MaxLifetime: 4 * time.Hour},
			policy: approvals.PassPolicy{Enabled: true, MinLifetime: time.Hour, MaxLifetime: 8 * time.Hour, DefaultLifetime: time.Hour}, lo: time.Hour, hi: 4 * time.Hour, def: time.Hour},
		{name: "tenant lower than TAP_MAX_LIFETIME", cfg: approvals.Config{MaxLifetime: 24 * time.Hour},
			policy: approvals.PassPolicy{Enabled: true, MinLifetime: 10 * time.Minute, MaxLifetime: 2 * time.Hour}, lo: 10 * time.Minute, hi: 2 * time.Hour, def: time.Hour},
		{name: "default below the tenant minimum", cfg: approvals.Config{DefaultLifetime: time.Hour, MaxLifetime: 24 * time.Hour},
			policy: approvals.PassPolicy{Enabled: true, MinLifetime: 2 * time.Hour, MaxLifetime: 8 * time.Hour, DefaultLifetime: 4 * time.Hour}, lo: 2 * time.Hour, hi: 8 * time.Hour, def: 4 * time.Hour},
		{name: "nothing fits", cfg: approvals.Config{MaxLifetime: time.Hour},
			policy: approvals.PassPolicy{Enabled: true, MinLifetime: 2 * time.Hour, MaxLifetime: 8 * time.Hour}, wantErr: "at least 2h"},
		{name: "turned off", policy: approvals.PassPolicy{Enabled: false}, wantErr: "turned off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cfg)
			lo, hi, def, err := h.svc.LifetimeRange(tt.policy)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(approvals.UserMessage(err), tt.wantErr) {
					t.Fatalf("LifetimeRange = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || lo != tt.lo || hi != tt.hi || def != tt.def {
				t.Fatalf("LifetimeRange = %v..%v default %v (%v), want %v..%v default %v", lo, hi, def, err, tt.lo, tt.hi, tt.def)
			}
		})
	}
}

// TestFormPolicyIsCached: the form must open within Slack's three-second trigger, so it reads
// the policy at most every few minutes.
func TestFormPolicyIsCached(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	ctx := context.Background()
	first, err := h.svc.FormPolicy(ctx)
	if err != nil || first.MaxLifetime != 8*time.Hour {
		t.Fatalf("FormPolicy = %+v, %v", first, err)
	}
	h.dir.policy.MaxLifetime = 2 * time.Hour
	if p, _ := h.svc.FormPolicy(ctx); p.MaxLifetime != 8*time.Hour {
		t.Fatalf("FormPolicy read the directory again at once: max %v", p.MaxLifetime)
	}
	h.advance(6 * time.Minute)
	if p, _ := h.svc.FormPolicy(ctx); p.MaxLifetime != 2*time.Hour {
		t.Fatalf("FormPolicy after the cache expired: max %v, want the new 2h", p.MaxLifetime)
	}
}
