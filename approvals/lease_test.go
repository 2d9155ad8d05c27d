package approvals_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

// replicaWith builds another replica on the harness's store whose checkpoints call at.
func (h *harness) replicaWith(t *testing.T, name string, at func(step string)) *approvals.Service {
	t.Helper()
	cfg := h.svc.Config()
	cfg.Instance = name
	return approvals.NewService(cfg, h.store, h.dir, h.people, h.sealer,
		approvals.WithClock(h.clock), approvals.WithCheckpoints(at))
}

// pauseAt returns a checkpoint func that stops at step until resume is called, and a channel
// that closes when it got there.
func pauseAt(step string) (at func(string), reached <-chan struct{}, resume func()) {
	here, resumed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	at = func(s string) {
		if s == step {
			once.Do(func() { close(here) })
			<-resumed
		}
	}
	return at, here, sync.OnceFunc(func() { close(resumed) })
}

type approveResult struct {
	r   *approvals.Request
	err error
}

func approveAsync(svc *approvals.Service, id string) <-chan approveResult {
	out := make(chan approveResult, 1)
	go func() {
		r, err := svc.Approve(context.Background(), id, "UAPPR", approvals.MessageRef{})
		out <- approveResult{r, err}
	}()
	return out
}

// slowCreate makes CreatePass wait until the returned func is called, and closes entered when a
// call is waiting.
func (h *harness) slowCreate() (entered <-chan struct{}, finish func()) {
	in, done := make(chan struct{}), make(chan struct{})
	var once sync.Once
	create := h.dir.createFn
	h.dir.createFn = func(id string, l time.Duration, usableOnce bool) (approvals.Pass, error) {
		once.Do(func() { close(in) })
		<-done
		return create(id, l, usableOnce)
	}
	return in, sync.OnceFunc(func() { close(done) })
}

// TestSlowOwnerIsNotTakenOver: while Graph takes several leases' time to create the pass, the
// owner's heartbeats renew its lease and another replica's sweeper leaves the approval alone;
// once the owner stops heartbeating, the sweeper takes over and the pass the owner makes after
// all is deleted, not delivered.
func TestSlowOwnerIsNotTakenOver(t *testing.T) {
	for _, alive := range []bool{true, false} {
		name := map[bool]string{true: "alive", false: "gone quiet"}[alive]
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, approvals.Config{})
			ctx := context.Background()
			r := h.submit(t)
			entered, finish := h.slowCreate()
			defer finish()
			owner := h.replica(t, "replica-a", "")
			survivor := h.replica(t, "replica-b", "")
			if err := owner.Heartbeat(ctx, time.Minute); err != nil {
				t.Fatal(err)
			}
			result := approveAsync(owner, r.ID)
			<-entered
			for range 5 { // 5 x 40 s: more than twice the 90 s lease
				h.advance(40 * time.Second)
				if alive {
					if err := owner.Heartbeat(ctx, time.Minute); err != nil {
						t.Fatal(err)
					}
				}
				got, _ := survivor.Sweep(ctx)
				if alive && len(got) != 0 {
					t.Fatalf("the sweeper took a live owner's approval over: %v", states(got))
				}
			}
			finish()
			res := <-result
			cur, _ := h.svc.Get(ctx, r.ID)
			if alive {
				if res.err != nil || cur.State != approvals.Issued || cur.Owner != "replica-a" {
					t.Fatalf("slow approval ended %s (owner %q), %v; want issued by its owner", cur.State, cur.Owner, res.err)
				}
				if len(h.dir.deleted) != 0 || h.dir.created != 1 {
					t.Fatalf("created %d passes, deleted %v; want the one pass kept", h.dir.created, h.dir.deleted)
				}
				return
			}
			if approvals.ErrorCode(res.err) != approvals.Conflict || cur.State != approvals.Failed || cur.Resubmitted == "" {
				t.Fatalf("after a takeover the owner's approval = %v and the request is %s; want a conflict and the request failed and resubmitted", res.err, cur.State)
			}
			if h.dir.created != 1 || len(h.dir.deleted) != 1 {
				t.Fatalf("created %d, deleted %v: the pass the owner made after it was taken over must be deleted", h.dir.created, h.dir.deleted)
			}
			if ok, _ := h.store.HasSecret(ctx, r.ID); ok {
				t.Fatal("a pass nobody will deliver is stored")
			}
		})
	}
}

