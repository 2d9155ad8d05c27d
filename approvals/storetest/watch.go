package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/tapbot/tapbot/approvals"
)

// testWatchIndex checks the watch index: a revealed (final) request stays listed until it is
// removed, and an ID without a record is never listed.
func testWatchIndex(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := context.Background()
	kept, dropped := sample(), sample()
	for _, r := range []*approvals.Request{kept, dropped} {
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Update(ctx, r.ID, func(r *approvals.Request) error { r.State = approvals.Revealed; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	ghost := approvals.NewID() // never stored, or its record expired
	for _, id := range []string{kept.ID, dropped.ID, ghost, kept.ID} {
		if err := s.AddWatch(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RemoveWatch(ctx, dropped.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveWatch(ctx, approvals.NewID()); err != nil {
		t.Fatalf("removing an unknown ID: %v", err)
	}
	ids, err := s.Watched(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []string{kept.ID}) {
		t.Fatalf("Watched = %v, want only %s", ids, kept.ID)
	}
	if open, _ := s.OpenRequests(ctx); slices.Contains(open, kept.ID) {
		t.Fatal("a watched revealed request is in the open index")
	}
}
