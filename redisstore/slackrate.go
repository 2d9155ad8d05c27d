package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// The Slack rate-limit buckets of every replica live here (slackrate.Shared), so replicas
// together stay within Slack's per-app limits instead of each using all of them.

func (s *Store) slackBucketKey(k string) string { return s.prefix + "slackrate:" + k }
func (s *Store) slackHoldKey(k string) string   { return s.prefix + "slackhold:" + k }

// TakeSlackCall implements slackrate.Shared: a hold Slack asked for comes first (PTTL), then
// go-redis/redis_rate's GCRA script takes the token, with Redis's clock, so replicas whose
// clocks disagree still share one bucket.
func (s *Store) TakeSlackCall(ctx context.Context, key string, every time.Duration, burst int) (time.Duration, error) {
	held, err := s.rdb.PTTL(ctx, s.slackHoldKey(key)).Result()
	if err != nil {
		return 0, fmt.Errorf("redis slack hold %s: %w", key, err)
	}
	if held > 0 {
		return held, nil
	}
	res, err := redis_rate.NewLimiter(s.rdb).Allow(ctx, s.slackBucketKey(key),
		redis_rate.Limit{Rate: 1, Period: every, Burst: max(burst, 1)})
	if err != nil {
		return 0, fmt.Errorf("redis slack bucket %s: %w", key, err)
	}
	if res.Allowed > 0 {
		return 0, nil
	}
	return max(res.RetryAfter, time.Millisecond), nil
}

// HoldSlackCalls implements slackrate.Shared; a longer hold already set is kept.
func (s *Store) HoldSlackCalls(ctx context.Context, key string, d time.Duration) error {
	ms := max(d.Milliseconds(), 1)
	k := s.slackHoldKey(key)
	// SET ... GT would need Redis 7; a script keeps the longer of the two holds on any version.
	if err := holdScript.Run(ctx, s.rdb, []string{k}, ms).Err(); err != nil {
		return fmt.Errorf("redis slack hold %s: %w", key, err)
	}
	return nil
}

// holdScript sets KEYS[1] to expire in ARGV[1] ms unless it already lives longer.
var holdScript = redis.NewScript(`
local left = redis.call("PTTL", KEYS[1])
if left < tonumber(ARGV[1]) then
  redis.call("SET", KEYS[1], "1", "PX", ARGV[1])
end
return 1
`)