// TestSweepTurnLastsAsLongAsTheSweep: a sweep that waits on Graph longer than its turn keeps the
// turn while its replica heartbeats, so no second replica sweeps the same requests meanwhile.
func TestSweepTurnLastsAsLongAsTheSweep(t *testing.T) {
	for _, heartbeat := range []bool{true, false} {
		h := newHarness(t, approvals.Config{})
		ctx := context.Background()
		r := h.submit(t)
		crashDuring(func() {
			_, _ = h.replica(t, "replica-a", "created").Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{})
		})
		h.advance(approvals.DefaultIssue)
		entered, proceed := make(chan struct{}), make(chan struct{})
		h.dir.listFn = func(string) ([]approvals.PassInfo, error) {
			close(entered)
			<-proceed
			return nil, nil
		}
		a, b := h.replica(t, "replica-b", ""), h.replica(t, "replica-c", "")
		const turn = 10 * time.Second
		if ok, err := a.TakeSweepTurn(ctx, turn); !ok || err != nil {
			t.Fatalf("first turn = %v, %v", ok, err)
		}
		swept := make(chan []*approvals.Request, 1)
		go func() { got, _ := a.Sweep(ctx); swept <- got }()
		<-entered
		if heartbeat {
			if err := a.Heartbeat(ctx, 15*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		h.advance(turn + time.Second)
		ok, err := b.TakeSweepTurn(ctx, turn)
		if err != nil {
			t.Fatal(err)
		}
		close(proceed)
		got := <-swept
		if heartbeat && ok {
			t.Fatal("another replica took the turn while the sweep was still running")
		}
		if !heartbeat && !ok {
			t.Fatal("without heartbeats the turn did not run out: this test cannot tell renewal apart")
		}
		if heartbeat && (len(got) != 2 || got[0].State != approvals.Failed) {
			t.Fatalf("the long sweep returned %v, want the interrupted request failed and resubmitted", states(got))
		}
	}
}

// graphDown is what the graph package returns while Graph answers 503.
var graphDown = approvals.WrapError(approvals.Unavailable, errors.New("503 serviceNotAvailable"),
	"Microsoft Graph is throttling or unavailable; try again in a few minutes.")

// TestCleanupIsBounded: when Entra ID fails every cleanup after an interruption, the sweeper
// tries again with growing pauses, not on every sweep, and after half an hour ends the request
// failed with what to check by hand; when the target no longer exists it ends it at once.
func TestCleanupIsBounded(t *testing.T) {
	tests := []struct {
		name      string
		crashAt   string
		fail      func(h *harness, tries *int)
		wantTries int
		want      string
	}{
		{name: "503 forever on delete", crashAt: "recorded", wantTries: 4,
			fail: func(h *harness, tries *int) {
				h.dir.deleteFn = func(string, string) error { *tries++; return graphDown }
			},
			want: "could not make sure no pass was left because Entra ID kept failing for 30m. Check ada@example.com in Entra ID"},
		{name: "503 forever on list", crashAt: "created", wantTries: 4,
			fail: func(h *harness, tries *int) {
				h.dir.listFn = func(string) ([]approvals.PassInfo, error) { *tries++; return nil, graphDown }
			},
			want: "Check ada@example.com in Entra ID and delete any Temporary Access Pass there"},
		{name: "target deleted", crashAt: "created", wantTries: 1,
			fail: func(h *harness, tries *int) {
				h.dir.listFn = func(string) ([]approvals.PassInfo, error) {
					*tries++
					return nil, approvals.Errorf(approvals.NotFound, "No Entra ID account found for the user with ID entra-ada.")
				}
			},
			want: "ada@example.com no longer exists in Entra ID, so tapbot stopped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, approvals.Config{})
			ctx := context.Background()
			r := h.submit(t)
			crashDuring(func() {
				_, _ = h.replica(t, "replica-a", tt.crashAt).Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{})
			})
			tries := 0
			tt.fail(h, &tries)
			h.advance(approvals.DefaultIssue)
			survivor := h.replica(t, "replica-b", "")
			var ended []*approvals.Request
			for round := 0; round < 20 && ended == nil; round++ {
				before := tries
				got, err := survivor.Sweep(ctx)
				if tries != before+1 {
					t.Fatalf("round %d: the sweep tried %d times, want once", round, tries-before)
				}
				if len(got) > 0 {
					ended = got
					break
				}
				if err == nil {
					t.Fatalf("round %d: a failed cleanup was not reported", round)
				}
				// Until its pause ends, the request is left alone.
				if again, _ := survivor.Sweep(ctx); len(again) != 0 || tries != before+1 {
					t.Fatalf("round %d: swept again at once (%d tries)", round, tries)
				}
				h.advance(10 * time.Minute)
			}
			if tries != tt.wantTries || len(ended) != 1 || ended[0].State != approvals.Failed ||
				!strings.Contains(ended[0].Failure, tt.want) || ended[0].Resubmitted != "" {
				t.Fatalf("after %d tries the sweep ended %v with %q; want one failed request after %d tries saying %q",
					tries, states(ended), failure(ended), tt.wantTries, tt.want)
			}
			if open, _ := h.store.OpenRequests(ctx); len(open) != 0 {
				t.Fatalf("%d requests still open: the sweeper would keep trying", len(open))
			}
			if _, err := h.svc.Submit(ctx, approvals.Draft{Requester: "UBOSS", TargetUserID: "UADA", Reason: "again", UsableOnce: true}); err != nil {
				t.Fatalf("the target stayed locked after the request ended: %v", err)
			}
		})
	}
}

