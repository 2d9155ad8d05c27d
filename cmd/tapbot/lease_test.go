package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/config"
	"github.com/tapbot/tapbot/internal/graphfake"
)

// issueLease is the lease tapbot gives an approval with the default TAP_GRAPH_TIMEOUT of 30 s.
const issueLease = 2*30*time.Second + 30*time.Second

// record reads a request as stored in Redis.
func (w *world) record(id string) approvals.Request {
	w.t.Helper()
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: w.redis.Socket()})
	defer rdb.Close()
	b, err := rdb.Get(context.Background(), "{tapbot}:req:"+id).Bytes()
	if err != nil {
		w.t.Fatalf("read request %s from Redis: %v", id, err)
	}
	var r approvals.Request
	if err := json.Unmarshal(b, &r); err != nil {
		w.t.Fatal(err)
	}
	return r
}

// sweeps counts the sweeps any in-process replica has finished.
func (w *world) sweeps() int { return strings.Count(w.logs.String(), `"msg":"swept"`) }

// waitForSweeps waits until n more sweeps have finished, so whatever the sweepers would do with
// the store as it is now, they have done.
func (w *world) waitForSweeps(n int) {
	w.t.Helper()
	target := w.sweeps() + n
	w.waitFor(fmt.Sprintf("%d more sweeps", n), func() bool { return w.sweeps() >= target })
}

// TestSlowGraphKeepsItsOwner: Graph takes longer than the approval's lease to create the pass,
// while two replicas sweep every 100 ms. The owner's heartbeats renew the lease, so neither
// sweeper takes the approval over: one pass, one DM, nothing posted again.
func TestSlowGraphKeepsItsOwner(t *testing.T) {
	w := newWorld(t, withRedis, withFastSweep)
	w.startReplica()
	w.tap(manager, "<@UADA> 1h once lost phone")
	m := w.approvalMessage(1)
	id := button(t, m, "Approve").Value
	release := w.graph.Hold(graphfake.OpCreatePass)
	defer release()
	w.click(approver, m, "Approve")
	w.waitFor("the create call in flight", func() bool { return w.graph.InFlight(graphfake.OpCreatePass) == 1 })

	// Four steps of 40 s take the clock well past the first lease; after each, the owner renews.
	for step := range 4 {
		w.advance(40 * time.Second)
		now := w.clock()
		w.waitFor(fmt.Sprintf("the lease renewed after step %d", step+1), func() bool {
			return !w.record(id).LeaseUntil.Before(now.Add(issueLease))
		})
	}
	w.waitForSweeps(3)
	if r := w.record(id); r.State != approvals.Issuing || r.Resubmitted != "" {
		t.Fatalf("while Graph was slow the request became %s (resubmitted %q)", r.State, r.Resubmitted)
	}
	release()

	dm := w.dm(ada, "Reveal")
	w.click(ada, dm, "Reveal pass")
	live := w.livePasses(adaEntraID)
	if len(live) != 1 {
		t.Fatalf("live passes = %d, want 1", len(live))
	}
	w.view(ada, live[0].Code)
	w.waitFor("approval message says approved", func() bool {
		return strings.Contains(w.message(m.Ref()).PlainText(), "Approved by <@UAPPROVER>")
	})
	if n := w.graph.Calls(graphfake.OpCreatePass); n != 1 {
		t.Fatalf("Graph create called %d times, want 1", n)
	}
	if n := len(w.slack.Messages(approvalChannel)); n != 1 {
		t.Fatalf("%d approval messages: the slow approval was posted again", n)
	}
	if n := len(w.slack.Messages(w.slack.DMChannel(ada))); n != 1 {
		t.Fatalf("ada got %d DMs, want 1", n)
	}
	if strings.Contains(w.logs.String(), "interrupted") {
		t.Fatalf("a sweeper treated the slow approval as interrupted:\n%s", w.logs)
	}
}

