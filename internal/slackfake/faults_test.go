package slackfake_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/tapbot/tapbot/internal/slackfake"
)

// TestFailNextRefusesWithoutDoing: an injected refusal reaches the client as Slack's error,
// changes nothing, is no violation, and only the next call gets it.
func TestFailNextRefusesWithoutDoing(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	api, trigger := triggerSource(t, f)
	ctx := ctxT(t, 10*time.Second)
	v, err := api.OpenViewContext(ctx, trigger(), modal("Before", section("one")))
	if err != nil {
		t.Fatal(err)
	}
	f.FailNext("views.update", "not_found", 1)
	_, err = api.UpdateViewContext(ctx, modal("Refused", section("two")), "", "", v.ID)
	if got := slackErr(t, err); got != "not_found" {
		t.Fatalf("refused update: %q", got)
	}
	if open := f.OpenViews("U1"); len(open) != 1 || open[0].Title != "Before" {
		t.Fatalf("a refused update changed the modal: %+v", open)
	}
	requireNoViolations(t, f)
	if _, err := api.UpdateViewContext(ctx, modal("After", section("three")), "", "", v.ID); err != nil {
		t.Fatalf("the next update: %v", err)
	}
}

// TestResetAfterApplying: the call does its work and the client sees only a broken connection,
// as after a reset or timeout on the way back; the next call is answered as usual.
func TestResetAfterApplying(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	api, trigger := triggerSource(t, f)
	ctx := ctxT(t, 10*time.Second)
	v, err := api.OpenViewContext(ctx, trigger(), modal("Before", section("one")))
	if err != nil {
		t.Fatal(err)
	}
	f.ResetAfterApplying("views.update", 1)
	_, err = api.UpdateViewContext(ctx, modal("Applied", section("two")), "", "", v.ID)
	var se slack.SlackErrorResponse
	if err == nil || errors.As(err, &se) {
		t.Fatalf("update through a reset = %v, want a transport error", err)
	}
	if open := f.OpenViews("U1"); len(open) != 1 || open[0].Title != "Applied" {
		t.Fatalf("the update was not applied: %+v", open)
	}
	var reset int
	for _, c := range f.CallLog() {
		if c.Method == "views.update" && c.Reset {
			reset++
		}
	}
	if reset != 1 {
		t.Fatalf("%d views.update calls marked Reset, want 1", reset)
	}
	if _, err := api.UpdateViewContext(ctx, modal("After", section("three")), "", "", v.ID); err != nil {
		t.Fatalf("the next update: %v", err)
	}

	ch, ts, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("first", false))
	if err != nil {
		t.Fatal(err)
	}
	f.ResetAfterApplying("chat.update", 1)
	if _, _, _, err := api.UpdateMessageContext(ctx, ch, ts, slack.MsgOptionText("second", false)); err == nil {
		t.Fatal("chat.update through a reset succeeded")
	}
	if m, _ := f.Message(slackfake.MessageRef{Channel: ch, TS: ts}); m.Text != "second" {
		t.Fatalf("message text %q, want the update applied", m.Text)
	}
	requireNoViolations(t, f)
}

// TestRouteToOneConnection: envelopes can be sent over one chosen connection, and spread again.
func TestRouteToOneConnection(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	ctx := ctxT(t, 10*time.Second)
	var mu sync.Mutex
	perConn := map[int]int{}
	for conn := 1; conn <= 2; conn++ {
		startBot(t, f, func(sm *socketmode.Client, evt socketmode.Event) {
			mu.Lock()
			perConn[conn]++
			mu.Unlock()
			_ = sm.Ack(*evt.Request)
		})
		// Started one after the other, so each bot's connection has a known number.
		if err := f.WaitFor(ctx, func() bool { return f.TotalConnections() == conn }); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.WaitConnections(ctx, 2); err != nil {
		t.Fatal(err)
	}
	send := func(n int) {
		t.Helper()
		for range n {
			if _, err := f.SlashCommand(ctx, "U1", "C1", "/tap", ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.RouteTo(2)
	send(3)
	f.RouteTo(1)
	send(1)
	f.RouteTo(0)
	send(2)
	mu.Lock()
	defer mu.Unlock()
	if perConn[1] != 2 || perConn[2] != 4 {
		t.Fatalf("deliveries per connection = %v, want 2 on the first (1 routed, 1 spread) and 4 on the second", perConn)
	}
	if got := strings.Join(f.Violations(), "; "); got != "" {
		t.Fatal(got)
	}
}