func failure(rs []*approvals.Request) string {
	if len(rs) == 0 {
		return ""
	}
	return rs[0].Failure
}

// TestLateSealedPassIsDeleted: an owner so slow that the sweeper ended its request before it
// stored the pass deletes the sealed copy and the pass; one that stored it just before the
// sweeper looked leaves it to the sweeper, which delivers it.
func TestLateSealedPassIsDeleted(t *testing.T) {
	for _, step := range []string{"recorded", "stored"} {
		t.Run(step, func(t *testing.T) {
			h := newHarness(t, approvals.Config{})
			ctx := context.Background()
			r := h.submit(t)
			at, reached, resume := pauseAt(step)
			defer resume()
			slow := h.replicaWith(t, "replica-a", at)
			result := approveAsync(slow, r.ID)
			<-reached
			h.advance(approvals.DefaultIssue) // the lease runs out; replica-a never heartbeated
			got, err := h.replica(t, "replica-b", "").Sweep(ctx)
			if err != nil {
				t.Fatal(err)
			}
			resume()
			res := <-result
			if approvals.ErrorCode(res.err) != approvals.Conflict {
				t.Fatalf("the slow owner's Approve = %v, want a conflict", res.err)
			}
			cur, _ := h.svc.Get(ctx, r.ID)
			stored, _ := h.store.HasSecret(ctx, r.ID)
			switch step {
			case "recorded": // the sweeper saw no sealed pass: it deleted the pass and failed the request
				if !slices.Equal(states(got), []approvals.State{approvals.Failed, approvals.Pending}) || cur.State != approvals.Failed {
					t.Fatalf("sweep = %v, request %s; want failed and resubmitted", states(got), cur.State)
				}
				if stored {
					t.Fatal("the sealed pass the slow owner stored after the request failed is still there")
				}
				if len(h.dir.deleted) != 2 || h.dir.deleted[0] != cur.PassID || h.dir.deleted[1] != cur.PassID {
					t.Fatalf("deleted %v; want the pass deleted by the sweeper and again by the late owner", h.dir.deleted)
				}
			case "stored": // the sweeper found the sealed pass and took delivery over
				if !slices.Equal(states(got), []approvals.State{approvals.Issued}) || cur.Owner != "replica-b" {
					t.Fatalf("sweep = %v, owner %q; want the survivor delivering", states(got), cur.Owner)
				}
				if !stored || len(h.dir.deleted) != 0 {
					t.Fatalf("stored %v, deleted %v: the pass the survivor delivers was removed", stored, h.dir.deleted)
				}
			}
		})
	}
}

