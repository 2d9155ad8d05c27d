package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
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
	all, _ := rdb.Keys(ctx, "*").Result()
	var keys []string
	for _, k := range all {
		ttl, _ := rdb.TTL(ctx, k).Result()
		if strings.HasPrefix(k, "t:wrote:") {
			// A write's marker, for a retry after a lost reply: it goes within a minute.
			if ttl <= 0 || ttl > time.Minute {
				t.Fatalf("write marker %s has TTL %v, want within a minute", k, ttl)
			}
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) != 2 {
		t.Fatalf("keys = %v, want only the request record and the requester's index", keys)
	}
	for _, k := range keys {
		ttl, _ := rdb.TTL(ctx, k).Result()
		if !strings.HasPrefix(k, "t:req:") && !strings.HasPrefix(k, "t:byreq:") || ttl <= 0 || ttl > approvals.RecordRetention {
			t.Fatalf("key %s (TTL %v): want only the request record and the requester's index, each expiring within %v", k, ttl, approvals.RecordRetention)
		}
	}
}

// TestSentinelStoreContract runs the store contract through Open on a REDIS_URL that names a
// real Sentinel, so the Sentinel discovery path and everything the store does over it (scripts,
// WATCH/MULTI/EXEC, GETDEL, TTLs) are checked against the real protocol.
func TestSentinelStoreContract(t *testing.T) {
	t.Parallel()
	url := redistest.StartSentinel(t)
	t.Run("Contract", func(t *testing.T) { runContractThroughOpen(t, url) })
	t.Run("UnknownMasterRefused", func(t *testing.T) {
		// A typo in master_name must fail at Open, not leave a store that fails every request.
		bad := strings.Replace(url, "master_name="+redistest.SentinelMaster, "master_name=nosuchmaster", 1)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if s, err := redisstore.Open(ctx, bad); err == nil {
			_ = s.Close()
			t.Fatalf("Open(%q) succeeded, want an error", bad)
		}
	})
}

// TestClusterStoreContract runs the store contract through Open on a real Redis Cluster, where
// every multi-key operation must stay within one hash slot.
func TestClusterStoreContract(t *testing.T) {
	t.Parallel()
	url := redistest.StartCluster(t)
	t.Run("Contract", func(t *testing.T) { runContractThroughOpen(t, url) })
	t.Run("SlackRate", func(t *testing.T) { runSlackRateThroughOpen(t, url) })
	t.Run("UntaggedPrefixRefused", func(t *testing.T) {
		// Without a hash tag a request and the open index land in different slots and the cluster
		// refuses the create script. This is why Open uses "{tapbot}:", and it shows the test
		// cluster really enforces cluster rules, so the contract passing above means something.
		rdb, err := redisstore.NewClient(url)
		if err != nil {
			t.Fatal(err)
		}
		s := redisstore.New(rdb, "tapbot:")
		t.Cleanup(func() { _ = s.Close() })
		r := &approvals.Request{ID: approvals.NewID(), State: approvals.Pending}
		if err := s.Create(context.Background(), r); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
			t.Fatalf("Create with an untagged prefix on a cluster = %v, want a CROSSSLOT error", err)
		}
	})
}

// runContractThroughOpen runs storetest against stores from redisstore.Open(url), the way the
// service builds them. Open fixes the key prefix, so each store starts from a flushed database
// instead of a prefix of its own; afterwards every key it left must carry Open's prefix.
func runContractThroughOpen(t *testing.T, url string) {
	admin, err := redisstore.NewClient(url)
	if err != nil {
		t.Fatalf("NewClient(%q): %v", url, err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	storetest.Run(t, func(t *testing.T) (approvals.Store, func(time.Duration)) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := eachServer(ctx, admin, func(c *redis.Client) error { return c.FlushAll(ctx).Err() }); err != nil {
			t.Fatalf("FLUSHALL: %v", err)
		}
		s, err := redisstore.Open(ctx, url)
		if err != nil {
			t.Fatalf("Open(%q): %v", url, err)
		}
		t.Cleanup(func() {
			defer s.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := eachServer(ctx, admin, func(c *redis.Client) error {
				keys, err := c.Keys(ctx, "*").Result()
				for _, k := range keys {
					if !strings.HasPrefix(k, "{tapbot}:") {
						t.Errorf("key %q lacks Open's prefix {tapbot}:", k)
					}
				}
				return err
			})
			if err != nil {
				t.Errorf("KEYS: %v", err)
			}
		})
		// Redis runs its TTLs on its own clock; the only way to let them pass is to wait.
		return s, time.Sleep
	})
}

// eachServer runs fn on every data-holding server behind rdb: each cluster master, or the one
// server (or Sentinel's current master) otherwise. Keyless commands such as FLUSHALL and KEYS
// only act on the node they are sent to.
func eachServer(ctx context.Context, rdb redis.UniversalClient, fn func(*redis.Client) error) error {
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return fn(c) })
	case *redis.Client:
		return fn(c)
	}
	return errors.New("unknown client type")
}

