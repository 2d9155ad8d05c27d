package redisstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/approvals/storetest"
	"github.com/tapbot/tapbot/internal/redistest"
	"github.com/tapbot/tapbot/redisstore"
)

func TestRedisStoreContract(t *testing.T) {
	srv := redistest.Start(t)
	storetest.Run(t, func(t *testing.T) (approvals.Store, func(time.Duration)) {
		rdb, err := redisstore.NewClient(srv.URL())
		if err != nil {
			t.Fatalf("NewClient: %v", err)
		}
		// Each store gets its own key prefix on the shared server, as if it were empty.
		s := redisstore.New(rdb, "{"+approvals.NewID()+"}:")
		t.Cleanup(func() { _ = s.Close() })
		// Redis runs its TTLs on its own clock; the only way to let them pass is to wait.
		return s, time.Sleep
	})
}

func TestOpenRejectsBadURL(t *testing.T) {
	for _, url := range []string{"http://localhost:6379", "not a url", "redis://127.0.0.1:1"} {
		t.Run(url, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if s, err := redisstore.Open(ctx, url); err == nil {
				_ = s.Close()
				t.Fatalf("Open(%q) succeeded, want an error", url)
			}
		})
	}
}

// TestRequestsKeepTheirRetention checks that updates keep the record's expiry, so records do not
// live forever after a click.
func TestRequestsKeepTheirRetention(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Socket()})
	t.Cleanup(func() { _ = rdb.Close() })
	s := redisstore.New(rdb, "t:")
	r := &approvals.Request{ID: approvals.NewID(), State: approvals.Pending, Reason: "x"}
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, r.ID, func(r *approvals.Request) error { r.State = approvals.Denied; return nil }); err != nil {
		t.Fatal(err)
	}
	ttl, err := rdb.TTL(ctx, "t:req:"+r.ID).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > approvals.RecordRetention {
		t.Fatalf("record TTL after update = %v, want within (0, %v]", ttl, approvals.RecordRetention)
	}
	keys, _ := rdb.Keys(ctx, "*").Result()
	if len(keys) != 1 || !strings.HasPrefix(keys[0], "t:req:") {
		t.Fatalf("keys = %v, want only the request record", keys)
	}
}
