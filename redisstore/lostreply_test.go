package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/internal/redistest"
	"github.com/tapbot/tapbot/redisstore"
)

// TestLostRepliesAreRecognised sends each write of the store through a proxy that loses the
// reply after Redis ran the command. go-redis then sends the command again on a new connection,
// and the second run must see the first run's write as its own: not as a conflict (a request
// that cannot be created or updated), not as someone else's lock or claim (a person locked out
// for a day, a click dropped as a duplicate), and not as a pass already gone.
func TestLostRepliesAreRecognised(t *testing.T) {
	srv := redistest.Start(t)
	proxy := redistest.StartProxy(t, srv)
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		key  string // the key whose command loses its reply
		// setup runs before the fault is armed; act runs through it and checks the outcome.
		setup func(t *testing.T, s *redisstore.Store, r *approvals.Request)
		act   func(t *testing.T, s *redisstore.Store, r *approvals.Request)
	}{
		{name: "Create", key: "req:",
			act: func(t *testing.T, s *redisstore.Store, r *approvals.Request) {
				if err := s.Create(ctx, r); err != nil {
					t.Fatalf("Create = %v, want nil: the record is its own", err)
				}
				if ids, _ := s.OpenRequests(ctx); len(ids) != 1 {
					t.Fatalf("open requests = %v, want the one created", ids)
				}
			}},
		{name: "Update", key: "req:",
			setup: func(t *testing.T, s *redisstore.Store, r *approvals.Request) {
				if err := s.Create(ctx, r); err != nil {
					t.Fatal(err)
				}
			},
			act: func(t *testing.T, s *redisstore.Store, r *approvals.Request) {
				runs := 0
				got, err := s.Update(ctx, r.ID, func(r *approvals.Request) error {
					runs++
					if r.State != approvals.Issued {
						return approvals.ErrConflict // a transition from Issued, as Reveal's
					}
					r.State = approvals.Revealing
					return nil
				})
				if err != nil || got.State != approvals.Revealing || runs != 1 {
					t.Fatalf("Update = %v, %v after %d runs of change; want it written once", got, err, runs)
				}
			}},
		{name: "CompareAndSwap", key: "key:target:",
			act: func(t *testing.T, s *redisstore.Store, r *approvals.Request) {
				if ok, err := s.CompareAndSwap(ctx, "target:entra-ada", "", r.ID, time.Hour); !ok || err != nil {
					t.Fatalf("taking a free lock = %v, %v; want true: the lock is its own", ok, err)
				}
				if ok, _ := s.CompareAndSwap(ctx, "target:entra-ada", "", approvals.NewID(), time.Hour); ok {
					t.Fatal("another request took the lock too")
				}
			}},
		{name: "Claim", key: "key:envelope:",
			act: func(t *testing.T, s *redisstore.Store, r *approvals.Request) {
				if first, err := s.Claim(ctx, "envelope:1", time.Hour); !first || err != nil {
					t.Fatalf("Claim = %v, %v; want first: the envelope must not be dropped as a duplicate of itself", first, err)
				}
				if first, _ := s.Claim(ctx, "envelope:1", time.Hour); first {
					t.Fatal("a second Claim was first too")
				}
			}},
		{name: "TakeSecret", key: "pass:",
			setup: func(t *testing.T, s *redisstore.Store, r *approvals.Request) {
				if err := s.PutSecret(ctx, r.ID, []byte("sealed"), time.Hour); err != nil {
					t.Fatal(err)
				}
			},
			act: func(t *testing.T, s *redisstore.Store, r *approvals.Request) {
				b, err := revealingTake(t, s, r.ID, "reveal-1")
				if err != nil || string(b) != "sealed" {
					t.Fatalf("TakeSecret = %q, %v; want the pass: the claim is its own", b, err)
				}
				if _, err := revealingTake(t, s, r.ID, "reveal-2"); !errors.Is(err, approvals.ErrClaimedElsewhere) {
					t.Fatalf("another reveal's take = %v, want ErrClaimedElsewhere", err)
				}
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rdb, err := redisstore.NewClient(proxy.URL())
			if err != nil {
				t.Fatal(err)
			}
			prefix := "{" + approvals.NewID() + "}:"
			s := redisstore.New(rdb, prefix)
			t.Cleanup(func() { _ = s.Close() })
			r := &approvals.Request{ID: approvals.NewID(), Requester: "U1", State: approvals.Issued, Reason: "x"}
			if tt.setup != nil {
				tt.setup(t, s, r)
			}
			// Any command on the key: the fault must catch the write however it is sent.
			dropped := proxy.DropReply(func(cmd []string) bool {
				return redistest.HasArg("", prefix+tt.key)(cmd) && !strings.EqualFold(cmd[0], "get")
			})
			tt.act(t, s, r)
			select {
			case <-dropped:
			default:
				t.Fatal("no reply was lost: the test did not test anything")
			}
		})
	}
}

