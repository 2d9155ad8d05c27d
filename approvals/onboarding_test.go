package approvals_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tapbot/tapbot/approvals"
)

// TestFirstMorning: the first day is the day HR meant, whichever office's midnight their system
// wrote, and the pass starts at the given clock time that day in the requester's zone.
func TestFirstMorning(t *testing.T) {
	paris, _ := time.LoadLocation("Europe/Paris")
	la, _ := time.LoadLocation("America/Los_Angeles")
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	tests := []struct {
		name  string
		hire  time.Time
		loc   *time.Location
		clock string
		want  time.Time
	}{
		{"midnight UTC, an office east of UTC", time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), paris, "08:00", time.Date(2026, 12, 7, 8, 0, 0, 0, paris)},
		{"midnight UTC, an office west of UTC", time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), la, "08:00", time.Date(2026, 12, 7, 8, 0, 0, 0, la)},
		{"midnight in Paris (the evening before in UTC)", time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC), paris, "09:30", time.Date(2026, 12, 7, 9, 30, 0, 0, paris)},
		{"midnight in Tokyo (mid-afternoon the day before in UTC)", time.Date(2026, 12, 6, 15, 0, 0, 0, time.UTC), tokyo, "08:00", time.Date(2026, 12, 7, 8, 0, 0, 0, tokyo)},
		{"midnight in Los Angeles (the morning in UTC)", time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC), la, "08:00", time.Date(2026, 12, 7, 8, 0, 0, 0, la)},
		{"the start of a working day in Paris", time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC), paris, "08:00", time.Date(2026, 12, 7, 8, 0, 0, 0, paris)},
		{"no zone known", time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), nil, "08:00", time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := approvals.FirstMorning(tt.hire, tt.loc, tt.clock)
			if err != nil || !got.Equal(tt.want) {
				t.Fatalf("FirstMorning = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	if _, err := approvals.FirstMorning(time.Now(), nil, "8am"); err == nil {
		t.Error("a start time that is not HH:MM was accepted")
	}
}

func TestValidOnboardingKey(t *testing.T) {
	for key, want := range map[string]bool{
		"onboarding:00000000-0000-0000-0000-0000000000b1:2026-12-07": true,
		"onboarding:00000000-0000-0000-0000-0000000000b1:2026-13-07": false,
		"onboarding::2026-12-07":                                     false,
		"onboarding:abc;DROP:2026-12-07":                             false,
		"req:tap_x":                                                  false,
	} {
		if got := approvals.ValidOnboardingKey(key); got != want {
			t.Errorf("ValidOnboardingKey(%q) = %v, want %v", key, got, want)
		}
	}
}

// hiresOf is a HireDirectory with a fixed list.
type hiresOf []approvals.Hire

func (h hiresOf) UpcomingHires(_ context.Context, from, to time.Time) ([]approvals.Hire, error) {
	var out []approvals.Hire
	for _, x := range h {
		if !x.HireDate.Before(from) && !x.HireDate.After(to) {
			out = append(out, x)
		}
	}
	return out, nil
}

// flakyPeople answers users.lookupByEmail with err for the addresses in failing.
type flakyPeople struct {
	fakePeople
	failing map[string]error
}

func (p *flakyPeople) FindByEmail(ctx context.Context, email string) (string, error) {
	if err := p.failing[email]; err != nil {
		return "", err
	}
	return p.fakePeople.FindByEmail(ctx, email)
}

// onboardingHarness is the service harness with the look-ahead on and one hire, Ada, two days
// out, reporting to Boss (UBOSS in chat).
func onboardingHarness(t *testing.T, cfg approvals.Config, people approvals.People) (*harness, *approvals.Service) {
	t.Helper()
	h := newHarness(t, cfg)
	h.dir.managers = map[string]approvals.DirectoryUser{"entra-ada": {ID: "entra-boss", UPN: "boss@example.com", Mail: "boss@example.com"}}
	hire := approvals.Hire{User: approvals.DirectoryUser{ID: "00000000-0000-0000-0000-00000000ada0", UPN: "ada.new@example.com", DisplayName: "Ada New"},
		HireDate: h.clock().Add(48 * time.Hour).Truncate(24 * time.Hour), Enabled: true}
	h.dir.managers[hire.User.ID] = approvals.DirectoryUser{ID: "entra-boss", UPN: "boss@example.com", Mail: "boss@example.com"}
	h.dir.users["ada.new@example.com"] = hire.User
	cfg.Onboarding = true
	if cfg.Approvers == nil {
		cfg.Approvers = []string{"UAPPR", "SAPPROVERS", "UBOSS"}
	}
	if people == nil {
		people = h.people
	}
	svc := approvals.NewService(cfg, h.store, h.dir, people, h.sealer, approvals.WithClock(h.clock), approvals.WithHires(hiresOf{hire}))
	return h, svc
}

