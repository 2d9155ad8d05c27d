// Package redisstore keeps tapbot's requests and sealed passes in Redis, so several replicas
// share them and a restart loses nothing.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tapbot/tapbot/approvals"
)

// maxUpdateAttempts bounds optimistic-lock retries; contention on one request is a handful of
// clicks, so running out means something is wrong.
const maxUpdateAttempts = 100

// Store is an approvals.Store on Redis. Request records are JSON under tapbot:req:<id>; sealed
// passes are under tapbot:pass:<id> with a TTL no longer than the pass's lifetime.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ approvals.Store = (*Store)(nil)

// Timeouts applied when REDIS_URL does not set its own, so an unreachable Redis makes requests
// fail fast with "temporarily unavailable" instead of hanging a click.
const (
	defaultDialTimeout = 2 * time.Second
	defaultIOTimeout   = 2 * time.Second
)

// Open connects to the Redis at rawURL and checks that it answers. go-redis URL options are
// allowed; a master_name option selects Redis Sentinel, and cluster=true Redis Cluster (more
// nodes with addr=host:port options).
func Open(ctx context.Context, rawURL string) (*Store, error) {
	rdb, err := NewClient(rawURL)
	if err != nil {
		return nil, err
	}
	// One hash tag puts every key in one cluster slot, so the multi-key scripts and transactions
	// also work on Redis Cluster; tapbot keeps little data.
	s := New(rdb, "{tapbot}:")
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// NewClient builds a go-redis client for a single server, a Sentinel-managed master or a
// cluster, as the URL says.
func NewClient(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse REDIS_URL: %w", err)
	}
	q := u.Query()
	hasTimeouts := q.Has("dial_timeout") || q.Has("read_timeout") || q.Has("write_timeout")
	switch {
	case q.Get("cluster") == "true":
		q.Del("cluster")
		u.RawQuery = q.Encode()
		opts, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("parse REDIS_URL (cluster): %w", err)
		}
		if !hasTimeouts {
			opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = defaultDialTimeout, defaultIOTimeout, defaultIOTimeout
		}
		return redis.NewClusterClient(opts), nil
	case q.Has("master_name"):
		opts, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("parse REDIS_URL (sentinel): %w", err)
		}
		if !hasTimeouts {
			opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = defaultDialTimeout, defaultIOTimeout, defaultIOTimeout
		}
		return redis.NewFailoverClient(opts), nil
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse REDIS_URL: %w", err)
	}
	if !hasTimeouts {
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = defaultDialTimeout, defaultIOTimeout, defaultIOTimeout
	}
	return redis.NewClient(opts), nil
}

// New wraps an existing client; prefix namespaces the keys (tests use one per test).
func New(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix}
}

func (s *Store) reqKey(id string) string  { return s.prefix + "req:" + id }
func (s *Store) passKey(id string) string { return s.prefix + "pass:" + id }
func (s *Store) openKey() string          { return s.prefix + "open" }
func (s *Store) claimKey(k string) string { return s.prefix + "key:" + k }
func (s *Store) hitKey(k string) string   { return s.prefix + "hits:" + k }
func (s *Store) auditKey() string         { return s.prefix + "audit" }

// hitScript counts in a fixed window: the first hit starts the window's expiry.
var hitScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}`)

// createScript stores a new request and indexes it as open in one step, so no crash can leave a
// request the sweeper cannot see.
var createScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('SADD', KEYS[2], ARGV[3])
  return 1
end
return 0`)

// Create implements approvals.Store.
func (s *Store) Create(ctx context.Context, r *approvals.Request) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	created, err := createScript.Run(ctx, s.rdb, []string{s.reqKey(r.ID), s.openKey()},
		b, approvals.RecordRetention.Milliseconds(), r.ID).Int()
	if err != nil {
		return fmt.Errorf("redis create request: %w", err)
	}
	if created == 0 {
		return approvals.ErrConflict
	}
	return nil
}