// TestTakeWaitsForAReplica: how many replicas must acknowledge a take is configuration
// (WithReplicas, TAP_REDIS_REPLICAS), not what the master reports. With it, a take returns the
// pass only once that many replicas acknowledged the claim; while a replica is stuck, gone (a
// master whose INFO then lists no replica) or too few, it returns ErrNotReplicated with the
// sealed bytes, and the pass stays claimed for the caller to put back. Without it, nothing waits,
// replicas or not.
func TestTakeWaitsForAReplica(t *testing.T) {
	master := redistest.StartTCP(t)
	replica := redistest.StartReplica(t, master)
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: master.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	open := func(t *testing.T, n int) *redisstore.Store {
		t.Helper()
		s, err := redisstore.Open(ctx, master.URL(), redisstore.WithReplicas(n))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	id := approvals.NewID()
	put := func(t *testing.T, s *redisstore.Store) {
		t.Helper()
		if err := s.PutSecret(ctx, id, []byte("sealed"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	// notShown checks that a take with too few acknowledgements returns the sealed pass for the
	// caller to put back, and that the next take, with the replica back, gets it.
	notShown := func(t *testing.T, s *redisstore.Store, token string, take func() ([]byte, error), back func()) {
		t.Helper()
		b, err := take()
		back()
		if !errors.Is(err, approvals.ErrNotReplicated) || string(b) != "sealed" {
			t.Fatalf("take = %q, %v; want the sealed pass and ErrNotReplicated", b, err)
		}
		if ok, _ := s.HasSecret(ctx, id); ok {
			t.Fatal("the pass is back in the store; the caller decides that")
		}
		if err := s.ReturnSecret(ctx, id, "replica-a", token, b, time.Hour); err != nil {
			t.Fatal(err)
		}
	}

	s := open(t, 1)
	put(t, s)
	waits := commandCalls(t, admin)["wait"]
	if b, err := revealingTake(t, s, id, "t1"); err != nil || string(b) != "sealed" {
		t.Fatalf("take with a live replica = %q, %v", b, err)
	}
	if n := commandCalls(t, admin)["wait"] - waits; n != 1 {
		t.Fatalf("WAIT ran %d times for one take, want 1", n)
	}

	put(t, s)
	replica.Pause()
	notShown(t, s, "t2", func() ([]byte, error) { return revealingTake(t, s, id, "t2") }, replica.Resume)
	if b, err := revealingTake(t, s, id, "t3"); err != nil || string(b) != "sealed" {
		t.Fatalf("take after the replica came back = %q, %v", b, err)
	}

	// Two replicas asked for, one running: never enough.
	two := open(t, 2)
	put(t, two)
	notShown(t, two, "t4", func() ([]byte, error) { return revealingTake(t, two, id, "t4") }, func() {})

	// Nothing configured: no WAIT, although the master has a replica.
	none := open(t, 0)
	put(t, none)
	waits = commandCalls(t, admin)["wait"]
	if _, err := revealingTake(t, none, id, "t5"); err != nil {
		t.Fatal(err)
	}
	if n := commandCalls(t, admin)["wait"] - waits; n != 0 {
		t.Fatalf("WAIT ran %d times without TAP_REDIS_REPLICAS", n)
	}

	// The replica gone: the master's INFO lists none, and the configured wait still holds.
	put(t, s)
	replica.Stop()
	notShown(t, s, "t6", func() ([]byte, error) { return revealingTake(t, s, id, "t6") }, func() {})
}

// revealingTake makes request id Revealing under replica-a and token (creating the record when
// there is none), as Reveal does, and takes its pass: the store takes only for the reveal the
// request names.
func revealingTake(t *testing.T, s *redisstore.Store, id, token string) ([]byte, error) {
	t.Helper()
	ctx := context.Background()
	set := func(r *approvals.Request) error {
		r.State, r.Owner, r.RevealToken = approvals.Revealing, "replica-a", token
		return nil
	}
	_, err := s.Update(ctx, id, set)
	if errors.Is(err, approvals.ErrNotFound) {
		r := &approvals.Request{ID: id, Requester: "U1", Reason: "x"}
		_ = set(r)
		err = s.Create(ctx, r)
	}
	if err != nil {
		t.Fatalf("make %s revealing: %v", id, err)
	}
	return s.TakeSecret(ctx, id, "replica-a", token, time.Minute)
}

// TestLostRepliesAreRecognisedAfterAnotherWrite: a write's reply is lost, and before the client
// sends it again another client writes the same key (a heartbeat renews the request, the lock is
// handed on, the envelope mark is replaced). A record write or a compare-and-swap must still
// report that its own write stood, as it did: it left a marker of its own, where the key's value
// no longer says so. A claim must not: the key it claimed is someone else's now.
func TestLostRepliesAreRecognisedAfterAnotherWrite(t *testing.T) {
	srv := redistest.Start(t)
	proxy := redistest.StartProxy(t, srv)
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		key  string // the key whose command loses its reply
		// setup runs before the fault is armed; meanwhile is the other client's write, between
		// the lost reply and the retry; act runs through the fault and checks the outcome.
		setup     func(t *testing.T, s *redisstore.Store, r *approvals.Request)
		meanwhile func(other *redisstore.Store, r *approvals.Request) error
		act       func(t *testing.T, s *redisstore.Store, r *approvals.Request)
	}{
		{name: "Create", key: "req:",
			meanwhile: func(other *redisstore.Store, r *approvals.Request) error {
				_, err := other.Update(ctx, r.ID, func(r *approvals.Request) error { r.Reason = "edited"; return nil })
				return err
			},
			act: func(t *testing.T, s *redisstore.Store, r *approvals.Request) {
				if err := s.Create(ctx, r); err != nil {
					t.Fatalf("Create = %v, want nil: the record is its own", err)
				}
			}},
		{name: "Update", key: "req:",
			setup: func(t *testing.T, s *redisstore.Store, r *approvals.Request) {
				if err := s.Create(ctx, r); err != nil {
					t.Fatal(err)
				}
			},
			meanwhile: func(other *redisstore.Store, r *approvals.Request) error {
				_, err := other.Update(ctx, r.ID, func(r *approvals.Request) error { r.Owner = "renewed"; return nil })
				return err
			},
			act: func(t *testing.T, s *redisstore.Store, r *approvals.Request) {
				runs := 0
				_, err := s.Update(ctx, r.ID, func(r *approvals.Request) error {
					runs++
					if r.State != approvals.Issued {
						return approvals.ErrConflict // a transition from Issued, as Reveal's
					}
					r.State = approvals.Revealing
					return nil
				})
				if err != nil || runs != 1 {
					t.Fatalf("Update = %v after %d runs of change; want its write recognised", err, runs)
				}
			}},
		{name: "CompareAndSwap", key: "key:target:",
			meanwhile: func(other *redisstore.Store, r *approvals.Request) error {
				_, err := other.CompareAndSwap(ctx, "target:entra-ada", r.ID, "copy-of-"+r.ID, time.Hour)
				return err
			},
			act: func(t *testing.T, s *redisstore.Store, r *approvals.Request) {
				if ok, err := s.CompareAndSwap(ctx, "target:entra-ada", "", r.ID, time.Hour); !ok || err != nil {
					t.Fatalf("taking a free lock = %v, %v; want true: the lock was its own", ok, err)
				}
			}},
		{name: "Claim", key: "key:envelope:",
			meanwhile: func(other *redisstore.Store, r *approvals.Request) error {
				if err := other.Release(ctx, "envelope:1"); err != nil {
					return err
				}
				_, err := other.Claim(ctx, "envelope:1", time.Hour)
				return err
			},
			act: func(t *testing.T, s *redisstore.Store, r *approvals.Request) {
				// Released and claimed by another since: the key is the other's now. A retry
				// that reported itself first would let two holders into a lock.
				if first, err := s.Claim(ctx, "envelope:1", time.Hour); first || err != nil {
					t.Fatalf("Claim = %v, %v; want not first: another client holds the key now", first, err)
				}
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rdb, err := redisstore.NewClient(proxy.URL())
			if err != nil {
				t.Fatal(err)
			}
			prefix := "{" + approvals.NewID() + "}:"
			s := redisstore.New(rdb, prefix)
			t.Cleanup(func() { _ = s.Close() })
			other := redisstore.New(redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Socket()}), prefix)
			t.Cleanup(func() { _ = other.Close() })
			r := &approvals.Request{ID: approvals.NewID(), Requester: "U1", State: approvals.Issued, Reason: "x"}
			if tt.setup != nil {
				tt.setup(t, s, r)
			}
			var meanwhileErr error
			dropped := proxy.DropReplyThen(func(cmd []string) bool {
				return redistest.HasArg("", prefix+tt.key)(cmd) && !strings.EqualFold(cmd[0], "get")
			}, func() { meanwhileErr = tt.meanwhile(other, r) })
			tt.act(t, s, r)
			select {
			case <-dropped:
			default:
				t.Fatal("no reply was lost: the test did not test anything")
			}
			if meanwhileErr != nil {
				t.Fatalf("the other client's write: %v", meanwhileErr)
			}
		})
	}
}
