// Package redisstore keeps tapbot's requests and sealed passes in Redis, so several replicas
// share them and a restart loses nothing.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// Open connects to the Redis at url (redis:// or rediss://, go-redis URL options allowed) and
// checks that it answers.
func Open(ctx context.Context, url string) (*Store, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse REDIS_URL: %w", err)
	}
	s := New(redis.NewClient(opts), "tapbot:")
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// New wraps an existing client; prefix namespaces the keys (tests use one per test).
func New(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix}
}

func (s *Store) reqKey(id string) string  { return s.prefix + "req:" + id }
func (s *Store) passKey(id string) string { return s.prefix + "pass:" + id }

// Create implements approvals.Store.
func (s *Store) Create(ctx context.Context, r *approvals.Request) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	ok, err := s.rdb.SetNX(ctx, s.reqKey(r.ID), b, approvals.RecordRetention).Result()
	if err != nil {
		return fmt.Errorf("redis create request: %w", err)
	}
	if !ok {
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

// Ping implements approvals.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}

// Close implements approvals.Store.
func (s *Store) Close() error { return s.rdb.Close() }
