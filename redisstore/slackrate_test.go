package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/internal/redistest"
	"github.com/tapbot/tapbot/redisstore"
	"github.com/tapbot/tapbot/slackrate"
	"github.com/tapbot/tapbot/slackrate/sharedtest"
)

// TestRedisSlackRateContract checks that replicas on Redis share Slack's buckets exactly as one
// process on the embedded store keeps them.
func TestRedisSlackRateContract(t *testing.T) {
	srv := redistest.Start(t)
	sharedtest.Run(t, func(t *testing.T) slackrate.Shared {
		rdb, err := redisstore.NewClient(srv.URL())
		if err != nil {
			t.Fatalf("NewClient: %v", err)
		}
		s := redisstore.New(rdb, "{"+approvals.NewID()+"}:")
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// runSlackRateThroughOpen runs the Slack bucket contract on a store made by Open (Cluster: every
// key must route by the {tapbot} hash tag).
func runSlackRateThroughOpen(t *testing.T, url string) {
	sharedtest.Run(t, func(t *testing.T) slackrate.Shared {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := redisstore.Open(ctx, url)
		if err != nil {
			t.Fatalf("Open(%q): %v", url, err)
		}
		t.Cleanup(func() { _ = s.Close() })
		// Each subtest's keys must start empty; a fresh prefix is not possible through Open.
		key := approvals.NewID()
		return prefixed{s, key}
	})
}

// prefixed keeps one subtest's buckets apart from another's on a store made by Open.
type prefixed struct {
	s      *redisstore.Store
	prefix string
}

func (p prefixed) TakeSlackCall(ctx context.Context, key string, every time.Duration, burst int) (time.Duration, error) {
	return p.s.TakeSlackCall(ctx, p.prefix+key, every, burst)
}
func (p prefixed) HoldSlackCalls(ctx context.Context, key string, d time.Duration) error {
	return p.s.HoldSlackCalls(ctx, p.prefix+key, d)
}
