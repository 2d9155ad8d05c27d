package approvals_test

import (
	"testing"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/approvals/storetest"
)

// BenchmarkMemoryStore is the in-process floor the Redis store is compared with in BENCHMARKS.md.
func BenchmarkMemoryStore(b *testing.B) {
	storetest.Bench(b, approvals.NewMemoryStore(nil))
}
