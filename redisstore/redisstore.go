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
	"strings"
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
	// replicas is how many replicas must acknowledge a reveal's claim before TakeSecret returns
	// the pass (WithReplicas); 0 waits for none.
	replicas int
}

// Option configures a Store.
type Option func(*Store)

// WithReplicas makes every reveal WAIT until n replicas acknowledged its claim before the pass
// is shown (TAP_REDIS_REPLICAS). It is configuration, not something read from the server: a
// replica that is down or still syncing does not show up in the master's INFO, and a count read
// from there would quietly turn the wait off exactly when a failover is likeliest.
func WithReplicas(n int) Option { return func(s *Store) { s.replicas = max(n, 0) } }

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
func Open(ctx context.Context, rawURL string, opts ...Option) (*Store, error) {
	rdb, err := NewClient(rawURL)
	if err != nil {
		return nil, err
	}
	// One hash tag puts every key in one cluster slot, so the multi-key scripts and transactions
	// also work on Redis Cluster; tapbot keeps little data.
	s := New(rdb, Prefix, opts...)
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

// Prefix is the one hash tag before every key Open's store writes: one cluster slot for all,
// so the multi-key scripts and transactions work on Redis Cluster. An ACL user for tapbot needs
// access to keys matching Prefix + "*".
const Prefix = "{tapbot}:"

// New wraps an existing client; prefix namespaces the keys (tests use one per test).
func New(rdb redis.UniversalClient, prefix string, opts ...Option) *Store {
	s := &Store{rdb: rdb, prefix: prefix}
	for _, o := range opts {
		o(s)
	}
	return s
}

func (s *Store) reqKey(id string) string  { return s.prefix + "req:" + id }
func (s *Store) passKey(id string) string { return s.prefix + "pass:" + id }

// passClaimKey is the hash a reveal moves a sealed pass to: its token and the sealed bytes.
func (s *Store) passClaimKey(id string) string { return s.prefix + "claim:" + id }
func (s *Store) openKey() string               { return s.prefix + "open" }
func (s *Store) claimKey(k string) string      { return s.prefix + "key:" + k }
func (s *Store) hitKey(k string) string        { return s.prefix + "hits:" + k }
func (s *Store) auditKey() string              { return s.prefix + "audit" }

// byRequesterKey is a sorted set of the requester's request IDs scored by creation time, for
// /tap status.
func (s *Store) byRequesterKey(requester string) string { return s.prefix + "byreq:" + requester }

// wroteKey is the marker a write script leaves for writeTTL under its call's unique write ID, so
// that the same call sent again after its reply was lost knows its write stood even when another
// client has written the key since: comparing the key's value alone would call that a conflict
// (a person locked out by their own request's lock, a click dropped as a duplicate of itself, a
// state change reported as lost).
func (s *Store) wroteKey(writeID string) string { return s.prefix + "wrote:" + writeID }

// writeTTL is how long a write's marker lives: go-redis sends its retries within seconds.
const writeTTL = time.Minute

// hitScript counts in a fixed window: the first hit starts the window's expiry.
var hitScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}`)

// keepLua extends KEYS[1]'s expiry to the unix time in milliseconds in ARGV[n] when that is
// later, never shortening it; "0" leaves it alone. It reads the clock from Redis, whose clock
// runs the TTLs.
const keepLua = `
local function keep(key, at)
  if at == '0' then return end
  local pttl = redis.call('PTTL', key)
  if pttl < 0 then return end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if now + pttl < tonumber(at) then redis.call('PEXPIREAT', key, at) end
end
`

// createScript stores a new request and indexes it as open and under its requester in one step,
// so no crash can leave a request the sweeper or /tap status cannot see. The requester's index
// is scored by creation time but never goes backwards, so it lists requests in the order they
// were stored even when two share a timestamp or replicas' clocks differ; it keeps the newest
// ARGV[6] IDs and lives as long as the newest record. A record that is already exactly ARGV[1]
// (whose revision is unique to this call), or the call's marker KEYS[4], is this call's own
// write, sent again after its reply was lost: it reports success, the indexes done by the first
// run. The marker lives ARGV[7] ms.
var createScript = redis.NewScript(keepLua + `
if redis.call('EXISTS', KEYS[4]) == 1 then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('SET', KEYS[4], '1', 'PX', ARGV[7])
  keep(KEYS[1], ARGV[4])
  redis.call('SADD', KEYS[2], ARGV[3])
  local score = tonumber(ARGV[5])
  local top = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
  if top[2] and tonumber(top[2]) >= score then score = tonumber(top[2]) + 1 end
  redis.call('ZADD', KEYS[3], score, ARGV[3])
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[6]) + 1))
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
  return 1
