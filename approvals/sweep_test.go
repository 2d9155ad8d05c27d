package approvals_test

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

// replica builds a second service on the harness's store and directory, as another replica.
func (h *harness) replica(t *testing.T, name string, crashAt string) *approvals.Service {
	t.Helper()
	opts := []approvals.Option{approvals.WithClock(h.clock)}
	if crashAt != "" {
		opts = append(opts, approvals.WithCheckpoints(func(step string) {
			if step == crashAt {
				runtime.Goexit() // this replica dies here: nothing after this step happens
			}
		}))
	}
	cfg := h.svc.Config()
	cfg.Instance = name
	return approvals.NewService(cfg, h.store, h.dir, h.people, h.sealer, opts...)
}

// crashDuring runs f on its own goroutine and waits for it to end, however it ends.
func crashDuring(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

func states(rs []*approvals.Request) []approvals.State {
	var out []approvals.State
	for _, r := range rs {
		out = append(out, r.State)
	}
	return out
}

func TestSweepExpires(t *testing.T) {
	h := newHarness(t, approvals.Config{RequestTTL: time.Hour})
	ctx := context.Background()
	pending := h.submit(t)
	issued, err := h.svc.Submit(ctx, approvals.Draft{Requester: "UBOSS", TargetEmail: "ext@example.com", Reason: "x", UsableOnce: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Approve(ctx, issued.ID, "UAPPR", approvals.MessageRef{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Delivered(ctx, issued.ID, approvals.MessageRef{Channel: "D1", TS: "1"}); err != nil {
		t.Fatal(err)
	}
	if got, err := h.svc.Sweep(ctx); err != nil || len(got) != 0 {
		t.Fatalf("early sweep changed %v, %v", states(got), err)
	}
	h.advance(time.Hour)
	got, err := h.svc.Sweep(ctx)
	if err != nil || len(got) != 2 || got[0].State != approvals.Expired || got[1].State != approvals.Expired {
		t.Fatalf("sweep after an hour = %v, %v; want both expired", states(got), err)
	}
	if ok, _ := h.store.HasSecret(ctx, issued.ID); ok {
		t.Fatal("a lapsed pass is still stored")
	}
	if _, err := h.svc.Approve(ctx, pending.ID, "UAPPR", approvals.MessageRef{}); approvals.ErrorCode(err) != approvals.Conflict {
		t.Fatalf("approving a swept request = %v", err)
	}
	if again, _ := h.svc.Sweep(ctx); len(again) != 0 {
		t.Fatalf("a second sweep changed %v again", states(again))
	}
}

// TestSweepRecoversInterruptedApprovals kills a replica at each step of an approval and checks
// what another replica's sweep makes of it.
func TestSweepRecoversInterruptedApprovals(t *testing.T) {
	tests := []struct {
		crashAt     string
		wantStates  []approvals.State // what the sweep returns
		wantDeleted bool              // the pass made before the crash was deleted in Entra ID
	}{
		{crashAt: "approved", wantStates: []approvals.State{approvals.Failed, approvals.Pending}},
		{crashAt: "created", wantStates: []approvals.State{approvals.Failed, approvals.Pending}, wantDeleted: true},
		{crashAt: "recorded", wantStates: []approvals.State{approvals.Failed, approvals.Pending}, wantDeleted: true},
		{crashAt: "stored", wantStates: []approvals.State{approvals.Issued}},
		{crashAt: "issued", wantStates: []approvals.State{approvals.Issued}},
	}
	for _, tt := range tests {
		t.Run(tt.crashAt, func(t *testing.T) {
			h := newHarness(t, approvals.Config{})
			ctx := context.Background()
			var created []approvals.PassInfo
			create := h.dir.createFn
			h.dir.createFn = func(id string, l time.Duration, once bool) (approvals.Pass, error) {
				p, err := create(id, l, once)
				p.ID = "pass-1"
				created = append(created, approvals.PassInfo{ID: p.ID, CreatedAt: h.clock()})
				return p, err
			}
			h.dir.listFn = func(string) ([]approvals.PassInfo, error) { return created, nil }
			r := h.submit(t)
			dying := h.replica(t, "replica-a", tt.crashAt)
			if err := dying.Heartbeat(ctx, 30*time.Second); err != nil {
				t.Fatal(err)
			}
			crashDuring(func() { _, _ = dying.Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{}) })

			survivor := h.replica(t, "replica-b", "")
			if got, _ := survivor.Sweep(ctx); len(got) != 0 {
				t.Fatalf("swept %v while replica-a's heartbeat was alive", states(got))
			}
			h.advance(31 * time.Second) // replica-a's heartbeat runs out
			got, err := survivor.Sweep(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(states(got), tt.wantStates) {
				t.Fatalf("sweep returned %v, want %v", states(got), tt.wantStates)
			}
			if deleted := slices.Contains(h.dir.deleted, "pass-1"); deleted != tt.wantDeleted {
				t.Fatalf("pass deleted = %v, want %v", deleted, tt.wantDeleted)
			}
			switch got[0].State {
			case approvals.Issued:
				if got[0].Owner != "replica-b" || !got[0].RevealMessage.IsZero() {
					t.Fatalf("survivor should own delivery of %+v", got[0])
				}
				delivered, err := survivor.Delivered(ctx, r.ID, approvals.MessageRef{Channel: "D1", TS: "1"})
				if err != nil || delivered.Owner != "" {
					t.Fatalf("Delivered = %+v, %v", delivered, err)
				}
				if _, code, err := survivor.Reveal(ctx, r.ID, "UADA", approvals.MessageRef{}); err != nil || code != passCode {
					t.Fatalf("reveal after recovery = %q, %v", code, err)
				}
			case approvals.Failed:
				if got[0].Resubmitted != got[1].ID || got[1].Target != r.Target || got[1].Reason != r.Reason {
					t.Fatalf("resubmitted request %+v does not repeat %+v", got[1], got[0])
				}
				if _, err := survivor.Approve(ctx, got[1].ID, "UAPPR", approvals.MessageRef{}); err != nil {
					t.Fatalf("approving the resubmitted request: %v", err)
				}
			}
			if again, _ := survivor.Sweep(ctx); len(again) != 0 {
				t.Fatalf("a second sweep changed %v", states(again))
			}
		})
	}
}

func TestSweepRecoversInterruptedReveal(t *testing.T) {
	for _, returned := range []bool{false, true} {
		h := newHarness(t, approvals.Config{})
		ctx := context.Background()
		r := h.submit(t)
		if _, err := h.svc.Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.svc.Delivered(ctx, r.ID, approvals.MessageRef{Channel: "D1", TS: "1"}); err != nil {
			t.Fatal(err)
		}
		dying := h.replica(t, "replica-a", "claimed")
		crashDuring(func() { _, _, _ = dying.Reveal(ctx, r.ID, "UADA", approvals.MessageRef{}) })
		if returned {
			// As if the pass had been put back just before the crash.
			if err := h.store.PutSecret(ctx, r.ID, h.sealer.Seal(r.ID, []byte(passCode)), time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		h.advance(approvals.DefaultReveal)
		got, err := h.svc.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		now, _ := h.svc.Get(ctx, r.ID)
		if returned && (now.State != approvals.Issued || len(got) != 0) {
			t.Fatalf("a pass still in the store should be revealable again: %s, swept %v", now.State, states(got))
		}
		if !returned && (now.State != approvals.Failed || len(got) != 1 || len(h.dir.deleted) != 1) {
			t.Fatalf("a taken, unconfirmed pass should be deleted and the request failed: %s, swept %v, deleted %v",
				now.State, states(got), h.dir.deleted)
		}
	}
}

// TestOverlappingSweepsTakeOverOnce: two replicas sweeping at once find the same request a dead
// replica left; only one may take it over, or the recipient would get two DMs.
func TestOverlappingSweepsTakeOverOnce(t *testing.T) {
	for _, step := range []string{"issued", "approved"} {
		h := newHarness(t, approvals.Config{})
		ctx := context.Background()
		r := h.submit(t)
		dying := h.replica(t, "replica-a", step)
		crashDuring(func() { _, _ = dying.Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{}) })
		h.advance(approvals.DefaultIssue)
		b, c := h.replica(t, "replica-b", ""), h.replica(t, "replica-c", "")
		for _, live := range []*approvals.Service{b, c} {
			if err := live.Heartbeat(ctx, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		results := make(chan []*approvals.Request, 2)
		for _, sweeper := range []*approvals.Service{b, c} {
			go func() {
				got, _ := sweeper.Sweep(ctx)
				results <- got
			}()
		}
		var all []*approvals.Request
		for range 2 {
			all = append(all, <-results...)
		}
		var original int
		for _, got := range all {
			if got.ID == r.ID {
				original++
			}
		}
		if original != 1 {
			t.Fatalf("step %s: the interrupted request was taken over %d times, want once (%v)", step, original, states(all))
		}
		if open, _ := h.store.OpenRequests(ctx); len(open) > 1 {
			t.Fatalf("step %s: %d open requests after the sweeps, want at most the one copy", step, len(open))
		}
	}
}

// TestSweepTurnPassesOn: a replica cannot take the sweep turn again while it holds it, so once
// its turn runs out another replica gets one; a replica that stalls does not keep the turn.
func TestSweepTurnPassesOn(t *testing.T) {
	h := newHarness(t, approvals.Config{})
	ctx := context.Background()
	a, b := h.replica(t, "replica-a", ""), h.replica(t, "replica-b", "")
	if ok, err := a.TakeSweepTurn(ctx, time.Minute); !ok || err != nil {
		t.Fatalf("the first take = %v, %v", ok, err)
	}
	for _, s := range []*approvals.Service{a, b} {
		if ok, _ := s.TakeSweepTurn(ctx, time.Minute); ok {
			t.Fatal("a turn was taken while another one lasted")
		}
	}
	h.advance(time.Minute)
	if ok, err := b.TakeSweepTurn(ctx, time.Minute); !ok || err != nil {
		t.Fatalf("another replica's take after the turn ran out = %v, %v", ok, err)
	}
}
