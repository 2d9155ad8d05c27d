package redisstore_test

import (
	"testing"

	"github.com/tapbot/tapbot/approvals/storetest"
	"github.com/tapbot/tapbot/internal/redistest"
	"github.com/tapbot/tapbot/redisstore"
)

// BenchmarkRedisStore runs the store benchmarks against a real redis-server on a unix socket:
// each operation is one or more round trips, so these figures are mostly Redis latency times the
// number of round trips an operation makes.
func BenchmarkRedisStore(b *testing.B) {
	srv := redistest.Start(b)
	rdb, err := redisstore.NewClient(srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	s := redisstore.New(rdb, "{bench}:")
	b.Cleanup(func() { _ = s.Close() })
	storetest.Bench(b, s)
}