// Get implements approvals.Store.
func (s *Store) Get(ctx context.Context, id string) (*approvals.Request, error) {
	b, err := s.rdb.Get(ctx, s.reqKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, approvals.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("redis get request: %w", err)
	}
	return decode(b)
}

func decode(b []byte) (*approvals.Request, error) {
	var r approvals.Request
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode request: %w", err)
	}
	return &r, nil
}

// Update implements approvals.Store with WATCH/MULTI/EXEC: the write goes through only if the key
// did not change since it was read, otherwise change runs again on the fresh value.
func (s *Store) Update(ctx context.Context, id string, change func(*approvals.Request) error) (*approvals.Request, error) {
	key := s.reqKey(id)
	var out *approvals.Request
	txn := func(tx *redis.Tx) error {
		b, err := tx.Get(ctx, key).Bytes()
		if errors.Is(err, redis.Nil) {
			return approvals.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("redis get request: %w", err)
		}
		r, err := decode(b)
		if err != nil {
			return err
		}
		if err := change(r); err != nil {
			return err
		}
		nb, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.SetArgs(ctx, key, nb, redis.SetArgs{KeepTTL: true})
			if r.State.Final() {
				p.SRem(ctx, s.openKey(), id)
			} else {
				p.SAdd(ctx, s.openKey(), id)
			}
			return nil
		})
		if err == nil {
			out = r
		}
		return err
	}
	for range maxUpdateAttempts {
		err := s.rdb.Watch(ctx, txn, key)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, fmt.Errorf("redis update %s: gave up after %d concurrent writes: %w", id, maxUpdateAttempts, approvals.ErrConflict)
}

// PutSecret implements approvals.Store.
func (s *Store) PutSecret(ctx context.Context, id string, sealed []byte, ttl time.Duration) error {
	if err := s.rdb.Set(ctx, s.passKey(id), sealed, ttl).Err(); err != nil {
		return fmt.Errorf("redis put sealed pass: %w", err)
	}
	return nil
}

// TakeSecret implements approvals.Store with GETDEL, one atomic command: no get-then-delete race.
func (s *Store) TakeSecret(ctx context.Context, id string) ([]byte, error) {
	b, err := s.rdb.GetDel(ctx, s.passKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, approvals.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("redis take sealed pass: %w", err)
	}
	return b, nil
}

// HasSecret implements approvals.Store.
func (s *Store) HasSecret(ctx context.Context, id string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.passKey(id)).Result()
	if err != nil {
		return false, fmt.Errorf("redis check sealed pass: %w", err)
	}
	return n == 1, nil
}

// DeleteSecret implements approvals.Store.
func (s *Store) DeleteSecret(ctx context.Context, id string) error {
	if err := s.rdb.Del(ctx, s.passKey(id)).Err(); err != nil {
		return fmt.Errorf("redis delete sealed pass: %w", err)
	}
	return nil
}

// OpenRequests implements approvals.Store. IDs whose record has passed its retention are dropped
// from the index on the way.
func (s *Store) OpenRequests(ctx context.Context) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, s.openKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("redis list open requests: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	exists := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		exists[i] = pipe.Exists(ctx, s.reqKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("redis check open requests: %w", err)
	}
	var live, gone []string
	for i, id := range ids {
		if exists[i].Val() == 1 {
			live = append(live, id)
		} else {
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 {
		if err := s.rdb.SRem(ctx, s.openKey(), gone).Err(); err != nil {
			return nil, fmt.Errorf("redis prune open requests: %w", err)
		}
	}
	return live, nil
}

// Claim implements approvals.Store with SET NX.
func (s *Store) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, s.claimKey(key), 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redis claim %s: %w", key, err)
	}
	return ok, nil
}

// Touch implements approvals.Store.
func (s *Store) Touch(ctx context.Context, key string, ttl time.Duration) error {
	if err := s.rdb.Set(ctx, s.claimKey(key), 1, ttl).Err(); err != nil {
		return fmt.Errorf("redis touch %s: %w", key, err)
	}
	return nil
}