// TestInterruptedCleanupIsPrecise: cleaning up after an interrupted approval deletes only the
// pass that approval made, never the pass of another request or one from before.
func TestInterruptedCleanupIsPrecise(t *testing.T) {
	t.Run("interrupted before the create call", func(t *testing.T) {
		h := newHarness(t, approvals.Config{})
		ctx := context.Background()
		r := h.submit(t)
		crashDuring(func() {
			_, _ = h.replica(t, "replica-a", "approved").Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{})
		})
		h.advance(approvals.DefaultIssue)
		if got, err := h.replica(t, "replica-b", "").Sweep(ctx); err != nil || len(got) != 2 {
			t.Fatalf("sweep = %v, %v", states(got), err)
		}
		if h.dir.listed != 0 || len(h.dir.deleted) != 0 {
			t.Fatalf("listed passes %d times and deleted %v; nothing can have been made", h.dir.listed, h.dir.deleted)
		}
	})

	t.Run("the previous request's pass survives a failed create", func(t *testing.T) {
		h := newHarness(t, approvals.Config{})
		ctx := context.Background()
		var live []approvals.PassInfo
		create := h.dir.createFn
		h.dir.createFn = func(id string, l time.Duration, once bool) (approvals.Pass, error) {
			p, err := create(id, l, once)
			live = []approvals.PassInfo{{ID: p.ID, CreatedAt: h.clock()}} // replaces the old one
			return p, err
		}
		h.dir.listFn = func(string) ([]approvals.PassInfo, error) { return live, nil }
		first := h.submit(t)
		if _, err := h.svc.Approve(ctx, first.ID, "UAPPR", approvals.MessageRef{}); err != nil {
			t.Fatal(err)
		}
		h.advance(30 * time.Second)
		// A second request for the same person, approved half a minute later, whose create
		// call times out without making anything.
		h.dir.createFn = func(string, time.Duration, bool) (approvals.Pass, error) {
			return approvals.Pass{}, approvals.WrapError(approvals.Unavailable, context.DeadlineExceeded, "Microsoft Graph did not answer in time; try again in a few minutes.")
		}
		second := h.submit(t)
		if _, err := h.svc.Approve(ctx, second.ID, "UAPPR", approvals.MessageRef{}); !errors.Is(err, approvals.ErrIssueFailed) {
			t.Fatalf("Approve = %v, want the create failure", err)
		}
		if h.dir.listed != 1 || len(h.dir.deleted) != 0 {
			t.Fatalf("listed %d, deleted %v: the first request's pass, made 30 s before, must be left alone", h.dir.listed, h.dir.deleted)
		}
	})

	t.Run("only the interrupted approval's pass is deleted", func(t *testing.T) {
		h := newHarness(t, approvals.Config{})
		ctx := context.Background()
		var made string
		create := h.dir.createFn
		h.dir.createFn = func(id string, l time.Duration, once bool) (approvals.Pass, error) {
			p, err := create(id, l, once)
			made = p.ID
			return p, err
		}
		r := h.submit(t)
		crashDuring(func() {
			_, _ = h.replica(t, "replica-a", "created").Approve(ctx, r.ID, "UAPPR", approvals.MessageRef{})
		})
		decided := h.clock()
		h.dir.listFn = func(string) ([]approvals.PassInfo, error) {
			return []approvals.PassInfo{
				{ID: "made-by-an-admin-before", CreatedAt: decided.Add(-10 * time.Minute)},
				{ID: made, CreatedAt: decided},
				{ID: "made-by-an-admin-after", CreatedAt: decided.Add(approvals.DefaultIssue + 10*time.Minute)},
			}, nil
		}
		// While the approval is unresolved, nobody can ask for another pass for the person.
		if _, err := h.svc.Submit(ctx, approvals.Draft{Requester: "UBOSS", TargetUserID: "UADA", Reason: "again", UsableOnce: true}); approvals.ErrorCode(err) != approvals.Conflict {
			t.Fatalf("a second request during issuing = %v, want refused", err)
		}
		h.advance(approvals.DefaultIssue + 15*time.Minute)
		if _, err := h.replica(t, "replica-b", "").Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(h.dir.deleted, []string{made}) {
			t.Fatalf("deleted %v, want only %s", h.dir.deleted, made)
		}
	})
}
