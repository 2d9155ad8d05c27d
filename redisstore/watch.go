package redisstore

import (
	"context"
	"fmt"
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
	return s.liveMembers(ctx, s.watchKey(), "watched")
}
