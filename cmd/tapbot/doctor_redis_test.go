package main

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tapbot/tapbot/internal/redistest"
)

// withRedisUser is withRedis on TCP with tapbot logging in as a Redis ACL user with these
// rules (after "on >s3cret"), as a locked-down deployment runs it.
func withRedisUser(rules string) worldOption {
	return func(w *world) {
		w.env["TAP_ENCRYPTION_KEY"] = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
		w.redis = redistest.StartTCP(w.t)
		admin := redis.NewClient(&redis.Options{Addr: w.redis.Addr()})
		defer admin.Close()
		args := []any{"acl", "setuser", "tapbot", "on", ">s3cret"}
		for _, r := range strings.Fields(rules) {
			args = append(args, r)
		}
		if err := admin.Do(context.Background(), args...).Err(); err != nil {
			w.t.Fatalf("ACL SETUSER: %v", err)
		}
		w.env["REDIS_URL"] = "redis://tapbot:s3cret@" + w.redis.Addr()
	}
}

// TestDoctorChecksTheStoreScripts: the doctor's Redis check takes and puts back a throwaway
// sealed pass through the store's own scripts as REDIS_URL's user, and WAITs as
// TAP_REDIS_REPLICAS asks, so a user that may SET and GET but not run the scripts or WAIT, and
// replicas that do not acknowledge, fail the check with the fix, instead of every reveal later.
func TestDoctorChecksTheStoreScripts(t *testing.T) {
	const keysOnly = "resetkeys ~{tapbot}:* resetchannels -@all +ping +get +set +del"
	const noWait = keysOnly + " +evalsha +eval +hget +hset +pttl +pexpire +exists"
	tests := []struct {
		name string
		opts []worldOption
		want string
		ok   bool
	}{
		{name: "all there, with a replica",
			opts: []worldOption{withRedisReplica},
			want: "✓ Redis writable: wrote, read and deleted a key that would expire in 30s; took and put back a sealed pass with tapbot's scripts, and TAP_REDIS_REPLICAS=1 replicas acknowledged the claim",
			ok:   true},
		{name: "a user that may not run scripts",
			opts: []worldOption{withRedisUser(keysOnly)},
			want: "✗ Redis writable: cannot take and put back a sealed pass with tapbot's scripts: redis take sealed pass: NOPERM this user has no permissions to run the 'evalsha' command — check that REDIS_URL's user may run the scripts and commands README.md lists under \"Redis\""},
		{name: "a user that may not WAIT",
			opts: []worldOption{withRedisUser(noWait), withEnv("TAP_REDIS_REPLICAS", "1")},
			want: "✗ Redis writable: cannot take and put back a sealed pass with tapbot's scripts: redis take sealed pass: no replica acknowledged the claim in time: NOPERM this user has no permissions to run the 'wait' command"},
		{name: "fewer replicas than TAP_REDIS_REPLICAS",
			opts: []worldOption{withRedisReplica, withEnv("TAP_REDIS_REPLICAS", "2")},
			want: "✗ Redis writable: a reveal's claim was not acknowledged by TAP_REDIS_REPLICAS replicas: redis take sealed pass: no replica acknowledged the claim in time: 1 of the 2 replicas TAP_REDIS_REPLICAS asks for acknowledged within 1s — check that the replicas are connected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, append([]worldOption{withoutStart}, tt.opts...)...)
			out, err := w.doctor()
			if (err == nil) != tt.ok {
				t.Fatalf("doctor = %v, want ok %v\n%s", err, tt.ok, out)
			}
			requireLines(t, out, tt.want)
			if dump := w.redisDump(); strings.Contains(dump, "doctor") {
				t.Errorf("doctor left a key in Redis:\n%s", dump)
			}
		})
	}
}
