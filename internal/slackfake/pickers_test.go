package slackfake_test

import (
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/tapbot/tapbot/internal/slackfake"
)

// TestDateAndTimePickers: what a person picks in date, time and datetime pickers reaches the
// app in view.state as Slack sends it, a picker left alone submits its initial value or nothing,
// one the person cleared arrives empty, and a time picker that names a zone reports it.
func TestDateAndTimePickers(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	got := make(chan slack.InteractionCallback, 2)
	triggers := make(chan string, 1)
	api, _ := startBot(t, f, func(sm *socketmode.Client, evt socketmode.Event) {
		_ = sm.Ack(*evt.Request)
		switch d := evt.Data.(type) {
		case slack.SlashCommand:
			triggers <- d.TriggerID
		case slack.InteractionCallback:
			got <- d
		}
	})
	trigger := func() string {
		t.Helper()
		if _, err := f.SlashCommand(ctxT(t, 5*time.Second), "U1", "C1", "/tap", ""); err != nil {
			t.Fatal(err)
		}
		return <-triggers
	}
	ctx := ctxT(t, 10*time.Second)
	clock := slack.NewTimePickerBlockElement("time")
	clock.Timezone = "Europe/Berlin"
	clock.InitialTime = "09:00"
	optional := func(b *slack.InputBlock) *slack.InputBlock { b.Optional = true; return b }
	view := modal("When",
		optional(slack.NewInputBlock("date", plain("Date"), nil, slack.NewDatePickerBlockElement("date"))),
		optional(slack.NewInputBlock("time", plain("Time"), nil, clock)),
		optional(slack.NewInputBlock("moment", plain("Moment"), nil, slack.NewDateTimePickerBlockElement("moment"))))
	submit := func(values map[string]map[string]slackfake.InputValue) map[string]map[string]slack.BlockAction {
		t.Helper()
		v, err := api.OpenViewContext(ctx, trigger(), view)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.SubmitView(ctx, "U1", v.ID, values); err != nil {
			t.Fatal(err)
		}
		select {
		case cb := <-got:
			return cb.View.State.Values
		case <-ctx.Done():
			t.Fatal("no view_submission reached the app")
		}
		return nil
	}
	state := submit(map[string]map[string]slackfake.InputValue{
		"date": {"date": slackfake.PickDate("2026-12-01")}, "time": {"time": slackfake.PickTime("09:30")},
		"moment": {"moment": slackfake.PickDateTime(1796115600)},
	})
	if d, tm, m := state["date"]["date"], state["time"]["time"], state["moment"]["moment"]; d.SelectedDate != "2026-12-01" ||
		tm.SelectedTime != "09:30" || tm.Timezone != "Europe/Berlin" || m.SelectedDateTime != 1796115600 {
		t.Fatalf("picked values arrived as date %q, time %q (%q), moment %d", d.SelectedDate, tm.SelectedTime, tm.Timezone, m.SelectedDateTime)
	}
	untouched := submit(nil)
	if d, tm, m := untouched["date"]["date"], untouched["time"]["time"], untouched["moment"]["moment"]; d.SelectedDate != "" || tm.SelectedTime != "09:00" || m.SelectedDateTime != 0 {
		t.Fatalf("untouched pickers arrived as %q, %q, %d; want empty, the initial 09:00, empty", d.SelectedDate, tm.SelectedTime, m.SelectedDateTime)
	}
	cleared := submit(map[string]map[string]slackfake.InputValue{"time": {"time": slackfake.PickTime("")}})
	if tm := cleared["time"]["time"]; tm.SelectedTime != "" {
		t.Fatalf("a cleared time picker arrived as %q", tm.SelectedTime)
	}
	requireNoViolations(t, f)
}
