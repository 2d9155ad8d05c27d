package redisstore_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/approvals/storetest"
	"github.com/tapbot/tapbot/internal/redistest"
	"github.com/tapbot/tapbot/redisstore"
)

// readmeACL returns the ACL SETUSER lines README.md gives for tapbot's Redis user, the first for
// every deployment and the second for TAP_REDIS_REPLICAS, with a test password.
func readmeACL(t *testing.T) (base, replicas []any) {
	t.Helper()
	f, err := os.Open("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines [][]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "ACL SETUSER tapbot ") {
			continue
		}
		var args []any
		for _, w := range strings.Fields(line) {
			if w == ">PASSWORD" {
				w = ">s3cret"
			}
			args = append(args, w)
		}
		lines = append(lines, args[1:]) // the client sends ACL as the command itself
	}
	if len(lines) != 2 {
		t.Fatalf("README.md has %d ACL SETUSER tapbot lines, want 2 (every deployment, and TAP_REDIS_REPLICAS)", len(lines))
	}
	return lines[0], lines[1]
}

// TestStoreUnderREADMEACL runs the store contract, the Slack pacing buckets and the watch index
// as a Redis ACL user that may run only the commands README.md lists, so the list is what the
// code needs: a command the store starts to use without README naming it fails here. The WAIT
// of TAP_REDIS_REPLICAS is refused until the second line grants it.
func TestStoreUnderREADMEACL(t *testing.T) {
	master := redistest.StartTCP(t)
	redistest.StartReplica(t, master)
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: master.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	base, replicas := readmeACL(t)
	if err := admin.Do(ctx, append([]any{"acl"}, base...)...).Err(); err != nil {
		t.Fatalf("README's ACL line: %v", err)
	}
	url := "redis://tapbot:s3cret@" + master.Addr()
	open := func(t *testing.T, opts ...redisstore.Option) *redisstore.Store {
		t.Helper()
		rdb, err := redisstore.NewClient(url)
		if err != nil {
			t.Fatal(err)
		}
		s := redisstore.New(rdb, redisstore.Prefix+approvals.NewID()+":", opts...)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	storetest.Run(t, func(t *testing.T) (approvals.Store, func(time.Duration)) {
		return open(t), time.Sleep
	})
	t.Run("SlackPacingAndWatches", func(t *testing.T) {
		s := open(t)
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TakeSlackCall(ctx, "chat.update", time.Second, 2); err != nil {
			t.Fatal(err)
		}
		if err := s.HoldSlackCalls(ctx, "chat.update", time.Second); err != nil {
			t.Fatal(err)
		}
		if err := s.AddWatch(ctx, "r1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Watched(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveWatch(ctx, "r1"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Replicas", func(t *testing.T) {
		s := open(t, redisstore.WithReplicas(1))
		take := func() error {
			if err := s.PutSecret(ctx, "p", []byte("sealed"), time.Hour); err != nil {
				t.Fatal(err)
			}
			b, err := revealingTake(t, s, "p", approvals.NewID())
			if string(b) != "sealed" {
				t.Fatalf("take = %q, %v", b, err)
			}
			return err
		}
		if err := take(); !errors.Is(err, approvals.ErrNotReplicated) || !strings.Contains(err.Error(), "NOPERM") {
			t.Fatalf("take without WAIT granted = %v, want NOPERM and ErrNotReplicated", err)
		}
		if err := admin.Do(ctx, append([]any{"acl"}, replicas...)...).Err(); err != nil {
			t.Fatalf("README's ACL line for TAP_REDIS_REPLICAS: %v", err)
		}
		if err := take(); err != nil {
			t.Fatalf("take with WAIT granted = %v", err)
		}
	})
}
