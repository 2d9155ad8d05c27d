package redistest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// proxied returns a go-redis client that reaches a fresh server through a proxy, and a client
// that reaches the server directly, to look at what really ran.
func proxied(t *testing.T) (*Proxy, *redis.Client, *redis.Client) {
	t.Helper()
	srv := Start(t)
	p := StartProxy(t, srv)
	via := redis.NewClient(&redis.Options{Addr: p.Addr()})
	direct := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Socket()})
	t.Cleanup(func() { _ = via.Close(); _ = direct.Close() })
	return p, via, direct
}

// TestProxyDropsAReplyAfterTheServerRan shows what the proxy is for: go-redis sends a command
// again when its reply is lost after the server ran it, so a command that is not idempotent runs
// twice. Error replies are passed on and leave the fault armed.
func TestProxyDropsAReplyAfterTheServerRan(t *testing.T) {
	p, via, direct := proxied(t)
	ctx := context.Background()
	if err := direct.Set(ctx, "word", "abc", 0).Err(); err != nil {
		t.Fatal(err)
	}
	dropped := p.DropReply(HasArg("incr", ""))
	if err := via.Incr(ctx, "word").Err(); err == nil || !strings.Contains(err.Error(), "not an integer") {
		t.Fatalf("INCR of a word = %v, want the server's error passed on", err)
	}
	if p.Fired() != 0 {
		t.Fatal("an error reply counted as dropped")
	}
	n, err := via.Incr(ctx, "counter").Result()
	if err != nil {
		t.Fatalf("INCR through a lost reply: %v", err)
	}
	select {
	case <-dropped:
	default:
		t.Fatal("the drop did not report that it happened")
	}
	if got, _ := direct.Get(ctx, "counter").Int(); n != 2 || got != 2 {
		t.Fatalf("INCR returned %d and the server holds %d; want 2 and 2: go-redis retried a command that had run", n, got)
	}
	// Only the next match is dropped.
	if n, err := via.Incr(ctx, "counter").Result(); err != nil || n != 3 {
		t.Fatalf("INCR after the drop = %d, %v; want 3", n, err)
	}
}

// TestProxyRefuses closes the connection instead of forwarding matching commands after the
// first skip of them, until stopped; the server never sees them, and the client gives up after
// its retries.
func TestProxyRefuses(t *testing.T) {
	p, via, direct := proxied(t)
	ctx := context.Background()
	fired, stop := p.Refuse(HasArg("set", "k"), 1)
	if err := via.Set(ctx, "k", "first", 0).Err(); err != nil {
		t.Fatalf("the skipped SET: %v", err)
	}
	if err := via.Set(ctx, "k", "second", 0).Err(); err == nil {
		t.Fatal("a refused SET succeeded")
	}
	<-fired
	if v, _ := direct.Get(ctx, "k").Result(); v != "first" {
		t.Fatalf("the server holds %q; a refused command reached it", v)
	}
	if err := via.Set(ctx, "other", "x", 0).Err(); err != nil {
		t.Fatalf("a command the fault does not match: %v", err)
	}
	stop()
	if err := via.Set(ctx, "k", "third", 0).Err(); err != nil {
		t.Fatalf("SET after stop: %v", err)
	}
	if v, _ := direct.Get(ctx, "k").Result(); v != "third" {
		t.Fatalf("the server holds %q after stop, want third", v)
	}
}

// TestProxyRelaysResp3 checks that the replies go-redis's RESP3 brings (the HELLO map, maps,
// sets, nulls, pipelines) pass through intact.
func TestProxyRelaysResp3(t *testing.T) {
	_, via, _ := proxied(t)
	ctx := context.Background()
	if err := via.HSet(ctx, "h", "a", "1", "b", "2").Err(); err != nil {
		t.Fatal(err)
	}
	if m, err := via.HGetAll(ctx, "h").Result(); err != nil || m["a"] != "1" || m["b"] != "2" {
		t.Fatalf("HGETALL = %v, %v", m, err)
	}
	if err := via.SAdd(ctx, "s", "x", "y").Err(); err != nil {
		t.Fatal(err)
	}
	if ms, err := via.SMembers(ctx, "s").Result(); err != nil || len(ms) != 2 {
		t.Fatalf("SMEMBERS = %v, %v", ms, err)
	}
	if err := via.Get(ctx, "missing").Err(); err != redis.Nil {
		t.Fatalf("GET of a missing key = %v, want redis.Nil", err)
	}
	cmds, err := via.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, "n")
		p.Incr(ctx, "n")
		p.Get(ctx, "n")
		return nil
	})
	if err != nil || cmds[2].(*redis.StringCmd).Val() != "2" {
		t.Fatalf("pipeline = %v, %v", cmds, err)
	}
}

// TestReplicaAcknowledgesUntilPaused starts a replica: WAIT on the master counts it, and counts
// nobody while the replica is paused.
func TestReplicaAcknowledgesUntilPaused(t *testing.T) {
	master := StartTCP(t)
	replica := StartReplica(t, master)
	rdb := redis.NewClient(&redis.Options{Addr: master.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	wait := func() int64 {
		t.Helper()
		var n *redis.IntCmd
		if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "k", time.Now().String(), 0)
			n = redis.NewIntCmd(ctx, "wait", 1, 200)
			_ = p.Process(ctx, n)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return n.Val()
	}
	if n := wait(); n != 1 {
		t.Fatalf("WAIT counted %d replicas, want 1", n)
	}
	replica.Pause()
	if n := wait(); n != 0 {
		t.Fatalf("WAIT counted %d replicas while the replica was paused, want 0", n)
	}
	replica.Resume()
	if n := wait(); n != 1 {
		t.Fatalf("WAIT counted %d replicas after Resume, want 1", n)
	}
}
