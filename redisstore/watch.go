package redisstore

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// watchKey is the set of requests whose pass tapbot watches (approvals.Store.AddWatch).
func (s *Store) watchKey() string { return s.prefix + "watch" }

// AddWatch implements approvals.Store.
func (s *Store) AddWatch(ctx context.Context, id string) error {
	if err := s.rdb.SAdd(ctx, s.watchKey(), id).Err(); err != nil {
		return fmt.Errorf("redis watch %s: %w", id, err)
	}
	return nil
}

// RemoveWatch implements approvals.Store.
func (s *Store) RemoveWatch(ctx context.Context, id string) error {
	if err := s.rdb.SRem(ctx, s.watchKey(), id).Err(); err != nil {
		return fmt.Errorf("redis unwatch %s: %w", id, err)
	}
	return nil
}

// Watched implements approvals.Store. IDs whose record has passed its retention are dropped from
// the index on the way, as OpenRequests does.
func (s *Store) Watched(ctx context.Context) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, s.watchKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("redis list watched requests: %w", err)
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
		return nil, fmt.Errorf("redis check watched requests: %w", err)
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
		if err := s.rdb.SRem(ctx, s.watchKey(), gone).Err(); err != nil {
			return nil, fmt.Errorf("redis prune watched requests: %w", err)
		}
	}
	return live, nil
}
