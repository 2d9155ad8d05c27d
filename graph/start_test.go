package graph_test

import (
	"context"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

// TestCreatePassStarting: a pass for a new hire's first morning is created with Graph's
// startDateTime, works only from then, and expires its lifetime after the start.
func TestCreatePassStarting(t *testing.T) {
	e := newEnv(t)
	c := e.client(10 * time.Second)
	ctx := context.Background()
	start := e.clock.Now().Add(50 * time.Hour).Truncate(time.Minute)

	p, err := c.CreatePassStarting(ctx, e.alice.ID, start, 2*time.Hour, true)
	if e.note(err) != nil {
		t.Fatal(err)
	}
	issued := e.fake.Passes(e.alice.ID)
	if len(issued) != 1 || !issued[0].StartsAt.Equal(start) || issued[0].LifetimeMinutes != 120 {
		t.Fatalf("Entra recorded %+v, want one 120-minute pass starting %v", issued, start)
	}
	if !p.StartsAt.Equal(start) || !p.ExpiresAt().Equal(start.Add(2*time.Hour)) {
		t.Fatalf("pass works %v to %v, want %v to %v", p.StartsAt, p.ExpiresAt(), start, start.Add(2*time.Hour))
	}
	if e.fake.SignIn(e.alice.ID, p.Code) {
		t.Fatal("the pass signed in before its start")
	}
	if active, err := c.HasActivePass(ctx, e.alice.ID); e.note(err) != nil || !active {
		t.Fatalf("HasActivePass before the start = %v, %v; a pass that is not yet valid still counts", active, err)
	}
	passes, err := c.ListPasses(ctx, e.alice.ID)
	if e.note(err) != nil || len(passes) != 1 || !passes[0].StartsAt.Equal(start) {
		t.Fatalf("ListPasses = %+v, %v; want the start", passes, err)
	}
	e.clock.Advance(51 * time.Hour)
	if !e.fake.SignIn(e.alice.ID, p.Code) {
		t.Fatal("the pass did not sign in after its start")
	}

	t.Run("start in the past", func(t *testing.T) {
		_, err := c.CreatePassStarting(ctx, e.bob.ID, e.clock.Now().Add(-time.Hour), time.Hour, true)
		wantCode(t, e.note(err), approvals.Invalid)
		if n := len(e.fake.Passes(e.bob.ID)); n != 0 {
			t.Fatalf("a pass starting in the past was created (%d)", n)
		}
	})
	t.Run("zero start works at once", func(t *testing.T) {
		p, err := c.CreatePassStarting(ctx, e.bob.ID, time.Time{}, time.Hour, true)
		if e.note(err) != nil {
			t.Fatal(err)
		}
		if !e.fake.SignIn(e.bob.ID, p.Code) {
			t.Fatal("a pass without a start did not work at once")
		}
	})
}