// TestOnboardingAnswersDoNotOverwriteEachOther: a click that comes before the prompt is recorded
// survives the recording, and a form left open while someone said "not needed" is refused.
func TestOnboardingAnswersDoNotOverwriteEachOther(t *testing.T) {
	ctx := context.Background()
	_, svc := onboardingHarness(t, approvals.Config{}, nil)
	prompts, err := svc.LookAhead(ctx)
	if err != nil || len(prompts) != 1 || prompts[0].ManagerSlackID != "UBOSS" {
		t.Fatalf("LookAhead = %+v, %v; want one prompt for UBOSS", prompts, err)
	}
	o := prompts[0]
	// The DM is out and Boss clicks Not needed before Prompted runs.
	if _, err := svc.DeclineOnboarding(ctx, o.Key, "UBOSS", "starts remote, already has a key"); err != nil {
		t.Fatal(err)
	}
	cur, err := svc.Prompted(ctx, o, approvals.MessageRef{Channel: "D1", TS: "1.2"})
	if err != nil || cur.State != approvals.OnboardingDeclined || cur.Prompt.TS != "1.2" {
		t.Fatalf("after Prompted: %+v, %v; want the decline kept and the prompt recorded", cur, err)
	}
	_, err = svc.Submit(ctx, approvals.Draft{Requester: "UBOSS", TargetEmail: o.UPN, Reason: "first day", UsableOnce: true, Onboarding: o.Key})
	if approvals.ErrorCode(err) != approvals.Conflict || !strings.Contains(err.Error(), "No pass is needed for Ada New") {
		t.Fatalf("a request after the decline: %v, want a conflict naming the decline", err)
	}
	if again, _ := svc.LookAhead(ctx); len(again) != 0 {
		t.Fatalf("asked again: %+v", again)
	}
}

// TestOnboardingRoutesAroundAManagerOnlyForGood: a manager who may not request passes is not sent
// a DM they cannot act on (the channel is asked, saying why), and a chat lookup that fails for
// now asks nobody, and asks again later, rather than going around the manager.
func TestOnboardingRoutesAroundAManagerOnlyForGood(t *testing.T) {
	ctx := context.Background()
	t.Run("not a requester", func(t *testing.T) {
		_, svc := onboardingHarness(t, approvals.Config{Requesters: []string{"UAPPR"}}, nil)
		prompts, err := svc.LookAhead(ctx)
		if err != nil || len(prompts) != 1 || !prompts[0].AskedInChannel() || !strings.Contains(prompts[0].ManagerWhy, "TAP_REQUESTERS") {
			t.Fatalf("LookAhead = %+v, %v; want the channel asked, saying the manager may not request", prompts, err)
		}
	})
	t.Run("chat cannot say now", func(t *testing.T) {
		h := newHarness(t, approvals.Config{})
		people := &flakyPeople{fakePeople: h.people, failing: map[string]error{"boss@example.com": errors.New("users.lookupByEmail: ratelimited")}}
		_, svc := onboardingHarness(t, approvals.Config{}, people)
		prompts, err := svc.LookAhead(ctx)
		if err != nil || len(prompts) != 0 {
			t.Fatalf("LookAhead = %+v, %v; want nobody asked yet", prompts, err)
		}
		people.failing = nil
		prompts, err = svc.LookAhead(ctx)
		if err != nil || len(prompts) != 1 || prompts[0].ManagerSlackID != "UBOSS" {
			t.Fatalf("the next LookAhead = %+v, %v; want the manager asked", prompts, err)
		}
	})
}
