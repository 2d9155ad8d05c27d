package graph_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/internal/graphfake"
)

// TestUpcomingHires: the hire-date query goes out as the advanced query Graph insists on (the fake
// refuses it otherwise, with Graph's error), every page is read with the header, and hire date and
// accountEnabled, which Graph returns only when selected, come back.
func TestUpcomingHires(t *testing.T) {
	e := newEnvWith(t, graphfake.Options{PageSize: 2})
	day := func(d int) time.Time { return time.Date(2026, 12, d, 0, 0, 0, 0, time.UTC) }
	hire := func(upn string, on time.Time, enabled bool) graphfake.User {
		u := e.fake.AddUser(graphfake.User{UPN: upn, Mail: upn, DisplayName: upn})
		e.fake.SetHireDate(u.ID, on)
		e.fake.SetAccountEnabled(u.ID, enabled)
		return u
	}
	inside := []graphfake.User{
		hire("ana@contoso.com", day(4), false), // provisioned disabled, enabled on day one
		hire("ben@contoso.com", day(5), true),
		hire("cy@contoso.com", day(5).Add(9*time.Hour), true),
	}
	hire("early@contoso.com", day(1), true) // started already
	hire("late@contoso.com", day(20), true) // outside the notice window
	c := e.client(5 * time.Second)

	got, err := c.UpcomingHires(context.Background(), day(3), day(6))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(inside) {
		t.Fatalf("got %d hires, want %d: %+v", len(got), len(inside), got)
	}
	for _, want := range inside {
		i := slices.IndexFunc(got, func(h approvals.Hire) bool { return h.User.ID == want.ID })
		if i < 0 {
			t.Errorf("%s missing from %+v", want.UPN, got)
			continue
		}
		h := got[i]
		if h.User.UPN != want.UPN || h.HireDate.IsZero() {
			t.Errorf("%s: %+v", want.UPN, h)
		}
		if wantEnabled := want.UPN != "ana@contoso.com"; h.Enabled != wantEnabled {
			t.Errorf("%s enabled = %v, want %v", want.UPN, h.Enabled, wantEnabled)
		}
	}
	if n := e.fake.Calls(graphfake.OpListHires); n != 2 {
		t.Errorf("%d hire-date requests, want 2 (three hires on pages of two)", n)
	}

	none, err := c.UpcomingHires(context.Background(), day(25), day(28))
	if err != nil || len(none) != 0 {
		t.Errorf("an empty window: %v, %v", none, err)
	}
}

// TestUpcomingHiresForbidden: without User.Read.All the answer says which permission is missing.
func TestUpcomingHiresForbidden(t *testing.T) {
	e := newEnv(t)
	e.fake.SetRoles("UserAuthMethod-TAP.ReadWrite.All")
	_, err := e.client(5*time.Second).UpcomingHires(context.Background(), time.Now(), time.Now().Add(72*time.Hour))
	var ae *approvals.Error
	if !errors.As(err, &ae) || ae.Code != approvals.Forbidden || !strings.Contains(ae.Message, "User.Read.All") {
		t.Fatalf("err = %v, want Forbidden naming User.Read.All", err)
	}
}