// TestNewClient checks that each REDIS_URL form yields the client for its deployment, with the
// default timeouts unless the URL sets its own, and that malformed or ambiguous URLs are refused
// rather than silently falling back to a single server.
func TestNewClient(t *testing.T) {
	const (
		single   = "single"
		sentinel = "sentinel"
		cluster  = "cluster"
	)
	for _, tc := range []struct {
		url         string
		kind        string
		addrs       []string // server, cluster seed nodes; not checked for sentinel
		dialTimeout time.Duration
	}{
		{url: "redis://127.0.0.1:6379/0", kind: single, addrs: []string{"127.0.0.1:6379"}, dialTimeout: 2 * time.Second},
		{url: "unix:///run/redis.sock", kind: single, addrs: []string{"/run/redis.sock"}, dialTimeout: 2 * time.Second},
		{url: "redis://127.0.0.1:6379/0?dial_timeout=7s", kind: single, addrs: []string{"127.0.0.1:6379"}, dialTimeout: 7 * time.Second},
		{url: "redis://127.0.0.1:26379/0?master_name=mymaster", kind: sentinel, dialTimeout: 2 * time.Second},
		{url: "redis://127.0.0.1:26379/0?master_name=mymaster&addr=127.0.0.1:26380&dial_timeout=7s", kind: sentinel, dialTimeout: 7 * time.Second},
		{url: "redis://127.0.0.1:7000?cluster=true", kind: cluster, addrs: []string{"127.0.0.1:7000"}, dialTimeout: 2 * time.Second},
		{url: "redis://127.0.0.1:7000?cluster=true&addr=127.0.0.1:7001&dial_timeout=7s", kind: cluster, addrs: []string{"127.0.0.1:7000", "127.0.0.1:7001"}, dialTimeout: 7 * time.Second},
	} {
		t.Run(tc.url, func(t *testing.T) {
			rdb, err := redisstore.NewClient(tc.url)
			if err != nil {
				t.Fatalf("NewClient: %v", err)
			}
			defer rdb.Close()
			var kind string
			var addrs []string
			var dial, read, write time.Duration
			switch c := rdb.(type) {
			case *redis.ClusterClient:
				o := c.Options()
				kind, addrs, dial, read, write = cluster, o.Addrs, o.DialTimeout, o.ReadTimeout, o.WriteTimeout
			case *redis.Client:
				o := c.Options()
				// NewFailoverClient returns a plain *redis.Client; go-redis marks it with this
				// placeholder address because the real one comes from the Sentinels.
				kind = single
				if o.Addr == "FailoverClient" {
					kind = sentinel
				}
				addrs, dial, read, write = []string{o.Addr}, o.DialTimeout, o.ReadTimeout, o.WriteTimeout
			default:
				t.Fatalf("NewClient returned a %T", rdb)
			}
			if kind != tc.kind {
				t.Fatalf("NewClient gave a %s client (%T), want %s", kind, rdb, tc.kind)
			}
			if tc.addrs != nil && strings.Join(addrs, ",") != strings.Join(tc.addrs, ",") {
				t.Errorf("addresses = %v, want %v", addrs, tc.addrs)
			}
			if dial != tc.dialTimeout {
				t.Errorf("dial timeout = %v, want %v", dial, tc.dialTimeout)
			}
			if tc.dialTimeout == 2*time.Second && (read != 2*time.Second || write != 2*time.Second) {
				t.Errorf("read/write timeouts = %v/%v, want the 2s defaults", read, write)
			}
		})
	}

	for _, url := range []string{
		"not a url",
		"http://127.0.0.1:6379",
		"redis://127.0.0.1:6379?bogus=1",
		"redis://127.0.0.1:6379/notadb",
		"http://127.0.0.1:26379?master_name=mymaster",
		"redis://127.0.0.1:26379?master_name=mymaster&bogus=1",
		"redis://127.0.0.1:26379/notadb?master_name=mymaster",
		"redis://127.0.0.1:26379?master_name=mymaster&addr=nohostport",
		"http://127.0.0.1:7000?cluster=true",
		"unix:///run/redis.sock?cluster=true",
		"redis://127.0.0.1:7000?cluster=true&bogus=1",
		"redis://127.0.0.1:7000?cluster=true&addr=nohostport",
		// Both a Sentinel and a cluster: ambiguous, so refused rather than guessed.
		"redis://127.0.0.1:7000?cluster=true&master_name=mymaster",
		"redis://%zz",
	} {
		t.Run("refuses "+url, func(t *testing.T) {
			if rdb, err := redisstore.NewClient(url); err == nil {
				_ = rdb.Close()
				t.Fatalf("NewClient(%q) succeeded, want an error", url)
			}
		})
	}
}

