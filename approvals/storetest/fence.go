package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

// testOwner is the replica the contract's reveals run as.
const testOwner = "replica-a"

// revealing makes request id Revealing under owner and token, as Reveal does before it takes the
// pass, creating the record when there is none: TakeSecret and ReturnSecret act only for the
// reveal the request names.
func revealing(t testing.TB, s approvals.Store, id, owner, token string) {
	t.Helper()
	ctx := context.Background()
	set := func(r *approvals.Request) error {
		r.State, r.Owner, r.RevealToken = approvals.Revealing, owner, token
		return nil
	}
	_, err := s.Update(ctx, id, set)
	if errors.Is(err, approvals.ErrNotFound) {
		r := sample()
		r.ID = id
		_ = set(r)
		err = s.Create(ctx, r)
	}
	if err != nil {
		t.Fatalf("make %s revealing: %v", id, err)
	}
}

// take is TakeSecret by the reveal it makes the request name first.
func take(t testing.TB, s approvals.Store, id, token string, hold time.Duration) ([]byte, error) {
	t.Helper()
	revealing(t, s, id, testOwner, token)
	return s.TakeSecret(context.Background(), id, testOwner, token, hold)
}

// testRevealFence is the slow owner against the sweeper: a reveal the request no longer names (a
// sweeper took it over, or the request ended or went back to Issued with a new token) can
// neither take the pass, nor find its own earlier claim, nor put a pass back; and a copy it tries
// to put back onto an ended request is dropped, not kept.
func testRevealFence(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := context.Background()
	id := approvals.NewID()
	if err := s.PutSecret(ctx, id, []byte("sealed"), time.Hour); err != nil {
		t.Fatal(err)
	}
	revealing(t, s, id, testOwner, "t1")
	for _, tt := range []struct{ name, owner, token string }{
		{"another replica with the token", "replica-b", "t1"},
		{"the owner with another token", testOwner, "t2"},
	} {
		if _, err := s.TakeSecret(ctx, id, tt.owner, tt.token, time.Minute); !errors.Is(err, approvals.ErrStaleReveal) {
			t.Fatalf("take by %s = %v, want ErrStaleReveal", tt.name, err)
		}
	}
	if ok, _ := s.HasSecret(ctx, id); !ok {
		t.Fatal("a refused take took the pass")
	}
	if _, err := s.TakeSecret(ctx, id, testOwner, "t1", time.Minute); err != nil {
		t.Fatalf("the named reveal's take: %v", err)
	}
	// The sweeper takes the reveal over: the owner's take sent again must not find its claim.
	if _, err := s.Update(ctx, id, func(r *approvals.Request) error { r.Owner = "sweeper"; return nil }); err != nil {
		t.Fatal(err)
	}
	if b, err := s.TakeSecret(ctx, id, testOwner, "t1", time.Minute); !errors.Is(err, approvals.ErrStaleReveal) {
		t.Fatalf("a taken-over owner's take = %q, %v; want ErrStaleReveal", b, err)
	}
	// Nor may it put the pass back: the request ended, and the copy goes with it.
	if _, err := s.Update(ctx, id, func(r *approvals.Request) error {
		r.State, r.Owner, r.RevealToken = approvals.Failed, "", ""
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReturnSecret(ctx, id, testOwner, "t1", []byte("sealed"), time.Hour); !errors.Is(err, approvals.ErrStaleReveal) {
		t.Fatalf("returning onto an ended request = %v, want ErrStaleReveal", err)
	}
	if ok, err := s.HasSealedCopy(ctx, id); ok || err != nil {
		t.Fatalf("a sealed copy outlives the ended request (%v, %v)", ok, err)
	}

	// A request back at Issued under a new token: the old reveal's return puts nothing back.
	back := approvals.NewID()
	if err := s.PutSecret(ctx, back, []byte("sealed"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := take(t, s, back, "t1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, back, func(r *approvals.Request) error {
		r.State, r.Owner, r.RevealToken = approvals.Issued, "", ""
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReturnSecret(ctx, back, testOwner, "t1", []byte("sealed"), time.Hour); !errors.Is(err, approvals.ErrStaleReveal) {
		t.Fatalf("a stale reveal's return = %v, want ErrStaleReveal", err)
	}
	if ok, _ := s.HasSecret(ctx, back); ok {
		t.Fatal("a stale reveal put the pass back")
	}
}

// testSealedCopy: HasSealedCopy sees a pass stored or claimed, and nothing once both are gone.
func testSealedCopy(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := context.Background()
	id := approvals.NewID()
	if ok, err := s.HasSealedCopy(ctx, id); ok || err != nil {
		t.Fatalf("HasSealedCopy before Put = %v, %v", ok, err)
	}
	if err := s.PutSecret(ctx, id, []byte("sealed"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.HasSealedCopy(ctx, id); !ok {
		t.Fatal("HasSealedCopy misses a stored pass")
	}
	if _, err := take(t, s, id, "t1", time.Hour); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.HasSealedCopy(ctx, id); !ok {
		t.Fatal("HasSealedCopy misses a claimed pass")
	}
	if err := s.DeleteSecret(ctx, id); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.HasSealedCopy(ctx, id); ok {
		t.Fatal("HasSealedCopy sees a deleted pass")
	}
}
