package main

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

// stallingReplica starts a replica (A) that, once armed, stalls at step of revealing, and with
// it its heartbeats, as a long GC pause or a frozen VM would, until wake. stalled closes when it
// stalls.
func (w *world) stallingReplica(step string) (arm func(), stalled <-chan struct{}, wake func()) {
	w.t.Helper()
	var armed atomic.Bool
	stop, woken := make(chan struct{}), make(chan struct{})
	var once sync.Once
	w.startReplicaWith(func(at string) {
		if !armed.Load() {
			return
		}
		switch at {
		case step:
			once.Do(func() { close(stop) })
			<-woken
		case "renewed": // the heartbeat stalls with the rest of the process
			<-woken
		}
	})
	wake = sync.OnceFunc(func() { close(woken) })
	w.t.Cleanup(wake)
	return func() { armed.Store(true) }, stop, wake
}

// awaitStall waits for a stalling replica to stall.
func (w *world) awaitStall(stalled <-chan struct{}) {
	w.t.Helper()
	select {
	case <-stalled:
	case <-time.After(20 * time.Second):
		w.t.Fatalf("the replica did not stall\nlogs:\n%s", w.logs)
	}
}

// viewUpdates counts the modal updates user was shown.
func (w *world) viewUpdates(user string) int {
	n := 0
	for _, v := range w.slack.Views(user) {
		if v.Event == "update" {
			n++
		}
	}
	return n
}

// TestSlowOwnerDoesNotShowThePassTwice: replica A moves Ada's reveal to revealing and stalls
// before it takes the pass; replica B's sweeper finds A gone and lets the request go back to
// issued. When A wakes up it must not take the pass under the token it had, and Ada's next
// click, on B, must not find a claim A left under that token: the pass is shown once.
func TestSlowOwnerDoesNotShowThePassTwice(t *testing.T) {
	w := newWorld(t, withRedis, withoutStart, withFastSweep, withAuditChannel)
	arm, stalled, wake := w.stallingReplica("revealing")
	dm, id := w.issuedToAda()
	code := w.livePasses(adaEntraID)[0].Code
	arm()
	before := w.viewUpdates(ada)
	w.click(ada, dm, "Reveal pass")
	w.awaitStall(stalled)

	w.start() // B
	b := w.slack.TotalConnections()
	w.waitFor("B's sweeper lets the stalled reveal go", func() bool { return w.record(id).State == approvals.Issued })
	wake()
	w.waitFor("A's answer", func() bool { return w.viewUpdates(ada) > before })
	if labels(w.message(dm.Ref())) != "Reveal pass,This wasn't me" {
		t.Fatalf("the DM no longer offers the pass, which nobody saw: %s", w.message(dm.Ref()).PlainText())
	}

	w.slack.RouteTo(b)
	w.click(ada, dm, "Reveal pass")
	w.view(ada, code)
	w.waitFor("the DM says revealed", func() bool {
		return strings.Contains(w.message(dm.Ref()).PlainText(), "Revealed")
	})
	if n := w.modalsShowing(ada, code); n != 1 {
		t.Fatalf("the pass was shown %d times, want once", n)
	}
	if w.alarmed() {
		t.Fatal("an alarm says someone else may have the pass; only Ada saw it")
	}
}

// TestPassShownAfterTakeoverIsDeleted: replica A takes Ada's pass and stalls before it shows it;
// replica B's sweeper finds A gone and, since the pass may be on a screen, deletes it and ends
// the request. Then A wakes up and does show it. That pass may now be in two places, so A raises
// the alarm, tells Ada not to use it, and nobody is offered a Reveal button again.
func TestPassShownAfterTakeoverIsDeleted(t *testing.T) {
	w := newWorld(t, withRedis, withoutStart, withFastSweep, withAuditChannel)
	arm, stalled, wake := w.stallingReplica("claimed")
	dm, id := w.issuedToAda()
	code := w.livePasses(adaEntraID)[0].Code
	arm()
	w.click(ada, dm, "Reveal pass")
	w.awaitStall(stalled)

	w.start() // B
	w.waitFor("B's sweeper ends the stalled reveal", func() bool { return w.record(id).State == approvals.Failed })
	if live := w.livePasses(adaEntraID); len(live) != 0 {
		t.Fatalf("the pass the stalled reveal took is live: %+v", live)
	}
	wake()
	w.view(ada, code) // A was only slow
	w.waitFor("the alarm", func() bool {
		for _, m := range w.slack.Messages(auditChan) {
			if strings.Contains(m.PlainText(), "may have been shown twice") {
				return true
			}
		}
		return false
	})
	w.ephemeral(ada, "may have been shown twice")
	w.dm(manager, "may have been shown twice")
	w.waitFor("the DM offers nothing", func() bool { return labels(w.message(dm.Ref())) == "" })
	if r := w.record(id); r.State != approvals.Failed {
		t.Fatalf("the request is %s, want failed", r.State)
	}
}

// TestSweepFindsAPassGoneFromTheStore: the sealed pass of an issued request is gone from Redis
// (a restart without persistence) and nobody clicks. The sweeper must not leave a Reveal button
// that fails every time: it deletes the pass in Entra ID and tells Ada and the requester that
// nobody saw it, raising no alarm.
func TestSweepFindsAPassGoneFromTheStore(t *testing.T) {
	w := newWorld(t, withRedis, withFastSweep, withAuditChannel)
	dm, id := w.issuedToAda()
	admin := w.redisAdmin()
	defer admin.Close()
	if n, err := admin.Del(context.Background(), "{tapbot}:pass:"+id, "{tapbot}:claim:"+id).Result(); err != nil || n != 1 {
		t.Fatalf("deleting the sealed pass in Redis = %d, %v", n, err)
	}
	w.waitFor("the DM no longer offers the pass", func() bool { return labels(w.message(dm.Ref())) == "" })
	if live := w.livePasses(adaEntraID); len(live) != 0 {
		t.Fatalf("a pass nobody can see is still live in Entra ID: %+v", live)
	}
	if text := w.message(dm.Ref()).PlainText(); !strings.Contains(text, "nobody saw it") {
		t.Fatalf("ada reads %q; want the truth: nobody saw it", text)
	}
	w.dm(manager, "nobody saw it")
	w.audited("revoked", id)
	if w.alarmed() {
		t.Fatal("an alarm says someone else may have the pass; nobody took it")
	}
}