// commandCalls reads how often each command ran from INFO commandstats, including commands run
// inside scripts.
func commandCalls(t *testing.T, rdb *redis.Client) map[string]int {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		var n int
		if _, err := fmt.Sscanf(rest, "%d", &n); err == nil {
			out[strings.TrimPrefix(name, "cmdstat_")] = n
		}
	}
	return out
}

// TestReadAuditPages reads a trail in pages smaller than it: every event comes back once, in
// order, in as many XRANGE calls as pages.
func TestReadAuditPages(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Socket()})
	t.Cleanup(func() { _ = rdb.Close() })
	defer redisstore.SetAuditPage(10)()
	for _, tc := range []struct{ events, xranges int }{{25, 3}, {20, 3}, {7, 1}, {0, 1}} {
		t.Run(fmt.Sprint(tc.events), func(t *testing.T) {
			s := redisstore.New(rdb, "{"+approvals.NewID()+"}:")
			for i := range tc.events {
				e := approvals.Event{Time: time.Now().UTC(), Event: approvals.EventApproved, RequestID: fmt.Sprintf("tap_%03d", i)}
				if err := s.AppendAudit(ctx, e, time.Hour); err != nil {
					t.Fatal(err)
				}
			}
			if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			got, err := s.ReadAudit(ctx, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.events {
				t.Fatalf("read %d of %d events", len(got), tc.events)
			}
			for i, e := range got {
				if want := fmt.Sprintf("tap_%03d", i); e.RequestID != want {
					t.Fatalf("event %d is %s, want %s", i, e.RequestID, want)
				}
			}
			if n := commandCalls(t, rdb)["xrange"]; n != tc.xranges {
				t.Fatalf("ReadAudit ran XRANGE %d times for %d events in pages of 10, want %d", n, tc.events, tc.xranges)
			}
		})
	}
}

// TestUpdateCommands counts what one uncontended Update costs: a GET and one script call from
// the client (two round trips), where WATCH/GET/MULTI/SET/SADD/EXEC took six commands in three.
func TestUpdateCommands(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Socket()})
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Socket()})
	t.Cleanup(func() { _ = admin.Close(); _ = rdb.Close() })
	trips := &roundTrips{}
	rdb.AddHook(trips)
	s := redisstore.New(rdb, "t:")
	r := &approvals.Request{ID: approvals.NewID(), State: approvals.Pending}
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	// The first call loads the script (EVALSHA, NOSCRIPT, EVAL); count the steady state.
	if _, err := s.Update(ctx, r.ID, func(r *approvals.Request) error { r.Reason = "warm"; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := admin.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	trips.n.Store(0)
	const updates = 50
	for i := range updates {
		if _, err := s.Update(ctx, r.ID, func(r *approvals.Request) error { r.Reason = fmt.Sprint(i); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	calls := commandCalls(t, admin)
	if n := trips.n.Load(); n != 2*updates {
		t.Errorf("%d updates took %d round trips, want 2 each", updates, n)
	}
	if calls["evalsha"] != updates || calls["watch"] != 0 || calls["multi"] != 0 || calls["exec"] != 0 {
		t.Errorf("commands for %d updates: %v; want one EVALSHA each and no WATCH/MULTI/EXEC", updates, calls)
	}
}

// roundTrips counts the client's trips to the server: a command, or a whole pipeline.
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}
