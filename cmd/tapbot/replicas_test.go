package main

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestRevealWaitsForConfiguredReplicas: TAP_REDIS_REPLICAS, not what the master reports, says
// how many replicas must hold a reveal's claim before the pass is shown. A replica that is gone
// (the master then lists none, and a wait read from INFO would be skipped) or too few replicas
// leave the pass sealed and unseen in Redis, and the click reads that it is temporarily
// unavailable; with TAP_REDIS_REPLICAS=0 nothing waits, even for a stuck replica.
func TestRevealWaitsForConfiguredReplicas(t *testing.T) {
	tests := []struct {
		name     string
		replicas string
		fault    func(w *world) (undo func())
		shown    bool
	}{
		{name: "the replica is gone", replicas: "1",
			fault: func(w *world) func() { w.replica.Stop(); return func() {} }},
		{name: "fewer replicas than configured", replicas: "2",
			fault: func(*world) func() { return func() {} }},
		{name: "no replicas configured, the replica stuck", replicas: "0",
			fault: func(w *world) func() { w.replica.Pause(); return w.replica.Resume }, shown: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, withRedisReplica, withEnv("TAP_REDIS_REPLICAS", tt.replicas))
			dm, id := w.issuedToAda()
			code := w.livePasses(adaEntraID)[0].Code
			undo := tt.fault(w)
			answer := w.revealAnswer(dm)
			undo()
			if tt.shown {
				w.view(ada, code)
				return
			}
			if n := w.modalsShowing(ada, code); n != 0 {
				t.Fatalf("the pass was shown although fewer than %s replicas held its claim", tt.replicas)
			}
			if text := answer.PlainText(); !strings.Contains(text, "Your pass is temporarily unavailable: tapbot's store could not confirm your claim on its replica") ||
				!strings.Contains(text, "still sealed and unseen: click Reveal pass again") {
				t.Fatalf("ada reads %q; want to hear the pass is unseen and to try again", text)
			}
			rdb := redis.NewClient(&redis.Options{Addr: w.redis.Addr()})
			defer rdb.Close()
			if n, err := rdb.Exists(context.Background(), "{tapbot}:pass:"+id).Result(); err != nil || n != 1 {
				t.Fatalf("the sealed pass is not back in Redis: %d, %v", n, err)
			}
			if got := labels(w.message(dm.Ref())); !strings.Contains(got, "Reveal pass") {
				t.Fatalf("the DM offers %q; the pass is still there to reveal", got)
			}
		})
	}
}
