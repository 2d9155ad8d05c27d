// Package storetest is the contract every approvals.Store must meet. The embedded store and the
// Redis store both run it, so a deployment behaves the same whichever it uses.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

// Factory returns a fresh, empty store and a function that lets time pass for it (a fake clock
// for the embedded store, a real wait for Redis, whose TTLs run on its own clock).
type Factory func(t *testing.T) (store approvals.Store, elapse func(time.Duration))

// Run runs the contract against stores from newStore.
func Run(t *testing.T, newStore Factory) {
	t.Run("CreateGetRoundTrip", func(t *testing.T) { testRoundTrip(t, newStore) })
	t.Run("CreateTwiceConflicts", func(t *testing.T) { testCreateTwice(t, newStore) })
	t.Run("GetMissing", func(t *testing.T) { testGetMissing(t, newStore) })
	t.Run("UpdateAbortsOnError", func(t *testing.T) { testUpdateAbort(t, newStore) })
	t.Run("ConcurrentUpdatesLoseNothing", func(t *testing.T) { testNoLostUpdates(t, newStore) })
	t.Run("ConcurrentTransitionOneWinner", func(t *testing.T) { testOneTransitionWinner(t, newStore) })
	t.Run("SecretTakenOnce", func(t *testing.T) { testSecretOnce(t, newStore) })
	t.Run("ConcurrentTakesOneWinner", func(t *testing.T) { testConcurrentTakes(t, newStore) })
	t.Run("SecretExpires", func(t *testing.T) { testSecretExpires(t, newStore) })
	t.Run("SecretClaims", func(t *testing.T) { testSecretClaims(t, newStore) })
	t.Run("SecretPeekAndDelete", func(t *testing.T) { testSecretPeekDelete(t, newStore) })
	t.Run("RevealFence", func(t *testing.T) { testRevealFence(t, newStore) })
	t.Run("SealedCopy", func(t *testing.T) { testSealedCopy(t, newStore) })
	t.Run("OpenRequestsIndex", func(t *testing.T) { testOpenRequests(t, newStore) })
	t.Run("WatchIndex", func(t *testing.T) { testWatchIndex(t, newStore) })
	t.Run("RecordOutlivesPass", func(t *testing.T) { testRecordOutlivesPass(t, newStore) })
	t.Run("ClaimOnce", func(t *testing.T) { testClaim(t, newStore) })
	t.Run("TouchAndAlive", func(t *testing.T) { testTouch(t, newStore) })
	t.Run("ReleaseClaim", func(t *testing.T) { testRelease(t, newStore) })
	t.Run("CompareAndSwap", func(t *testing.T) { testCompareAndSwap(t, newStore) })
	t.Run("ValueOfKeys", func(t *testing.T) { testValue(t, newStore) })
	t.Run("ConcurrentSwapsOneWinner", func(t *testing.T) { testConcurrentSwaps(t, newStore) })
	t.Run("HitWindow", func(t *testing.T) { testHit(t, newStore) })
	t.Run("AuditTrail", func(t *testing.T) { testAudit(t, newStore) })
	t.Run("RecentByRequester", func(t *testing.T) { testRecentByRequester(t, newStore) })
	t.Run("AuditTrailLong", func(t *testing.T) { testAuditLong(t, newStore) })
	t.Run("Memo", func(t *testing.T) { testMemo(t, newStore) })
}

// Memo is how adapters keep small facts from outside (a person's Slack DM channel); every store
// must implement it.
type Memo interface {
	Recall(ctx context.Context, key string) (string, error)
	Remember(ctx context.Context, key, value string, ttl time.Duration) error
}

