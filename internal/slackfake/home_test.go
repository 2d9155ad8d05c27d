package slackfake_test

import (
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/tapbot/tapbot/internal/slackfake"
)

func home(meta string, blocks ...slack.Block) slack.HomeTabViewRequest {
	return slack.HomeTabViewRequest{Type: slack.VTHomeTab, PrivateMetadata: meta, Blocks: slack.Blocks{BlockSet: blocks}}
}

// TestAppHome drives the Home tab as a bot does: it answers app_home_opened with views.publish,
// and a click in the Home tab arrives as block_actions from a view of type home.
func TestAppHome(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	opened := make(chan *slackevents.AppHomeOpenedEvent, 2)
	clicks := make(chan slack.InteractionCallback, 1)
	api, _ := startBot(t, f, func(sm *socketmode.Client, evt socketmode.Event) {
		_ = sm.Ack(*evt.Request)
		switch d := evt.Data.(type) {
		case slackevents.EventsAPIEvent:
			if e, ok := d.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent); ok {
				opened <- e
			}
		case slack.InteractionCallback:
			clicks <- d
		}
	})
	ctx := ctxT(t, 10*time.Second)

	if _, err := f.OpenAppHome(ctx, "U1", "home"); err != nil {
		t.Fatal(err)
	}
	e := <-opened
	if e.User != "U1" || e.Tab != "home" || e.Channel != f.DMChannel("U1") || e.View != nil {
		t.Fatalf("first app_home_opened: %+v", e)
	}
	v, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U1",
		View: home("for U1", section("hello"), slack.NewActionBlock("a", button("go", "42", "Go")))})
	if err != nil {
		t.Fatal(err)
	}
	if v.Type != slack.VTHomeTab || v.ID == "" || v.PrivateMetadata != "for U1" {
		t.Fatalf("published view: %+v", v.View)
	}
	got, ok := f.HomeView("U1")
	if !ok || got.ID != v.ID || !strings.Contains(got.PlainText(), "hello") {
		t.Fatalf("HomeView = %+v, %v", got, ok)
	}

	// Publishing again replaces the view in place; a stale hash is refused.
	again, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U1", View: home("for U1", section("updated"),
		slack.NewActionBlock("a", button("go", "42", "Go"))), Hash: &v.Hash})
	if err != nil || again.ID != v.ID || again.Hash == v.Hash {
		t.Fatalf("republish = %+v, %v; want same ID, new hash", again, err)
	}
	if _, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U1", View: home("", section("x")), Hash: &v.Hash}); slackErr(t, err) != "hash_conflict" {
		t.Fatalf("stale hash: %v", err)
	}
	requireViolation(t, f, "views.publish: hash_conflict")
	f.ResetViolations()
	if n := len(f.HomeViews("U1")); n != 2 {
		t.Fatalf("%d publishes recorded, want 2", n)
	}

	if _, err := f.OpenAppHome(ctx, "U1", "home"); err != nil {
		t.Fatal(err)
	}
	if e := <-opened; e.View == nil || e.View.ID != v.ID || e.View.Type != slack.VTHomeTab {
		t.Fatalf("second app_home_opened carries view %+v", e.View)
	}

	if _, err := f.ClickHomeButton(ctx, "U1", "go", "43"); err == nil {
		t.Fatal("clicked a button the Home tab does not show")
	}
	if _, err := f.ClickHomeButton(ctx, "U2", "go", "42"); err == nil {
		t.Fatal("U2 clicked in a Home tab never published for them")
	}
	if _, err := f.ClickHomeButton(ctx, "U1", "go", "42"); err != nil {
		t.Fatal(err)
	}
	cb := <-clicks
	if cb.Container.Type != "view" || cb.Container.ViewID != v.ID || cb.View.Type != slack.VTHomeTab ||
		cb.View.PrivateMetadata != "for U1" || cb.User.ID != "U1" || len(cb.ActionCallback.BlockActions) != 1 ||
		cb.ActionCallback.BlockActions[0].Value != "42" {
		t.Fatalf("home block_actions: container %+v, view %s %q, actions %+v", cb.Container, cb.View.Type, cb.View.PrivateMetadata, cb.ActionCallback.BlockActions)
	}
	requireNoViolations(t, f)

	// What Slack refuses.
	refusals := []struct {
		name string
		req  slack.PublishViewContextRequest
		want string
	}{
		{"unknown user", slack.PublishViewContextRequest{UserID: "U404", View: home("", section("x"))}, "invalid_arguments"},
		{"a modal", slack.PublishViewContextRequest{UserID: "U1", View: slack.HomeTabViewRequest{Type: slack.VTModal,
			Blocks: slack.Blocks{BlockSet: []slack.Block{section("x")}}}}, "invalid_arguments"},
		{"too many blocks", slack.PublishViewContextRequest{UserID: "U1", View: home("", func() []slack.Block {
			var bs []slack.Block
			for range 101 {
				bs = append(bs, section("x"))
			}
			return bs
		}()...)}, "invalid_arguments"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := api.PublishViewContext(ctx, tc.req); slackErr(t, err) != tc.want {
				t.Fatalf("error %v, want %s", err, tc.want)
			}
		})
	}
	f.SetHomeTab(false)
	if _, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U1", View: home("", section("x"))}); slackErr(t, err) != "not_enabled" {
		t.Fatalf("Home tab disabled: %v", err)
	}
	requireViolation(t, f, "views.publish: not_enabled")
}