end
return 0`)

// record is a request as stored: its JSON plus a revision that is new with every write, so that
// a script sent again after its reply was lost can tell its own write (the very bytes it meant
// to write) from anyone else's. Readers decode it into approvals.Request, which ignores "_rev".
type record struct {
	*approvals.Request
	Rev string `json:"_rev"`
}

// encode returns r as a record with a fresh revision.
func encode(r *approvals.Request) ([]byte, error) {
	b, err := json.Marshal(record{Request: r, Rev: approvals.NewID()})
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return b, nil
}

// Create implements approvals.Store.
func (s *Store) Create(ctx context.Context, r *approvals.Request) error {
	b, err := encode(r)
	if err != nil {
		return err
	}
	created, err := createScript.Run(ctx, s.rdb, []string{s.reqKey(r.ID), s.openKey(), s.byRequesterKey(r.Requester), s.wroteKey(approvals.NewID())},
		b, approvals.RecordRetention.Milliseconds(), r.ID, keepUntil(r), r.CreatedAt.UnixMicro(), approvals.RecentKept, writeTTL.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("redis create request: %w", err)
	}
	if created == 0 {
		return approvals.ErrConflict
	}
	return nil
}

// keepUntil is r.KeepUntil as the script argument keepLua reads.
func keepUntil(r *approvals.Request) string {
	t := r.KeepUntil()
	if t.IsZero() || t.UnixMilli() <= 0 {
		return "0"
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

// recordExpiryScript returns the record's expiry as unix milliseconds by Redis's clock, -2 when
// there is no record.
var recordExpiryScript = redis.NewScript(`
local pttl = redis.call('PTTL', KEYS[1])
if pttl < 0 then return pttl end
local t = redis.call('TIME')
return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + pttl`)

// RecordExpiry reports when the request's record will be dropped, for the store contract.
func (s *Store) RecordExpiry(ctx context.Context, id string) (time.Time, error) {
	ms, err := recordExpiryScript.Run(ctx, s.rdb, []string{s.reqKey(id)}).Int64()
	if err != nil {
		return time.Time{}, fmt.Errorf("redis record expiry: %w", err)
	}
	switch ms {
	case -2:
		return time.Time{}, approvals.ErrNotFound
	case -1:
		return time.Time{}, nil // kept forever
	}
	return time.UnixMilli(ms), nil
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

// updateScript writes a request only if its record still holds exactly what the caller read
// (ARGV[1]), extends its expiry when its pass's end moved (ARGV[5], "0" when it did not), and
// moves it in or out of the open index when it became final or open again (ARGV[4]: "rem",
// "add", or "" when it stays where it is), all in one step. Every command counts (issue 6's
// Redis budget per request), so nothing runs that the caller knows to be a no-op.
// It returns 1 when written, 0 when someone wrote in between, -1 when the record is gone.
//
// A record that already holds ARGV[2] was written by this very call: its revision is new with
// each write, so nobody else writes the same bytes. That is the script sent again after its
// reply was lost, and it reports 1, as the first run did, instead of a conflict with itself; so
// does the call's marker KEYS[3] (ARGV[6] ms), which still says so once another write followed.
var updateScript = redis.NewScript(keepLua + `
if redis.call('EXISTS', KEYS[3]) == 1 then return 1 end
local cur = redis.call('GET', KEYS[1])
if not cur then return -1 end
if cur == ARGV[2] then return 1 end
if cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
redis.call('SET', KEYS[3], '1', 'PX', ARGV[6])
keep(KEYS[1], ARGV[5])
if ARGV[4] == 'rem' then
  redis.call('SREM', KEYS[2], ARGV[3])
elseif ARGV[4] == 'add' then
  redis.call('SADD', KEYS[2], ARGV[3])