func testMemo(t *testing.T, newStore Factory) {
	s, elapse := newStore(t)
	ctx := context.Background()
	m, ok := s.(Memo)
	if !ok {
		t.Fatalf("%T does not keep memos (storetest.Memo)", s)
	}
	if v, err := m.Recall(ctx, "dm:U1"); err != nil || v != "" {
		t.Fatalf("Recall of nothing = %q, %v; want \"\", nil", v, err)
	}
	if err := m.Remember(ctx, "dm:U1", "D1", 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := m.Remember(ctx, "dm:U2", "D2", time.Hour); err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Recall(ctx, "dm:U1"); v != "D1" {
		t.Fatalf("Recall = %q, want D1", v)
	}
	if err := m.Remember(ctx, "dm:U2", "", 0); err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Recall(ctx, "dm:U2"); v != "" {
		t.Fatalf("a forgotten memo reads %q", v)
	}
	elapse(400 * time.Millisecond)
	if v, _ := m.Recall(ctx, "dm:U1"); v != "" {
		t.Fatalf("an expired memo reads %q", v)
	}
	// A memo is not a request key: Claim on the same name is unaffected.
	if first, err := s.Claim(ctx, "dm:U1", time.Hour); err != nil || !first {
		t.Fatalf("Claim after a memo of the same name = %v, %v", first, err)
	}
}

// Expiring is how the contract sees when a store will drop a request record; every store must
// implement it.
type Expiring interface {
	RecordExpiry(ctx context.Context, id string) (time.Time, error)
}

// testRecordOutlivesPass checks that a record lives RecordRetention from its creation, or
// RecordMargin past the end of its pass when that is later, and that no update shortens it.
func testRecordOutlivesPass(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := context.Background()
	ex, ok := s.(Expiring)
	if !ok {
		t.Fatalf("%T does not report when it drops a record (storetest.Expiring)", s)
	}
	expiry := func(id string) time.Time {
		t.Helper()
		at, err := ex.RecordExpiry(ctx, id)
		if err != nil {
			t.Fatalf("RecordExpiry: %v", err)
		}
		return at
	}
	near := func(what string, got, want time.Time) {
		t.Helper()
		if d := got.Sub(want); d < -2*time.Second || d > 2*time.Second {
			t.Fatalf("%s: record expires %v, want %v (off by %v)", what, got, want, d)
		}
	}
	update := func(id string, change func(*approvals.Request)) {
		t.Helper()
		if _, err := s.Update(ctx, id, func(r *approvals.Request) error { change(r); return nil }); err != nil {
			t.Fatal(err)
		}
	}

	r := sample()
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	created := expiry(r.ID)
	now := created.Add(-approvals.RecordRetention) // the store's clock at Create
	update(r.ID, func(r *approvals.Request) { r.Reason = "changed" })
	near("after an update without a pass", expiry(r.ID), created)

	// A long pass that starts in ten days ends after RecordRetention.
	passEnd := now.Add(approvals.RecordRetention + 10*24*time.Hour)
	update(r.ID, func(r *approvals.Request) { r.State, r.PassExpiresAt = approvals.Issued, passEnd })
	near("after the pass was issued", expiry(r.ID), passEnd.Add(approvals.RecordMargin))
	update(r.ID, func(r *approvals.Request) { r.State, r.PassExpiresAt = approvals.Revoked, now.Add(time.Hour) })
	near("after a later update moved the pass's end earlier", expiry(r.ID), passEnd.Add(approvals.RecordMargin))

	withPass := sample()
	withPass.PassExpiresAt = passEnd
	if err := s.Create(ctx, withPass); err != nil {
		t.Fatal(err)
	}
	near("created with its pass", expiry(withPass.ID), passEnd.Add(approvals.RecordMargin))

	short := sample()
	if err := s.Create(ctx, short); err != nil {
		t.Fatal(err)
	}
	shortCreated := expiry(short.ID)
	update(short.ID, func(r *approvals.Request) { r.PassExpiresAt = now.Add(time.Hour) })
	near("after a one-hour pass", expiry(short.ID), shortCreated)
}

func testRelease(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := context.Background()
	if ok, _ := s.Claim(ctx, "target:x", time.Hour); !ok {
		t.Fatal("first Claim failed")
	}
	if err := s.Release(ctx, "target:x"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Claim(ctx, "target:x", time.Hour); !ok || err != nil {
		t.Fatalf("Claim after Release = %v, %v; want true", ok, err)
	}
}

// testValue reads back what Claim, Touch and CompareAndSwap set, and nothing once it expired.
func testValue(t *testing.T, newStore Factory) {
	s, elapse := newStore(t)
	ctx := context.Background()
	if v, err := s.Value(ctx, "none"); err != nil || v != "" {
		t.Fatalf("Value of nothing = %q, %v; want \"\", nil", v, err)
	}
	if ok, err := s.CompareAndSwap(ctx, "cursor", "", "2026-01-01", 300*time.Millisecond); err != nil || !ok {
		t.Fatalf("CompareAndSwap = %v, %v", ok, err)
	}
	if err := s.Touch(ctx, "beat", time.Hour); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"cursor": "2026-01-01", "beat": "1"} {
		if v, err := s.Value(ctx, key); err != nil || v != want {
			t.Fatalf("Value(%s) = %q, %v; want %q", key, v, err, want)
		}
	}
	elapse(time.Second)
	if v, err := s.Value(ctx, "cursor"); err != nil || v != "" {
		t.Fatalf("Value of an expired key = %q, %v; want \"\"", v, err)
	}
}

// testCompareAndSwap walks a lock that names its holder through its life: taken, refused to
// another, renewed, handed over, released only by its holder, and free again once expired.
func testCompareAndSwap(t *testing.T, newStore Factory) {
	s, elapse := newStore(t)
	ctx := context.Background()
	steps := []struct {
		old, next string
		want      bool
	}{
		{"", "req-a", true},       // free: taken
		{"", "req-b", false},      // held by req-a: refused
		{"req-b", "req-b", false}, // not req-b's to renew
		{"req-a", "req-a", true},  // renewed by its holder
		{"req-a", "req-c", true},  // handed over
		{"req-a", "", false},      // req-a no longer holds it
		{"req-c", "", true},       // released by its holder
		{"req-c", "", true},       // a release sent again after its reply was lost
		{"", "req-d", true},       // free again
		{"", "req-d", true},       // a take sent again after its reply was lost: its own write
		{"req-e", "req-e", false}, // not req-e's
	}
	for i, st := range steps {
		got, err := s.CompareAndSwap(ctx, "target:x", st.old, st.next, time.Hour)
		if err != nil || got != st.want {
			t.Fatalf("step %d: CompareAndSwap(%q -> %q) = %v, %v; want %v", i, st.old, st.next, got, err, st.want)
		}
	}
	if ok, _ := s.Alive(ctx, "target:x"); !ok {
		t.Fatal("a swapped-in key is not Alive")
	}
	if ok, _ := s.Claim(ctx, "target:x", time.Hour); ok {
		t.Fatal("Claim took a key held through CompareAndSwap")
	}

	if ok, err := s.CompareAndSwap(ctx, "turn", "", "replica-a", 50*time.Millisecond); !ok || err != nil {
		t.Fatalf("taking a free key = %v, %v", ok, err)
	}
	elapse(100 * time.Millisecond)
	if ok, _ := s.CompareAndSwap(ctx, "turn", "replica-a", "replica-a", time.Hour); ok {
		t.Fatal("an expired key was renewed as if still held")
	}
	if ok, err := s.CompareAndSwap(ctx, "turn", "", "replica-b", 50*time.Millisecond); !ok || err != nil {
		t.Fatalf("taking an expired key = %v, %v", ok, err)
	}
	// A swap that finds its own write sets the ttl again, as the write it repeats did.
	if ok, err := s.CompareAndSwap(ctx, "turn", "", "replica-b", time.Hour); !ok || err != nil {
		t.Fatalf("repeating a take = %v, %v", ok, err)
	}
	elapse(100 * time.Millisecond)
	if ok, _ := s.Alive(ctx, "turn"); !ok {
		t.Fatal("a repeated swap did not set the ttl again")
	}

	// Replicas from before locks named their holder wrote "1" (as Touch does); a holder-naming
	// caller can still release such a key.
	if err := s.Touch(ctx, "legacy", time.Hour); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.CompareAndSwap(ctx, "legacy", "1", "", 0); !ok || err != nil {
		t.Fatalf("releasing a claimed key = %v, %v", ok, err)
	}
	if ok, _ := s.Alive(ctx, "legacy"); ok {
		t.Fatal("the released key is still Alive")
	}
}

func testConcurrentSwaps(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := context.Background()
	for round := range 20 {
		key := fmt.Sprintf("lock-%d", round)
		var mu sync.Mutex
		var winners []string
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Go(func() {
				holder := fmt.Sprintf("holder-%d", i)
				ok, err := s.CompareAndSwap(ctx, key, "", holder, time.Hour)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					winners = append(winners, holder)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("round %d: %d concurrent takers won (%v), want exactly 1", round, len(winners), winners)
		}
		if ok, _ := s.CompareAndSwap(ctx, key, winners[0], "", 0); !ok {
			t.Fatalf("round %d: the winner %s could not release", round, winners[0])
		}
	}
}

func testHit(t *testing.T, newStore Factory) {
	s, elapse := newStore(t)
	ctx := context.Background()
	var n int
	var end time.Time
	for i := range 3 {
		var err error
		n, end, err = s.Hit(ctx, "rate:U1", 100*time.Millisecond)
		if err != nil || n != i+1 {
			t.Fatalf("Hit %d = %d, %v", i+1, n, err)
		}
	}
	if end.IsZero() {
		t.Fatal("Hit gives no window end")
	}
	if n2, _, _ := s.Hit(ctx, "rate:U2", time.Minute); n2 != 1 {
		t.Fatalf("another key's count = %d, want 1", n2)
	}
	elapse(200 * time.Millisecond)
	if n, _, _ := s.Hit(ctx, "rate:U1", 100*time.Millisecond); n != 1 {
		t.Fatalf("count in a new window = %d, want 1", n)
	}
}

func testAudit(t *testing.T, newStore Factory) {
	s, elapse := newStore(t)
	ctx := context.Background()
	old := approvals.Event{Time: time.Now().UTC(), Event: approvals.EventDenied, RequestID: "tap_old"}
	if err := s.AppendAudit(ctx, old, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	elapse(100 * time.Millisecond)
	start := time.Time{} // everything the store still holds
	for _, name := range []string{approvals.EventRequested, approvals.EventApproved, approvals.EventIssued} {
		e := approvals.Event{Time: time.Now().UTC(), Event: name, RequestID: "tap_x", Actor: "U1", Target: "ada@example.com"}
		if err := s.AppendAudit(ctx, e, 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ReadAudit(ctx, start)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range got {
		names = append(names, e.Event)
	}
	if strings.Join(names, ",") != "requested,approved,issued" || got[0].Target != "ada@example.com" {
		t.Fatalf("trail = %+v; want the three new events and the one past its retention gone", got)
	}
	if later, _ := s.ReadAudit(ctx, time.Now().Add(2*time.Hour)); len(later) != 0 {
		t.Fatalf("ReadAudit from the future = %d events", len(later))
	}
}

// testAuditLong reads back a trail longer than a store reads in one go (the Redis store reads
// 1000 events a page): every event, once, in order.
func testAuditLong(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := context.Background()
	const n = 2500
	for i := range n {
		e := approvals.Event{Time: time.Now().UTC(), Event: approvals.EventRequested, RequestID: fmt.Sprintf("tap_%05d", i)}
		if err := s.AppendAudit(ctx, e, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ReadAudit(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("ReadAudit returned %d of %d events", len(got), n)
	}
	for i, e := range got {
		if want := fmt.Sprintf("tap_%05d", i); e.RequestID != want {
			t.Fatalf("event %d is %s, want %s: the trail is out of order or has gaps", i, e.RequestID, want)
		}
	}
}

func testSecretPeekDelete(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := context.Background()
	id := approvals.NewID()
	if ok, err := s.HasSecret(ctx, id); ok || err != nil {
		t.Fatalf("HasSecret before Put = %v, %v", ok, err)
	}
	if err := s.PutSecret(ctx, id, []byte("sealed"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.HasSecret(ctx, id); !ok || err != nil {
		t.Fatalf("HasSecret after Put = %v, %v", ok, err)
	}
	if ok, _ := s.HasSecret(ctx, id); !ok {
		t.Fatal("HasSecret consumed the secret")
	}
	if err := s.DeleteSecret(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSecret(ctx, id); err != nil {
		t.Fatalf("deleting a missing secret: %v", err)
	}
	if _, err := take(t, s, id, "t", time.Minute); !errors.Is(err, approvals.ErrNotFound) {
		t.Fatalf("TakeSecret after DeleteSecret = %v", err)
	}
}

func testOpenRequests(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := context.Background()
	pending, denied := sample(), sample()
	for _, r := range []*approvals.Request{pending, denied} {
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Update(ctx, denied.ID, func(r *approvals.Request) error { r.State = approvals.Denied; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, pending.ID, func(r *approvals.Request) error { r.State = approvals.Issued; return nil }); err != nil {
		t.Fatal(err)
	}
	ids, err := s.OpenRequests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0] != pending.ID {
		t.Fatalf("OpenRequests = %v, want only the issued one %s", ids, pending.ID)
	}
}

func testClaim(t *testing.T, newStore Factory) {
	s, elapse := newStore(t)
	ctx := context.Background()
	var mu sync.Mutex
	firsts := 0
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			ok, err := s.Claim(ctx, "envelope-1", 50*time.Millisecond)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				firsts++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firsts != 1 {
		t.Fatalf("%d concurrent Claims were first, want 1", firsts)
	}
	elapse(100 * time.Millisecond)
	if ok, err := s.Claim(ctx, "envelope-1", time.Minute); !ok || err != nil {
		t.Fatalf("Claim after the TTL = %v, %v; want true", ok, err)
	}
}

func testTouch(t *testing.T, newStore Factory) {
	s, elapse := newStore(t)
	ctx := context.Background()
	if ok, _ := s.Alive(ctx, "replica-a"); ok {
		t.Fatal("Alive before Touch")
	}
	if err := s.Touch(ctx, "replica-a", 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Alive(ctx, "replica-a"); !ok || err != nil {
		t.Fatalf("Alive after Touch = %v, %v", ok, err)
	}
	elapse(100 * time.Millisecond)
	if ok, _ := s.Alive(ctx, "replica-a"); ok {
		t.Fatal("Alive after the TTL ran out")
	}
}

func sample() *approvals.Request {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	return &approvals.Request{
		ID:        approvals.NewID(),
		Requester: "U0MANAGER",
		Target: approvals.Target{SlackID: "U0TARGET", EntraID: "6f1c-entra", UPN: "ada@example.com",
			DisplayName: "Ada Lovelace"},
		Recipient:          "U0TARGET",
		Lifetime:           90 * time.Minute,
		UsableOnce:         true,
		Reason:             "lost phone <!channel> & more",
		State:              approvals.Pending,
		CreatedAt:          now,
		ExpiresAt:          now.Add(24 * time.Hour),
		ReplacesActivePass: true,
		ApprovalMessage:    approvals.MessageRef{Channel: "C0APPROVE", TS: "1700000000.000100"},
	}
}

func testRoundTrip(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := context.Background()
	want := sample()
	if err := s.Create(ctx, want); err != nil {
		t.Fatalf("Create: %v", err)
	}
	got, err := s.Get(ctx, want.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", *want) {
		t.Fatalf("Get returned\n%+v\nwant\n%+v", *got, *want)
	}
	got.Reason = "changed by caller"
	again, _ := s.Get(ctx, want.ID)
	if again.Reason != want.Reason {
		t.Fatalf("changing a returned request changed the stored one")
	}
}

func testCreateTwice(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := context.Background()
	r := sample()
	if err := s.Create(ctx, r); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := s.Create(ctx, r); !errors.Is(err, approvals.ErrConflict) {
		t.Fatalf("second Create = %v, want ErrConflict", err)
	}
}

func testGetMissing(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := context.Background()
	if _, err := s.Get(ctx, approvals.NewID()); !errors.Is(err, approvals.ErrNotFound) {
		t.Fatalf("Get of a missing request = %v, want ErrNotFound", err)
	}
	_, err := s.Update(ctx, approvals.NewID(), func(*approvals.Request) error { return nil })
	if !errors.Is(err, approvals.ErrNotFound) {
		t.Fatalf("Update of a missing request = %v, want ErrNotFound", err)
	}
	if _, err := take(t, s, approvals.NewID(), "t", time.Minute); !errors.Is(err, approvals.ErrNotFound) {
		t.Fatalf("TakeSecret of a missing pass = %v, want ErrNotFound", err)
	}
}

func testUpdateAbort(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := context.Background()
	r := sample()
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	_, err := s.Update(ctx, r.ID, func(r *approvals.Request) error {
		r.State = approvals.Denied
		return stop
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Update = %v, want the change's own error", err)
	}
	got, _ := s.Get(ctx, r.ID)
	if got.State != approvals.Pending {
		t.Fatalf("aborted Update wrote state %q", got.State)
	}
	updated, err := s.Update(ctx, r.ID, func(r *approvals.Request) error {
		r.State = approvals.Denied
		return nil
	})
	if err != nil || updated.State != approvals.Denied {
		t.Fatalf("Update = %v, %v; want the written request", updated, err)
	}
	if got, _ := s.Get(ctx, r.ID); got.State != approvals.Denied {
		t.Fatalf("state after Update = %q, want denied", got.State)
	}
}

func testNoLostUpdates(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := context.Background()
	r := sample()
	r.Reason = ""
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	const writers = 20
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			if _, err := s.Update(ctx, r.ID, func(r *approvals.Request) error {
				r.Reason += "x"
				return nil
			}); err != nil {
				t.Errorf("Update: %v", err)
			}
		})
	}
	wg.Wait()
	got, _ := s.Get(ctx, r.ID)
	if got.Reason != strings.Repeat("x", writers) {
		t.Fatalf("after %d concurrent appends reason is %q: updates were lost", writers, got.Reason)
	}
}

func testOneTransitionWinner(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := context.Background()
	for round := range 20 {
		r := sample()
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		winners := 0
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				_, err := s.Update(ctx, r.ID, func(r *approvals.Request) error {
					if r.State != approvals.Pending {
						return approvals.ErrConflict
					}
					r.State = approvals.Issuing
					return nil
				})
				if err == nil {
					mu.Lock()
					winners++
					mu.Unlock()
				} else if !errors.Is(err, approvals.ErrConflict) {
					t.Errorf("Update: %v", err)
				}
			})
		}
		wg.Wait()
		if winners != 1 {
			t.Fatalf("round %d: %d callers moved the request out of pending, want exactly 1", round, winners)
		}
	}
}

func testSecretOnce(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := context.Background()
	id := approvals.NewID()
	if err := s.PutSecret(ctx, id, []byte("sealed-bytes"), time.Hour); err != nil {
		t.Fatal(err)
	}
	got, err := take(t, s, id, "reveal-1", time.Minute)
	if err != nil || string(got) != "sealed-bytes" {
		t.Fatalf("TakeSecret = %q, %v", got, err)
	}
	if _, err := take(t, s, id, "reveal-2", time.Minute); !errors.Is(err, approvals.ErrClaimedElsewhere) {
		t.Fatalf("a second reveal's TakeSecret = %v, want ErrClaimedElsewhere", err)
	}
	if ok, _ := s.HasSecret(ctx, id); ok {
		t.Fatal("HasSecret sees a claimed pass as stored")
	}
}

// testSecretClaims walks a claimed pass through its life: a take sent again with its token gets
// the same bytes (its first reply was lost), another token's take gets nothing, a returned pass
// is there for the next take, and a claim lasts no longer than its hold or the pass.
func testSecretClaims(t *testing.T, newStore Factory) {
	s, elapse := newStore(t)
	ctx := context.Background()
	take := func(id, token string, hold time.Duration) ([]byte, error) {
		t.Helper()
		return take(t, s, id, token, hold)
	}
	id := approvals.NewID()
	if err := s.PutSecret(ctx, id, []byte("sealed-1"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if b, err := take(id, "t1", time.Hour); err != nil || string(b) != "sealed-1" {
		t.Fatalf("first take = %q, %v", b, err)
	}
	if b, err := take(id, "t1", time.Hour); err != nil || string(b) != "sealed-1" {
		t.Fatalf("the same take again = %q, %v; want the same bytes: its reply may have been lost", b, err)
	}
	if _, err := take(id, "t2", time.Hour); !errors.Is(err, approvals.ErrClaimedElsewhere) {
		t.Fatalf("another token's take = %v, want ErrClaimedElsewhere", err)
	}
	for range 2 { // a return sent again is harmless
		revealing(t, s, id, testOwner, "t1")
		if err := s.ReturnSecret(ctx, id, testOwner, "t1", []byte("sealed-1b"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := s.HasSecret(ctx, id); !ok || err != nil {
		t.Fatalf("HasSecret after ReturnSecret = %v, %v", ok, err)
	}
	if _, err := take(id, "t1", time.Hour); err != nil {
		t.Fatalf("a take after the return: %v", err)
	}
	if b, err := take(id, "t1", time.Hour); err != nil || string(b) != "sealed-1b" {
		t.Fatalf("take = %q, %v; want what was returned", b, err)
	}
	if err := s.DeleteSecret(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := take(id, "t1", time.Hour); !errors.Is(err, approvals.ErrNotFound) {
		t.Fatalf("take after DeleteSecret = %v, want ErrNotFound: the claim must go too", err)
	}

	// A claim lasts its hold, and never longer than the pass would have.
	held, short := approvals.NewID(), approvals.NewID()
	if err := s.PutSecret(ctx, held, []byte("sealed-2"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSecret(ctx, short, []byte("sealed-3"), 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := take(held, "t3", 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := take(short, "t4", time.Hour); err != nil {
		t.Fatal(err)
	}
	elapse(400 * time.Millisecond)
	for _, id := range []string{held, short} {
		if _, err := take(id, "t3", time.Hour); !errors.Is(err, approvals.ErrNotFound) {
			t.Fatalf("take after the claim ran out = %v, want ErrNotFound", err)
		}
	}
}

// testConcurrentTakes is the race one-time secret services have shipped: many readers at once,
// and exactly one may see the secret, round after round.
func testConcurrentTakes(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := context.Background()
	const rounds, readers = 50, 20
	for round := range rounds {
		id := approvals.NewID()
		if err := s.PutSecret(ctx, id, []byte("sealed"), time.Hour); err != nil {
			t.Fatal(err)
		}
		revealing(t, s, id, testOwner, "first")
		var wg sync.WaitGroup
		var mu sync.Mutex
		winners := 0
		start := make(chan struct{})
		for range readers {
			wg.Go(func() {
				<-start
				// Each reader makes the request name it, then takes: the request may name another
				// by then, and whichever way the race goes only one gets the pass.
				owner, token := approvals.NewID(), approvals.NewID()
				if _, err := s.Update(ctx, id, func(r *approvals.Request) error {
					r.Owner, r.RevealToken = owner, token
					return nil
				}); err != nil {
					t.Error(err)
					return
				}
				b, err := s.TakeSecret(ctx, id, owner, token, time.Minute)
				switch {
				case err == nil && string(b) == "sealed":
					mu.Lock()
					winners++
					mu.Unlock()
				case errors.Is(err, approvals.ErrClaimedElsewhere), errors.Is(err, approvals.ErrStaleReveal):
				default:
					t.Errorf("TakeSecret = %q, %v", b, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if winners != 1 {
			t.Fatalf("round %d: %d of %d concurrent readers got the secret, want exactly 1", round, winners, readers)
		}
	}
}

func testSecretExpires(t *testing.T, newStore Factory) {
	s, elapse := newStore(t)
	ctx := context.Background()
	id := approvals.NewID()
	if err := s.PutSecret(ctx, id, []byte("sealed"), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	elapse(100 * time.Millisecond)
	if _, err := take(t, s, id, "t", time.Minute); !errors.Is(err, approvals.ErrNotFound) {
		t.Fatalf("TakeSecret after the TTL = %v, want ErrNotFound", err)
	}
}
