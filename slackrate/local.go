package slackrate

import (
	"context"
	"sync"
	"time"
)

// Shared is where replicas keep Slack's limits in common: every replica draws its calls from the
// same buckets, and a Retry-After that one replica hears holds back all of them. The Redis store
// implements it for replicas; Local is the in-process one for the embedded store.
type Shared interface {
	// TakeSlackCall takes one call from the bucket key, which allows one call every every on
	// average and burst at once, and returns 0; or, taking nothing, how long until it could
	// (a hold counts too). Calls of one key may pass different bursts: a smaller one leaves
	// the difference to callers that pass a larger one (see burstFor).
	TakeSlackCall(ctx context.Context, key string, every time.Duration, burst int) (time.Duration, error)
	// HoldSlackCalls keeps every call on key back for d: Slack said Retry-After.
	HoldSlackCalls(ctx context.Context, key string, d time.Duration) error
}

// Local is Shared within one process. Its buckets are the generic cell rate algorithm (GCRA)
// that the Redis store runs through go-redis/redis_rate, so one replica on the embedded store
// paces exactly as replicas on Redis do together.
type Local struct {
	mu    sync.Mutex
	now   func() time.Time
	tat   map[string]time.Time // theoretical arrival time of each bucket's next call
	holds map[string]time.Time
}

var _ Shared = (*Local)(nil)

// NewLocal returns an empty in-process Shared.
func NewLocal() *Local {
	return &Local{now: time.Now, tat: map[string]time.Time{}, holds: map[string]time.Time{}}
}

// TakeSlackCall implements Shared.
func (l *Local) TakeSlackCall(_ context.Context, key string, every time.Duration, burst int) (time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if until, ok := l.holds[key]; ok {
		if now.Before(until) {
			return until.Sub(now), nil
		}
		delete(l.holds, key)
	}
	tat := l.tat[key]
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(every)
	if allowAt := next.Add(-time.Duration(burst) * every); allowAt.After(now) {
		return allowAt.Sub(now), nil
	}
	l.tat[key] = next
	if len(l.tat) > 4096 {
		l.pruneLocked(now)
	}
	return 0, nil
}

// pruneLocked forgets buckets that are full again: a missing bucket is a full one.
func (l *Local) pruneLocked(now time.Time) {
	for k, t := range l.tat {
		if !t.After(now) {
			delete(l.tat, k)
		}
	}
}

// HoldSlackCalls implements Shared.
func (l *Local) HoldSlackCalls(_ context.Context, key string, d time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	until := l.now().Add(d)
	if until.After(l.holds[key]) {
		l.holds[key] = until
	}
	return nil
}