// Alive implements approvals.Store.
func (s *Store) Alive(ctx context.Context, key string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.claimKey(key)).Result()
	if err != nil {
		return false, fmt.Errorf("redis check %s: %w", key, err)
	}
	return n == 1, nil
}

// Release implements approvals.Store.
func (s *Store) Release(ctx context.Context, key string) error {
	if err := s.rdb.Del(ctx, s.claimKey(key)).Err(); err != nil {
		return fmt.Errorf("redis release %s: %w", key, err)
	}
	return nil
}

// casScript sets or removes KEYS[1] only if it holds ARGV[1] (an empty string for a missing key).
var casScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1`)

// CompareAndSwap implements approvals.Store in one script, so no other client writes between
// the comparison and the swap.
func (s *Store) CompareAndSwap(ctx context.Context, key, old, next string, ttl time.Duration) (bool, error) {
	ms := ttl.Milliseconds()
	if next != "" && ms <= 0 {
		return false, fmt.Errorf("redis swap %s: ttl %v is under a millisecond", key, ttl)
	}
	n, err := casScript.Run(ctx, s.rdb, []string{s.claimKey(key)}, old, next, ms).Int()
	if err != nil {
		return false, fmt.Errorf("redis swap %s: %w", key, err)
	}
	return n == 1, nil
}

// Hit implements approvals.Store with INCR and PEXPIRE in one script.
func (s *Store) Hit(ctx context.Context, key string, window time.Duration) (int, time.Time, error) {
	res, err := hitScript.Run(ctx, s.rdb, []string{s.hitKey(key)}, window.Milliseconds()).Int64Slice()
	if err != nil || len(res) != 2 {
		return 0, time.Time{}, fmt.Errorf("redis count %s: %w", key, err)
	}
	return int(res[0]), time.Now().Add(time.Duration(res[1]) * time.Millisecond), nil
}

// AppendAudit implements approvals.Store as a Redis stream trimmed by age (MINID), so the trail
// keeps TAP_AUDIT_RETENTION of history and no more.
func (s *Store) AppendAudit(ctx context.Context, e approvals.Event, retention time.Duration) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode audit event: %w", err)
	}
	minID := strconv.FormatInt(time.Now().Add(-retention).UnixMilli(), 10)
	// Exact trimming: with ~ Redis trims only whole nodes, so a small trail would never age out.
	if err := s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.auditKey(), MinID: minID,
		Values: []any{"event", b}}).Err(); err != nil {
		return fmt.Errorf("redis append audit event: %w", err)
	}
	return nil
}

// ReadAudit implements approvals.Store.
func (s *Store) ReadAudit(ctx context.Context, since time.Time) ([]approvals.Event, error) {
	from := "-"
	if ms := since.UnixMilli(); ms > 0 {
		from = strconv.FormatInt(ms, 10)
	}
	msgs, err := s.rdb.XRange(ctx, s.auditKey(), from, "+").Result()
	if err != nil {
		return nil, fmt.Errorf("redis read audit trail: %w", err)
	}
	out := make([]approvals.Event, 0, len(msgs))
	for _, m := range msgs {
		raw, _ := m.Values["event"].(string)
		var e approvals.Event
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return nil, fmt.Errorf("decode audit event %s: %w", m.ID, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Ping implements approvals.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}

// Close implements approvals.Store.
func (s *Store) Close() error { return s.rdb.Close() }

// LogTo sends go-redis's own messages (reconnects, pool dial failures), which it otherwise
// prints as plain lines on stderr, to l as structured warnings. go-redis has one logger per
// process, so the last call wins.
func LogTo(l *slog.Logger) { redis.SetLogger(slogLogger{l}) }

type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Printf(ctx context.Context, format string, v ...any) {
	s.l.WarnContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
