package approvals_test

import (
	"sync"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/approvals/storetest"
)

func TestMemoryStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (approvals.Store, func(time.Duration)) {
		var mu sync.Mutex
		now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		s := approvals.NewMemoryStore(clock)
		t.Cleanup(func() { _ = s.Close() })
		return s, func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	})
}