end
return 1`)

// Update implements approvals.Store as an optimistic compare-and-set: GET, change in Go, then
// one script that writes only if the stored value is still the one read, retrying change on
// the fresh value otherwise. Two round trips per update where WATCH/MULTI/EXEC took three, and
// no connection is pinned for a transaction.
func (s *Store) Update(ctx context.Context, id string, change func(*approvals.Request) error) (*approvals.Request, error) {
	key := s.reqKey(id)
	for range maxUpdateAttempts {
		b, err := s.rdb.Get(ctx, key).Bytes()
		if errors.Is(err, redis.Nil) {
			return nil, approvals.ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("redis get request: %w", err)
		}
		r, err := decode(b)
		if err != nil {
			return nil, err
		}
		wasFinal, keptUntil := r.State.Final(), r.KeepUntil()
		if err := change(r); err != nil {
			return nil, err
		}
		nb, err := encode(r)
		if err != nil {
			return nil, err
		}
		index := ""
		switch final := r.State.Final(); {
		case final && !wasFinal:
			index = "rem"
		case !final && wasFinal:
			index = "add"
		}
		keep := "0"
		if !r.KeepUntil().Equal(keptUntil) {
			keep = keepUntil(r)
		}
		res, err := updateScript.Run(ctx, s.rdb, []string{key, s.openKey(), s.wroteKey(approvals.NewID())}, b, nb, id, index, keep,
			writeTTL.Milliseconds()).Int()
		if err != nil {
			return nil, fmt.Errorf("redis update request: %w", err)
		}
		switch res {
		case 1:
			return r, nil
		case -1:
			return nil, approvals.ErrNotFound
		}
		// Someone wrote in between: run change again on what they wrote.
	}
	return nil, fmt.Errorf("redis update %s: gave up after %d concurrent writes: %w", id, maxUpdateAttempts, approvals.ErrConflict)
}

// RecentByRequester implements approvals.Store: the newest IDs from the requester's index, then
// their records in one MGET; records past their retention are skipped.
func (s *Store) RecentByRequester(ctx context.Context, requester string, limit int) ([]*approvals.Request, error) {
	if limit <= 0 {
		return nil, nil
	}
	ids, err := s.rdb.ZRevRange(ctx, s.byRequesterKey(requester), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("redis list requests of %s: %w", requester, err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.reqKey(id)
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("redis read requests of %s: %w", requester, err)
	}
	out := make([]*approvals.Request, 0, len(vals))
	for _, v := range vals {
		raw, ok := v.(string)
		if !ok {
			continue // the record is past its retention
		}
		r, err := decode([]byte(raw))
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// PutSecret implements approvals.Store.
func (s *Store) PutSecret(ctx context.Context, id string, sealed []byte, ttl time.Duration) error {
	if err := s.rdb.Set(ctx, s.passKey(id), sealed, ttl).Err(); err != nil {
		return fmt.Errorf("redis put sealed pass: %w", err)
	}
	return nil
}

// revealsLua defines reveals(key, owner, token): whether the request record under key is
// Revealing, owned by owner under the reveal token token. takeScript and returnScript check it
// in the same step as they move the pass, so a slow owner that a sweeper took over can neither
// take the pass nor put it back.
const revealsLua = `
local function reveals(key, owner, token)
  local raw = redis.call('GET', key)
  if not raw then return false end
  local r = cjson.decode(raw)
  return r.state == 'revealing' and r.owner == owner and r.reveal_token == token
end
`

// takeScript moves the sealed pass KEYS[1] to the claim KEYS[2] (a hash of the reveal's token
// ARGV[1] and the sealed bytes) that lives ARGV[2] ms, or as long as the pass had left if that
// is less, in one step, if the request KEYS[3] is Revealing under owner ARGV[3] and token
// ARGV[1]. A claim that already holds ARGV[1] is this reveal's own take, sent again after its
// reply was lost (GETDEL would find nothing and lose the pass): it answers with the same bytes.
// It returns {1, sealed, hold ms}, {0} when there is nothing, {2} when another token's claim
// holds it, {3} when the request no longer names this reveal.
var takeScript = redis.NewScript(revealsLua + `
if not reveals(KEYS[3], ARGV[3], ARGV[1]) then return {3} end
local token = redis.call('HGET', KEYS[2], 'token')
if token == ARGV[1] then
  return {1, redis.call('HGET', KEYS[2], 'sealed'), redis.call('PTTL', KEYS[2])}
end
local sealed = redis.call('GET', KEYS[1])
if not sealed then
  if token then return {2} end
  return {0}