// TestDeadOwnerIsTakenOverWhileGraphIsSlow: the replica approving is killed (kill -9) while its
// create call is still in flight, just after it renewed its lease once. The next replica takes
// the approval over without waiting for the lease, posts it again, and the second approval
// gives the one pass and the one DM.
func TestDeadOwnerIsTakenOverWhileGraphIsSlow(t *testing.T) {
	w := newWorld(t, withRedis, withoutStart, withFastSweep)
	release := w.graph.Hold(graphfake.OpCreatePass)
	defer release()
	gone := w.spawn("renewed")
	w.tap(manager, "<@UADA> 1h once lost phone")
	m := w.approvalMessage(1)
	w.clickNoWait(approver, m, "Approve")
	select {
	case <-gone:
	case <-time.After(20 * time.Second):
		t.Fatalf("the replica did not die after renewing its lease\nlogs:\n%s", w.logs)
	}

	w.start()
	w.waitFor("the interrupted request reported", func() bool {
		text := w.message(m.Ref()).PlainText()
		return strings.Contains(text, "but failed") && strings.Contains(text, "posted again")
	})
	w.dm(approver, "Approve it again")
	// The dead replica's create call is abandoned once the fake sees its connection gone; only
	// then may Graph answer again, or it would answer a dead client.
	w.waitFor("the dead replica's call gone", func() bool { return w.graph.InFlight(graphfake.OpCreatePass) == 0 })
	release()
	w.click(approver, w.approvalMessage(2), "Approve")
	dm := w.dm(ada, "Reveal")
	w.click(ada, dm, "Reveal pass")
	if n := len(w.graph.Passes(adaEntraID)); n != 1 {
		t.Fatalf("Entra ID made %d passes, want 1", n)
	}
	w.view(ada, w.livePasses(adaEntraID)[0].Code)
	if n := len(w.slack.Messages(w.slack.DMChannel(ada))); n != 1 {
		t.Fatalf("ada got %d DMs, want 1", n)
	}
}

// TestCleanupAfterInterruptionIsBounded: a replica dies right after Graph made the pass, before
// its ID was recorded, so the next replica must find the pass by listing the target's passes.
// When the target was deleted from Entra ID meanwhile (404), the request ends failed at once;
// when Graph answers 503 forever, the sweeper tries with growing pauses and after half an hour
// ends it failed, telling approver and requester to check Entra ID by hand. Either way it then
// stops calling Graph.
func TestCleanupAfterInterruptionIsBounded(t *testing.T) {
	tests := []struct {
		name  string
		setup func(w *world)
		want  string
	}{
		{"target deleted", func(w *world) { w.graph.RemoveUser(adaEntraID) }, "ada@example.com no longer exists in Entra ID"},
		{"503 forever", func(w *world) { w.graph.FailNext(graphfake.OpListPasses, 503, 1_000_000, "0") },
			"Check ada@example.com in Entra ID and delete any Temporary Access Pass there"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, withRedis, withoutStart, withFastSweep)
			gone := w.spawn("created")
			w.tap(manager, "<@UADA> 1h once lost phone")
			m := w.approvalMessage(1)
			id := button(t, m, "Approve").Value
			w.clickNoWait(approver, m, "Approve")
			select {
			case <-gone:
			case <-time.After(20 * time.Second):
				t.Fatalf("the replica did not die\nlogs:\n%s", w.logs)
			}
			tt.setup(w)
			w.start()
			for try := 1; ; try++ {
				if try > 10 {
					t.Fatalf("still not given up after %d tries", try-1)
				}
				w.waitFor(fmt.Sprintf("cleanup try %d", try), func() bool {
					r := w.record(id)
					return r.State == approvals.Failed || r.CleanupFailures >= try
				})
				if w.record(id).State == approvals.Failed {
					break
				}
				w.advance(15 * time.Minute) // past the pause before the next try
			}
			w.waitFor("the approval message shows the failure", func() bool {
				cur := w.message(m.Ref())
				return strings.Contains(cur.PlainText(), "but failed") && strings.Contains(cur.PlainText(), tt.want) && len(cur.Buttons()) == 0
			})
			w.dm(approver, tt.want)
			w.dm(manager, tt.want)
			if n := len(w.slack.Messages(approvalChannel)); n != 1 {
				t.Fatalf("%d approval messages: a request for a target that cannot be cleaned up was posted again", n)
			}
			calls := w.graph.Calls(graphfake.OpListPasses) + w.graph.Calls(graphfake.OpDeletePass)
			w.advance(time.Hour)
			w.waitForSweeps(3)
			if now := w.graph.Calls(graphfake.OpListPasses) + w.graph.Calls(graphfake.OpDeletePass); now != calls {
				t.Fatalf("Graph called %d more times after the request ended", now-calls)
			}
		})
	}
}

