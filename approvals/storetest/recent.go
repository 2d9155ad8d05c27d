package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

// testRecentByRequester is what /tap status relies on: a requester's requests, newest first, as
// they are now, and only theirs; the index keeps the newest RecentKept.
func testRecentByRequester(t *testing.T, newStore Factory) {
	s, _ := newStore(t)
	ctx := context.Background()
	base := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	var mine []*approvals.Request
	for i := range 3 {
		r := sample()
		r.CreatedAt = base.Add(time.Duration(i) * time.Minute)
		mine = append(mine, r)
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	other := sample()
	other.Requester = "U0SOMEONEELSE"
	if err := s.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, mine[0].ID, func(r *approvals.Request) error { r.State = approvals.Denied; return nil }); err != nil {
		t.Fatal(err)
	}

	got, err := s.RecentByRequester(ctx, "U0MANAGER", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != mine[2].ID || got[1].ID != mine[1].ID {
		t.Fatalf("RecentByRequester(limit 2) = %v, want the two newest, newest first: %s, %s", ids(got), mine[2].ID, mine[1].ID)
	}
	all, err := s.RecentByRequester(ctx, "U0MANAGER", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[2].ID != mine[0].ID || all[2].State != approvals.Denied {
		t.Fatalf("RecentByRequester(limit 10) = %v; want all three, the oldest as it is now (denied)", ids(all))
	}
	all[0].Reason = "changed by caller"
	if again, _ := s.Get(ctx, all[0].ID); again.Reason == "changed by caller" {
		t.Fatal("changing a listed request changed the stored one")
	}
	if theirs, _ := s.RecentByRequester(ctx, "U0SOMEONEELSE", 10); len(theirs) != 1 || theirs[0].ID != other.ID {
		t.Fatalf("another requester's list = %v, want only %s", ids(theirs), other.ID)
	}
	if none, err := s.RecentByRequester(ctx, "U0NOBODY", 10); err != nil || len(none) != 0 {
		t.Fatalf("a requester without requests = %v, %v; want none", ids(none), err)
	}

	// Requests made at the same instant (a fixed clock, or one replica's clock behind another's)
	// are listed in the order they were stored.
	tie1, tie2 := sample(), sample()
	tie1.Requester, tie2.Requester = "U0TIES", "U0TIES"
	tie2.CreatedAt = tie1.CreatedAt.Add(-time.Second)
	for _, r := range []*approvals.Request{tie1, tie2} {
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if ties, _ := s.RecentByRequester(ctx, "U0TIES", 10); len(ties) != 2 || ties[0].ID != tie2.ID {
		t.Fatalf("requests stored in the order %s, %s are listed %v; want the last stored first", tie1.ID, tie2.ID, ids(ties))
	}

	// The index is bounded: only the newest RecentKept are kept.
	var newest string
	for i := range approvals.RecentKept + 3 {
		r := sample()
		r.Requester = "U0BUSY"
		r.CreatedAt = base.Add(time.Duration(i) * time.Second)
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		newest = r.ID
	}
	busy, err := s.RecentByRequester(ctx, "U0BUSY", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(busy) != approvals.RecentKept || busy[0].ID != newest {
		t.Fatalf("a busy requester's list has %d entries starting %s; want %d starting with the newest %s",
			len(busy), busy[0].ID, approvals.RecentKept, newest)
	}
}

func ids(rs []*approvals.Request) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}