end
local hold = tonumber(ARGV[2])
local left = redis.call('PTTL', KEYS[1])
if left > 0 and left < hold then hold = left end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[2], 'token', ARGV[1], 'sealed', sealed)
redis.call('PEXPIRE', KEYS[2], hold)
return {1, sealed, hold}`)

// replicaAckTimeout bounds how long a reveal waits for the replicas to acknowledge its claim.
const replicaAckTimeout = time.Second

// TakeSecret implements approvals.Store with takeScript. With WithReplicas(n) it then WAITs for
// n replicas to acknowledge the claim: with asynchronous replication a failover can promote a
// replica that never saw the claim, and that replica would show the pass again. When fewer
// acknowledge in time it returns the sealed pass with approvals.ErrNotReplicated, for the caller
// to put back unseen.
func (s *Store) TakeSecret(ctx context.Context, id, owner, token string, hold time.Duration) ([]byte, error) {
	claim := s.passClaimKey(id)
	res, err := takeScript.Run(ctx, s.rdb, []string{s.passKey(id), claim, s.reqKey(id)}, token, max(hold.Milliseconds(), 1), owner).Slice()
	if err != nil {
		return nil, fmt.Errorf("redis take sealed pass: %w", err)
	}
	switch code, _ := res[0].(int64); {
	case code == 0:
		return nil, approvals.ErrNotFound
	case code == 2:
		return nil, approvals.ErrClaimedElsewhere
	case code == 3:
		return nil, approvals.ErrStaleReveal
	case code != 1 || len(res) != 3:
		return nil, fmt.Errorf("redis take sealed pass: unexpected reply %v", res)
	}
	sealed, _ := res[1].(string)
	held, _ := res[2].(int64)
	if s.replicas == 0 {
		return []byte(sealed), nil
	}
	if err := s.waitForReplica(ctx, claim, time.Duration(held)*time.Millisecond); err != nil {
		return []byte(sealed), fmt.Errorf("redis take sealed pass: %w: %w", approvals.ErrNotReplicated, err)
	}
	return []byte(sealed), nil
}

// waitForReplica WAITs until s.replicas replicas have everything written before the claim's
// key was written again just now. WAIT counts what its own connection wrote, and go-redis may
// have sent the take (or its retry) on another one, so the pipeline rewrites the claim's expiry
// first, on the connection WAIT then uses. On a cluster both go to the node that holds the claim.
func (s *Store) waitForReplica(ctx context.Context, claim string, held time.Duration) error {
	var node redis.Cmdable = s.rdb
	if c, ok := s.rdb.(*redis.ClusterClient); ok {
		n, err := c.MasterForKey(ctx, claim)
		if err != nil {
			return err
		}
		node = n
	}
	timeout := s.ackTimeout()
	wait := redis.NewIntCmd(ctx, "wait", s.replicas, timeout.Milliseconds())
	if _, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.PExpire(ctx, claim, max(held, time.Millisecond))
		return p.Process(ctx, wait)
	}); err != nil {
		return err
	}
	if got := wait.Val(); got < int64(s.replicas) {
		return fmt.Errorf("%d of the %d replicas TAP_REDIS_REPLICAS asks for acknowledged within %v", got, s.replicas, timeout)
	}
	return nil
}

// ackTimeout is replicaAckTimeout, shortened to stay within the client's read timeout: a
// pipeline's replies are read with it, WAIT's included.
func (s *Store) ackTimeout() time.Duration {
	var read time.Duration
	switch c := s.rdb.(type) {
	case *redis.Client:
		read = c.Options().ReadTimeout
	case *redis.ClusterClient:
		read = c.Options().ReadTimeout
	}
	if read > 0 && read/2 < replicaAckTimeout {
		return max(read/2, time.Millisecond)
	}
	return replicaAckTimeout
}

// returnScript puts the sealed pass ARGV[2] back under KEYS[1] for ARGV[3] ms, if the request
// KEYS[3] is still Revealing under owner ARGV[4] and token ARGV[1], and drops the claim KEYS[2]
// if it is the token's either way; running it twice leaves the same. It returns 0 when the
// request no longer names this reveal: the copy is dropped, not put back.
var returnScript = redis.NewScript(revealsLua + `
local fenced = reveals(KEYS[3], ARGV[4], ARGV[1])
if fenced then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
if redis.call('HGET', KEYS[2], 'token') == ARGV[1] then redis.call('DEL', KEYS[2]) end
if fenced then return 1 end
return 0`)

// ReturnSecret implements approvals.Store.
func (s *Store) ReturnSecret(ctx context.Context, id, owner, token string, sealed []byte, ttl time.Duration) error {
	n, err := returnScript.Run(ctx, s.rdb, []string{s.passKey(id), s.passClaimKey(id), s.reqKey(id)}, token, sealed,
		max(ttl.Milliseconds(), 1), owner).Int()
	if err != nil {
		return fmt.Errorf("redis return sealed pass: %w", err)
	}
	if n == 0 {
		return approvals.ErrStaleReveal
	}
	return nil
}

// HasSecret implements approvals.Store.
func (s *Store) HasSecret(ctx context.Context, id string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.passKey(id)).Result()
	if err != nil {
		return false, fmt.Errorf("redis check sealed pass: %w", err)
	}
	return n == 1, nil
}

// HasSealedCopy implements approvals.Store: the pass or a claim on it, in one EXISTS.
func (s *Store) HasSealedCopy(ctx context.Context, id string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.passKey(id), s.passClaimKey(id)).Result()
	if err != nil {
		return false, fmt.Errorf("redis check sealed copies: %w", err)
	}
	return n > 0, nil
}

// DeleteSecret implements approvals.Store.
func (s *Store) DeleteSecret(ctx context.Context, id string) error {
	if err := s.rdb.Del(ctx, s.passKey(id), s.passClaimKey(id)).Err(); err != nil {
		return fmt.Errorf("redis delete sealed pass: %w", err)
	}
	return nil
}

// OpenRequests implements approvals.Store. IDs whose record has passed its retention are dropped
// from the index on the way.
func (s *Store) OpenRequests(ctx context.Context) ([]string, error) {
	return s.liveMembers(ctx, s.openKey(), "open")
}

// liveMembers lists the request IDs in an index set whose records still exist, and drops the
// others from the set: a record expires on its own, its index entry does not.
func (s *Store) liveMembers(ctx context.Context, set, what string) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, set).Result()
	if err != nil {
		return nil, fmt.Errorf("redis list %s requests: %w", what, err)
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
		return nil, fmt.Errorf("redis check %s requests: %w", what, err)
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
		if err := s.rdb.SRem(ctx, set, gone).Err(); err != nil {
			return nil, fmt.Errorf("redis prune %s requests: %w", what, err)
		}
	}
	return live, nil
}

// claimScript is SET NX of a value unique to the call (ARGV[1]) that also recognises that value:
// a SET NX sent again after its reply was lost finds its own write and would otherwise report
// that someone else was first, dropping a click as a duplicate of itself. Unlike the other
// writes it leaves no marker: a claimed key that changed since the first run (released and
// claimed again, or expired and claimed again) is someone else's now, and a retry that said it
// had won would let two holders into a lock.
var claimScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0`)

