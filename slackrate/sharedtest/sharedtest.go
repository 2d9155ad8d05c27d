// Package sharedtest is the contract every slackrate.Shared must meet, run against the
// in-process one and against the Redis store, so one replica on the embedded store paces as
// replicas on Redis do together.
package sharedtest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapbot/tapbot/slackrate"
)

// Run runs the contract against stores made by newShared; each call must return an empty one.
func Run(t *testing.T, newShared func(t *testing.T) slackrate.Shared) {
	ctx := context.Background()
	take := func(t *testing.T, s slackrate.Shared, key string, every time.Duration, burst int) time.Duration {
		t.Helper()
		wait, err := s.TakeSlackCall(ctx, key, every, burst)
		if err != nil {
			t.Fatalf("TakeSlackCall(%s): %v", key, err)
		}
		return wait
	}

	t.Run("a full bucket allows its burst, then says when the next call may go", func(t *testing.T) {
		s := newShared(t)
		for i := range 3 {
			if wait := take(t, s, "m", time.Hour, 3); wait != 0 {
				t.Fatalf("call %d of a burst of 3 waits %v", i+1, wait)
			}
		}
		wait := take(t, s, "m", time.Hour, 3)
		if wait < 59*time.Minute || wait > time.Hour {
			t.Fatalf("4th call waits %v, want about the hour until the next token", wait)
		}
		if wait := take(t, s, "other", time.Hour, 3); wait != 0 {
			t.Fatalf("another bucket waits %v; buckets must not share tokens", wait)
		}
	})

	t.Run("a refused call takes nothing", func(t *testing.T) {
		s := newShared(t)
		take(t, s, "m", time.Hour, 1)
		for range 5 {
			take(t, s, "m", time.Hour, 1)
		}
		wait := take(t, s, "m", time.Hour, 1)
		if wait > time.Hour {
			t.Fatalf("after refused calls the wait grew to %v: refusals consumed tokens", wait)
		}
	})

	t.Run("a smaller burst leaves the rest to callers with a larger one", func(t *testing.T) {
		s := newShared(t)
		take(t, s, "m", time.Hour, 2)
		take(t, s, "m", time.Hour, 2)
		if wait := take(t, s, "m", time.Hour, 2); wait == 0 {
			t.Fatal("a third call with burst 2 was allowed")
		}
		if wait := take(t, s, "m", time.Hour, 4); wait != 0 {
			t.Fatalf("a call with burst 4 waits %v although two tokens are left", wait)
		}
	})

	t.Run("tokens come back at the bucket's rate", func(t *testing.T) {
		s := newShared(t)
		every := 100 * time.Millisecond
		take(t, s, "m", every, 1)
		wait := take(t, s, "m", every, 1)
		if wait <= 0 || wait > every {
			t.Fatalf("second call waits %v, want (0, %v]", wait, every)
		}
		time.Sleep(wait + 10*time.Millisecond)
		if wait := take(t, s, "m", every, 1); wait != 0 {
			t.Fatalf("after the wait the call still waits %v", wait)
		}
	})

	t.Run("a hold keeps every call back until it ends, and only on its key", func(t *testing.T) {
		s := newShared(t)
		if err := s.HoldSlackCalls(ctx, "m", 400*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		wait := take(t, s, "m", time.Millisecond, 10)
		if wait < 300*time.Millisecond || wait > 400*time.Millisecond {
			t.Fatalf("held call waits %v, want about 400ms", wait)
		}
		if err := s.HoldSlackCalls(ctx, "m", 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if wait := take(t, s, "m", time.Millisecond, 10); wait < 250*time.Millisecond {
			t.Fatalf("a shorter hold cut the longer one to %v", wait)
		}
		if wait := take(t, s, "other", time.Millisecond, 10); wait != 0 {
			t.Fatalf("a hold on m held back another key for %v", wait)
		}
		time.Sleep(450 * time.Millisecond)
		if wait := take(t, s, "m", time.Millisecond, 10); wait != 0 {
			t.Fatalf("after the hold ended the call waits %v", wait)
		}
	})

	t.Run("concurrent callers take exactly the burst", func(t *testing.T) {
		s := newShared(t)
		var taken atomic.Int32
		var wg sync.WaitGroup
		for range 40 {
			wg.Go(func() {
				if wait, err := s.TakeSlackCall(ctx, "m", time.Hour, 7); err == nil && wait == 0 {
					taken.Add(1)
				}
			})
		}
		wg.Wait()
		if n := taken.Load(); n != 7 {
			t.Fatalf("%d of 40 concurrent calls were allowed from a burst of 7", n)
		}
	})
}