// TestFailedCreateSparesThePreviousPass: a pass is issued for ada; a minute later a second
// request for her is approved and Graph's create call times out. tapbot checks for a pass the
// timed-out call may have made after all, and must not take the first request's pass for it.
func TestFailedCreateSparesThePreviousPass(t *testing.T) {
	w := newWorld(t, withRedis, withEnv("TAP_GRAPH_TIMEOUT", "300ms"))
	w.tap(manager, "<@UADA> 1h once lost phone")
	w.click(approver, w.approvalMessage(1), "Approve")
	w.dm(ada, "Reveal")
	first := w.livePasses(adaEntraID)
	if len(first) != 1 {
		t.Fatalf("live passes after the first approval = %d", len(first))
	}
	w.advance(time.Minute)
	w.tap(manager, "<@UADA> 1h once the first one did not arrive")
	m := w.approvalMessage(2)
	w.graph.Hang(graphfake.OpCreatePass, time.Minute)
	w.click(approver, m, "Approve")
	w.ephemeral(approver, "did not answer in time")
	// The check for a pass the call made after all comes before the failure is shown.
	w.waitFor("the failure shown", func() bool { return strings.Contains(w.message(m.Ref()).PlainText(), "but failed") })
	live := w.livePasses(adaEntraID)
	if len(live) != 1 || live[0].ID != first[0].ID {
		t.Fatalf("live passes = %+v, want the first request's pass untouched", live)
	}
	if n := w.graph.Calls(graphfake.OpDeletePass); n != 0 {
		t.Fatalf("Graph delete called %d times", n)
	}
}

// startReplicaWith starts one more in-process replica, like startReplica, whose checkpoints call
// at: a replica a test can pause at any step of issuing, heartbeats included.
func (w *world) startReplicaWith(at func(step string)) {
	w.t.Helper()
	for k, v := range w.env {
		w.t.Setenv(k, v)
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		w.t.Fatalf("config: %v", err)
	}
	m := NewMain(cfg, Options{
		Transport:    hostRouter{w.graph.Addr(): w.graph.Transport()},
		Logger:       slog.New(slog.NewJSONHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:          w.clock,
		SweepEvery:   w.sweepEvery,
		HeartbeatTTL: time.Second,
		Checkpoint:   at,
	})
	before := w.slack.TotalConnections()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	w.stops = append(w.stops, func() {
		cancel()
		<-done
		_ = m.Close()
	})
	w.waitFor("the paused replica connected", func() bool { return w.slack.TotalConnections() > before })
}

// TestLateSealedPassIsDeleted: a replica stalls (as in a long GC pause or a frozen VM) after Graph
// made the pass and before it stored the sealed copy; its heartbeats stall too, so the next
// replica takes the approval over, deletes the pass and posts the request again. When the
// stalled replica wakes up and stores the sealed copy after all, it must delete it and the
// pass again, not leave them behind.
func TestLateSealedPassIsDeleted(t *testing.T) {
	w := newWorld(t, withRedis, withoutStart, withFastSweep)
	stalled, wake := make(chan struct{}), make(chan struct{})
	var once sync.Once
	w.startReplicaWith(func(step string) {
		switch step {
		case "recorded":
			once.Do(func() { close(stalled) })
			<-wake
		case "renewed": // heartbeats stall with the rest of the process
			<-wake
		}
	})
	wakeUp := sync.OnceFunc(func() { close(wake) })
	defer wakeUp()
	w.tap(manager, "<@UADA> 1h once lost phone")
	m := w.approvalMessage(1)
	id := button(t, m, "Approve").Value
	w.click(approver, m, "Approve")
	<-stalled
	passID := w.record(id).PassID
	if passID == "" {
		t.Fatal("the stalled replica did not record the pass's ID")
	}

	w.start()
	w.waitFor("the approval taken over and posted again", func() bool {
		return strings.Contains(w.message(m.Ref()).PlainText(), "posted again")
	})
	if live := w.livePasses(adaEntraID); len(live) != 0 {
		t.Fatalf("the taken-over approval's pass is live: %+v", live)
	}
	wakeUp()
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: w.redis.Socket()})
	defer rdb.Close()
	// The sweeper deleted the pass once; the late replica deletes it again, after its sealed copy.
	w.waitFor("the late replica deleted its pass", func() bool { return w.graph.Calls(graphfake.OpDeletePass) >= 2 })
	if n, err := rdb.Exists(context.Background(), "{tapbot}:pass:"+id).Result(); err != nil || n != 0 {
		t.Fatalf("the sealed pass the late replica stored is still in Redis (%d, %v)", n, err)
	}
	if live := w.livePasses(adaEntraID); len(live) != 0 {
		t.Fatalf("a pass is live after the late replica cleaned up: %+v", live)
	}
	if r := w.record(id); r.State != approvals.Failed {
		t.Fatalf("the taken-over request is %s, want failed", r.State)
	}
}