// Claim implements approvals.Store with claimScript.
func (s *Store) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	id := approvals.NewID()
	n, err := claimScript.Run(ctx, s.rdb, []string{s.claimKey(key)}, id, max(ttl.Milliseconds(), 1)).Int()
	if err != nil {
		return false, fmt.Errorf("redis claim %s: %w", key, err)
	}
	return n == 1, nil
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

// casScript sets or removes KEYS[1] only if it holds ARGV[1] (an empty string for a missing key),
// or already holds ARGV[2]: that is its own write, by a call sent again after its reply was lost
// (approvals.Store.CompareAndSwap says why ARGV[2] must name one writer). The call's marker
// KEYS[2] (ARGV[4] ms) says so too once another write has changed the key since.
var casScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] and cur ~= ARGV[2] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
return 1`)

// CompareAndSwap implements approvals.Store in one script, so no other client writes between
// the comparison and the swap.
func (s *Store) CompareAndSwap(ctx context.Context, key, old, next string, ttl time.Duration) (bool, error) {
	ms := ttl.Milliseconds()
	if next != "" && ms <= 0 {
		return false, fmt.Errorf("redis swap %s: ttl %v is under a millisecond", key, ttl)
	}
	n, err := casScript.Run(ctx, s.rdb, []string{s.claimKey(key), s.wroteKey(approvals.NewID())}, old, next, ms,
		writeTTL.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("redis swap %s: %w", key, err)
	}
	return n == 1, nil
}

// Value implements approvals.Store.
func (s *Store) Value(ctx context.Context, key string) (string, error) {
	v, err := s.rdb.Get(ctx, s.claimKey(key)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("redis read %s: %w", key, err)
	}
	return v, nil
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

// auditPage is how many events ReadAudit asks Redis for at a time: a trail of months is read in
// bounded replies rather than one that holds up the server and the client's memory at once.
var auditPage int64 = 1000

// ReadAudit implements approvals.Store, reading the stream in pages of auditPage.
func (s *Store) ReadAudit(ctx context.Context, since time.Time) ([]approvals.Event, error) {
	from := "-"
	if ms := since.UnixMilli(); ms > 0 {
		from = strconv.FormatInt(ms, 10)
	}
	var out []approvals.Event
	for {
		msgs, err := s.rdb.XRangeN(ctx, s.auditKey(), from, "+", auditPage).Result()
		if err != nil {
			return nil, fmt.Errorf("redis read audit trail: %w", err)
		}
		for _, m := range msgs {
			raw, _ := m.Values["event"].(string)
			var e approvals.Event
			if err := json.Unmarshal([]byte(raw), &e); err != nil {
				return nil, fmt.Errorf("decode audit event %s: %w", m.ID, err)
			}
			out = append(out, e)
		}
		if int64(len(msgs)) < auditPage {
			return out, nil
		}
		from = "(" + msgs[len(msgs)-1].ID // the next page starts after the last event read
	}
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
// prints as plain lines on stderr, to l as structured warnings, each starting "redis: " once.
// go-redis has one logger per process, so the last call wins.
func LogTo(l *slog.Logger) { redis.SetLogger(slogLogger{l}) }

type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Printf(ctx context.Context, format string, v ...any) {
	// Some go-redis messages already start with "redis: " (its pool's dial failures), others
	// do not ("specified duration is ...", "sentinel: ...").
	msg := strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")
	s.l.WarnContext(ctx, "redis: "+msg)
}

func (s *Store) memoKey(k string) string { return s.prefix + "memo:" + k }

// Recall returns what Remember kept under key, "" when nothing or expired.
func (s *Store) Recall(ctx context.Context, key string) (string, error) {
	v, err := s.rdb.Get(ctx, s.memoKey(key)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("redis recall %s: %w", key, err)
	}
	return v, nil
}

// Remember keeps value under key for ttl; value "" forgets key.
func (s *Store) Remember(ctx context.Context, key, value string, ttl time.Duration) error {
	var err error
	if value == "" {
		err = s.rdb.Del(ctx, s.memoKey(key)).Err()
	} else {
		err = s.rdb.Set(ctx, s.memoKey(key), value, ttl).Err()
	}
	if err != nil {
		return fmt.Errorf("redis remember %s: %w", key, err)
	}
	return nil
}

// RoundTrip takes and puts back a throwaway sealed pass through the store's own scripts, as a
// reveal does (a request record Revealing under a reveal token, the take, the WAIT of
// WithReplicas, the return), and removes what it wrote: tapbot doctor's proof that REDIS_URL's
// user may run them. It returns approvals.ErrNotReplicated, wrapped, when the replicas did not
// acknowledge the claim, after putting the pass back.
func (s *Store) RoundTrip(ctx context.Context, ttl time.Duration) (err error) {
	id := approvals.NewID()
	owner, token := "doctor", approvals.NewID()
	sealed := []byte(approvals.NewID())
	record, err := json.Marshal(&approvals.Request{ID: id, State: approvals.Revealing, Owner: owner, RevealToken: token})
	if err != nil {
		return err
	}
	defer func() {
		if derr := s.rdb.Del(context.WithoutCancel(ctx), s.reqKey(id), s.passKey(id), s.passClaimKey(id)).Err(); err == nil && derr != nil {
			err = fmt.Errorf("redis delete the round trip's keys: %w", derr)
		}
	}()
	if err := s.rdb.Set(ctx, s.reqKey(id), record, ttl).Err(); err != nil {
		return fmt.Errorf("redis write a request record: %w", err)
	}
	if err := s.PutSecret(ctx, id, sealed, ttl); err != nil {
		return err
	}
	got, err := s.TakeSecret(ctx, id, owner, token, ttl)
	if err != nil && !errors.Is(err, approvals.ErrNotReplicated) {
		return err
	}
	if string(got) != string(sealed) {
		return fmt.Errorf("redis take sealed pass: it came back different")
	}
	if rerr := s.ReturnSecret(ctx, id, owner, token, sealed, ttl); rerr != nil {
		return rerr
	}
	return err
}
