package slackfake_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/tapbot/tapbot/internal/slackfake"
)

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newFake starts a fake with two users, a channel and a user group.
func newFake(t *testing.T, opts slackfake.Options) *slackfake.Server {
	t.Helper()
	f := slackfake.New(opts)
	t.Cleanup(f.Close)
	f.AddUser(slackfake.User{ID: "U1", Name: "alice", RealName: "Alice A", Email: "alice@example.com", TZ: "UTC"})
	f.AddUser(slackfake.User{ID: "U2", Name: "bob", RealName: "Bob B", Email: "bob@example.com"})
	f.AddUser(slackfake.User{ID: "U3", Name: "gone", Deleted: true})
	f.AddChannel("C1", "U1", "U2")
	f.AddGroup("S1", "U1", "U2")
	return f
}

func apiClient(f *slackfake.Server) *slack.Client {
	return slack.New(f.BotToken(), slack.OptionAPIURL(f.APIURL()), slack.OptionAppLevelToken(f.AppToken()))
}

// handler is the test bot's reaction to one Socket Mode request; it must ack.
type handler func(sm *socketmode.Client, evt socketmode.Event)

// startBot connects a real socketmode client to the fake and feeds every
// request to h until the test ends.
func startBot(t *testing.T, f *slackfake.Server, h handler) (*slack.Client, *socketmode.Client) {
	t.Helper()
	api := apiClient(f)
	sm := socketmode.New(api, socketmode.OptionLog(log.New(io.Discard, "", 0)))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = sm.RunContext(ctx) })
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-sm.Events:
				switch evt.Type {
				case socketmode.EventTypeSlashCommand, socketmode.EventTypeInteractive, socketmode.EventTypeEventsAPI:
					h(sm, evt)
				}
			}
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return api, sm
}

// ackAll acks every request without payload.
func ackAll(sm *socketmode.Client, evt socketmode.Event) { _ = sm.Ack(*evt.Request) }

func requireNoViolations(t *testing.T, f *slackfake.Server) {
	t.Helper()
	if v := f.Violations(); len(v) > 0 {
		t.Fatalf("unexpected violations:\n%s", strings.Join(v, "\n"))
	}
}

func requireViolation(t *testing.T, f *slackfake.Server, substr string) {
	t.Helper()
	for _, v := range f.Violations() {
		if strings.Contains(v, substr) {
			return
		}
	}
	t.Fatalf("no violation containing %q in %q", substr, f.Violations())
}

func slackErr(t *testing.T, err error) string {
	t.Helper()
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) {
		t.Fatalf("want a Slack error response, got %v", err)
	}
	return se.Err
}

func section(text string) slack.Block {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

func button(actionID, value, label string) *slack.ButtonBlockElement {
	return slack.NewButtonBlockElement(actionID, value, slack.NewTextBlockObject(slack.PlainTextType, label, false, false))
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

func modal(title string, blocks ...slack.Block) slack.ModalViewRequest {
	return slack.ModalViewRequest{
		Type:       slack.VTModal,
		Title:      plain(title),
		Submit:     plain("Save"),
		Close:      plain("Cancel"),
		CallbackID: "note_modal",
		Blocks:     slack.Blocks{BlockSet: blocks},
	}
}

func noteInput() slack.Block {
	return slack.NewInputBlock("note", plain("Note"), nil, slack.NewPlainTextInputBlockElement(plain("type here"), "note_input"))
}

// triggerSource returns a function that mints a fresh trigger_id by running
// a slash command through a bot that hands the trigger over.
func triggerSource(t *testing.T, f *slackfake.Server) (*slack.Client, func() string) {
	t.Helper()
	triggers := make(chan string, 1)
	api, _ := startBot(t, f, func(sm *socketmode.Client, evt socketmode.Event) {
		_ = sm.Ack(*evt.Request)
		if cmd, ok := evt.Data.(slack.SlashCommand); ok {
			triggers <- cmd.TriggerID
		}
	})
	return api, func() string {
		t.Helper()
		if _, err := f.SlashCommand(ctxT(t, 5*time.Second), "U1", "C1", "/tap", "modal"); err != nil {
			t.Fatal(err)
		}
		return <-triggers
	}
}

func TestSlashCommandAckShowsEphemeral(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	got := make(chan slack.SlashCommand, 1)
	startBot(t, f, func(sm *socketmode.Client, evt socketmode.Event) {
		cmd := evt.Data.(slack.SlashCommand)
		if !evt.Request.AcceptsResponsePayload {
			t.Errorf("slash command envelope should accept a response payload")
		}
		_ = sm.Ack(*evt.Request, map[string]any{"text": "got " + cmd.Text})
		got <- cmd
	})

	ack, err := f.SlashCommand(ctxT(t, 5*time.Second), "U1", "C1", "/tap", "hello world")
	if err != nil {
		t.Fatal(err)
	}
	cmd := <-got
	if cmd.Command != "/tap" || cmd.Text != "hello world" || cmd.UserID != "U1" || cmd.UserName != "alice" ||
		cmd.ChannelID != "C1" || cmd.TeamID != f.TeamID() || cmd.TriggerID == "" || !strings.HasPrefix(cmd.ResponseURL, f.BaseURL()) {
		t.Fatalf("slash command payload: %+v", cmd)
	}
	if ack.EnvelopeID == "" || ack.Type != "slash_commands" || !strings.Contains(string(ack.Payload), "got hello world") || ack.Latency <= 0 {
		t.Fatalf("ack: %+v", ack)
	}
	eph := f.Ephemerals("U1")
	if len(eph) != 1 || eph[0].PlainText() != "got hello world" || eph[0].Channel != "C1" || eph[0].Source != "slash_command_ack" {
		t.Fatalf("ephemerals: %+v", eph)
	}
	if strings.Contains(f.AllPersistedText(), "got hello world") {
		t.Fatal("an ephemeral ack must not be persisted")
	}
	if acks := f.Acks(); len(acks) != 1 || acks[0].EnvelopeID != ack.EnvelopeID {
		t.Fatalf("acks: %+v", acks)
	}
	requireNoViolations(t, f)

	// A user outside the channel cannot run commands there.
	f.AddUser(slackfake.User{ID: "U9", Name: "outsider"})
	if _, err := f.SlashCommand(ctxT(t, time.Second), "U9", "C1", "/tap", ""); err == nil {
		t.Fatal("outsider ran a command in C1")
	}
}

func TestPostUpdateDeleteKeepsHistory(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	api := apiClient(f)
	ctx := ctxT(t, 10*time.Second)

	ch, ts, err := api.PostMessageContext(ctx, "C1",
		slack.MsgOptionText("fallback", false),
		slack.MsgOptionBlocks(section("token is *s3cret*"), slack.NewActionBlock("", button("approve", "req-1", "Approve"))))
	if err != nil {
		t.Fatal(err)
	}
	if ch != "C1" || ts == "" {
		t.Fatalf("post returned %q %q", ch, ts)
	}
	msgs := f.Messages("C1")
	if len(msgs) != 1 || msgs[0].TS != ts || !strings.Contains(msgs[0].PlainText(), "token is *s3cret*") {
		t.Fatalf("messages: %+v", msgs)
	}
	if b := msgs[0].Buttons(); len(b) != 1 || b[0].ActionID != "approve" || b[0].Value != "req-1" || b[0].Text != "Approve" || b[0].BlockID == "" {
		t.Fatalf("buttons (block_id must be filled in like Slack does): %+v", b)
	}

	if _, _, _, err := api.UpdateMessageContext(ctx, "C1", ts, slack.MsgOptionText("redacted", false), slack.MsgOptionBlocks(section("token hidden"))); err != nil {
		t.Fatal(err)
	}
	m, _ := f.Message(slackfake.MessageRef{Channel: "C1", TS: ts})
	if m.Text != "redacted" || len(m.History) != 2 || m.History[0].Source != "chat.postMessage" || m.History[1].Source != "chat.update" {
		t.Fatalf("after update: %+v", m)
	}
	if len(m.Buttons()) != 0 {
		t.Fatalf("buttons survived the update: %+v", m.Buttons())
	}
	if !strings.Contains(f.AllPersistedText(), "s3cret") || !strings.Contains(f.AllPersistedText(), "req-1") {
		t.Fatal("edit history (including button values) must stay in AllPersistedText")
	}

	if _, _, err := api.DeleteMessageContext(ctx, "C1", ts); err != nil {
		t.Fatal(err)
	}
	if len(f.Messages("C1")) != 0 {
		t.Fatal("deleted message still listed")
	}
	if !strings.Contains(f.AllPersistedText(), "redacted") {
		t.Fatal("deleted messages were once visible and must stay in AllPersistedText")
	}

	// A user ID as channel means the app's DM; Slack answers with the D id.
	dm, dts, err := api.PostMessageContext(ctx, "U1", slack.MsgOptionText("hi alice", false))
	if err != nil {
		t.Fatal(err)
	}
	if dm != f.DMChannel("U1") || !strings.HasPrefix(dm, "D") {
		t.Fatalf("DM channel %q, want %q", dm, f.DMChannel("U1"))
	}
	conv, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U1"}})
	if err != nil || conv.ID != dm {
		t.Fatalf("conversations.open: %v %+v", err, conv)
	}
	if got := f.Messages("U1"); len(got) != 1 || got[0].Text != "hi alice" {
		t.Fatalf("DM messages: %+v", got)
	}
	if _, err := api.PostEphemeralContext(ctx, "C1", "U2", slack.MsgOptionText("psst", false)); err != nil {
		t.Fatal(err)
	}
	if e := f.Ephemerals("U2"); len(e) != 1 || e[0].Text != "psst" {
		t.Fatalf("ephemerals: %+v", e)
	}
	requireNoViolations(t, f)

	// Refusals Slack makes.
	f.AddChannel("C2")
	f.SetBotMember("C2", false)
	for _, tc := range []struct {
		name string
		do   func() error
		want string
	}{
		{"update via user id", func() error {
			_, _, _, err := api.UpdateMessageContext(ctx, "U1", dts, slack.MsgOptionText("x", false))
			return err
		}, "channel_not_found"},
		{"unknown channel", func() error {
			_, _, err := api.PostMessageContext(ctx, "C404", slack.MsgOptionText("x", false))
			return err
		}, "channel_not_found"},
		{"bot not in channel", func() error {
			_, _, err := api.PostMessageContext(ctx, "C2", slack.MsgOptionText("x", false))
			return err
		}, "not_in_channel"},
		{"empty message", func() error {
			_, _, err := api.PostMessageContext(ctx, "C1")
			return err
		}, "no_text"},
		{"update deleted", func() error {
			_, _, _, err := api.UpdateMessageContext(ctx, "C1", ts, slack.MsgOptionText("x", false))
			return err
		}, "message_not_found"},
		{"ephemeral to non-member", func() error {
			_, err := api.PostEphemeralContext(ctx, "C1", "U3", slack.MsgOptionText("x", false))
			return err
		}, "user_not_in_channel"},
		{"DM a deactivated user", func() error {
			_, _, err := api.PostMessageContext(ctx, "U3", slack.MsgOptionText("x", false))
			return err
		}, "user_disabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := slackErr(t, tc.do()); got != tc.want {
				t.Fatalf("error %q, want %q", got, tc.want)
			}
			requireViolation(t, f, tc.want)
		})
	}
}

func repeatBlocks(n int, b func(i int) slack.Block) []slack.Block {
	out := make([]slack.Block, n)
	for i := range out {
		out[i] = b(i)
	}
	return out
}

func TestMessageLimits(t *testing.T) {
	// Dozens of posts to one channel: this test is about the answers, not the rate limits.
	f := newFake(t, slackfake.Options{RateLimits: &slackfake.RateLimits{Off: true}})
	api := apiClient(f)
	ctx := ctxT(t, 20*time.Second)
	long := func(n int) string { return strings.Repeat("x", n) }
	fields := func(n, size int) []*slack.TextBlockObject {
		out := make([]*slack.TextBlockObject, n)
		for i := range out {
			out[i] = slack.NewTextBlockObject(slack.MarkdownType, long(size), false, false)
		}
		return out
	}
	buttons := func(n int) []slack.BlockElement {
		out := make([]slack.BlockElement, n)
		for i := range out {
			out[i] = button("a"+strings.Repeat("x", i), "v", "B")
		}
		return out
	}
	contextEls := func(n int) []slack.MixedElement {
		out := make([]slack.MixedElement, n)
		for i := range out {
			out[i] = plain("c")
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		blocks []slack.Block
		text   string
		want   string // "" means Slack accepts it
	}{
		{"header at limit", []slack.Block{slack.NewHeaderBlock(plain(long(150)))}, "", ""},
		{"header too long", []slack.Block{slack.NewHeaderBlock(plain(long(151)))}, "", "invalid_blocks"},
		{"header mrkdwn", []slack.Block{slack.NewHeaderBlock(slack.NewTextBlockObject(slack.MarkdownType, "h", false, false))}, "", "invalid_blocks"},
		{"section at limit", []slack.Block{section(long(3000))}, "", ""},
		{"section too long", []slack.Block{section(long(3001))}, "", "invalid_blocks"},
		{"section empty text", []slack.Block{section("")}, "x", "invalid_blocks"},
		{"10 fields", []slack.Block{slack.NewSectionBlock(nil, fields(10, 2000), nil)}, "", ""},
		{"11 fields", []slack.Block{slack.NewSectionBlock(nil, fields(11, 1), nil)}, "", "invalid_blocks"},
		{"field too long", []slack.Block{slack.NewSectionBlock(nil, fields(1, 2001), nil)}, "", "invalid_blocks"},
		{"50 blocks", repeatBlocks(50, func(int) slack.Block { return slack.NewDividerBlock() }), "x", ""},
		{"51 blocks", repeatBlocks(51, func(int) slack.Block { return slack.NewDividerBlock() }), "x", "invalid_blocks"},
		{"button text too long", []slack.Block{slack.NewActionBlock("", button("a", "v", long(76)))}, "", "invalid_blocks"},
		{"button value too long", []slack.Block{slack.NewActionBlock("", button("a", long(2001), "B"))}, "", "invalid_blocks"},
		{"action_id too long", []slack.Block{slack.NewActionBlock("", button(long(256), "v", "B"))}, "", "invalid_blocks"},
		{"duplicate action_id", []slack.Block{slack.NewActionBlock("", button("a", "1", "B"), button("a", "2", "C"))}, "", "invalid_blocks"},
		{"block_id too long", []slack.Block{slack.NewActionBlock(long(256), button("a", "v", "B"))}, "", "invalid_blocks"},
		{"duplicate block_id", []slack.Block{slack.NewActionBlock("b", button("a", "v", "B")), slack.NewActionBlock("b", button("c", "v", "B"))}, "", "invalid_blocks"},
		{"25 actions", []slack.Block{slack.NewActionBlock("", buttons(25)...)}, "", ""},
		{"26 actions", []slack.Block{slack.NewActionBlock("", buttons(26)...)}, "", "invalid_blocks"},
		{"10 context elements", []slack.Block{slack.NewContextBlock("", contextEls(10)...)}, "", ""},
		{"11 context elements", []slack.Block{slack.NewContextBlock("", contextEls(11)...)}, "", "invalid_blocks"},
		{"text at limit", nil, long(40000), ""},
		{"text too long", nil, long(40001), "msg_too_long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.ResetViolations()
			opts := []slack.MsgOption{}
			if tc.text != "" {
				opts = append(opts, slack.MsgOptionText(tc.text, false))
			}
			if tc.blocks != nil {
				opts = append(opts, slack.MsgOptionBlocks(tc.blocks...))
			}
			_, _, err := api.PostMessageContext(ctx, "C1", opts...)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Slack accepts this, fake said %v (%q)", err, f.Violations())
				}
				return
			}
			if got := slackErr(t, err); got != tc.want {
				t.Fatalf("error %q, want %q", got, tc.want)
			}
			requireViolation(t, f, "chat.postMessage: "+tc.want)
		})
	}

	// Malformed JSON the typed builders cannot produce, sent form-encoded
	// with the token as a parameter like slack-go's form methods do.
	for _, tc := range []struct{ blocks, want string }{
		{`{"type":"section"}`, "invalid_blocks_format"},
		{`[{"type":"bogus"}]`, "invalid_blocks"},
		{`["section"]`, "invalid_blocks"},
		{`[{"type":"section","text":{"type":"markdown","text":"x"}}]`, "invalid_blocks"},
		{`[{"type":"section","text":{"type":"mrkdwn","text":"ok"}}]`, ""},
	} {
		resp, err := http.PostForm(f.APIURL()+"chat.postMessage", url.Values{"token": {f.BotToken()}, "channel": {"C1"}, "blocks": {tc.blocks}})
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		_ = resp.Body.Close()
		if body.Error != tc.want {
			t.Errorf("blocks %s: error %q, want %q", tc.blocks, body.Error, tc.want)
		}
	}
}

func TestModalOpenSubmitErrorsThenClose(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	submissions := make(chan slack.InteractionCallback, 2)
	var attempt int
	startBot(t, f, func(sm *socketmode.Client, evt socketmode.Event) {
		switch data := evt.Data.(type) {
		case slack.SlashCommand:
			// Open the modal before acking, within the trigger's 3s.
			if _, err := sm.OpenViewContext(context.Background(), data.TriggerID, modal("New note", section("Write a note"), noteInput())); err != nil {
				t.Errorf("views.open: %v", err)
			}
			_ = sm.Ack(*evt.Request)
		case slack.InteractionCallback:
			attempt++
			if attempt == 1 {
				_ = sm.Ack(*evt.Request, slack.NewErrorsViewSubmissionResponse(map[string]string{"note": "too short"}))
			} else {
				_ = sm.Ack(*evt.Request)
			}
			submissions <- data
		}
	})
	ctx := ctxT(t, 10*time.Second)
	if _, err := f.SlashCommand(ctx, "U1", "C1", "/tap", "note"); err != nil {
		t.Fatal(err)
	}
	open := f.OpenViews("U1")
	if len(open) != 1 || open[0].Title != "New note" || open[0].CallbackID != "note_modal" || !strings.Contains(open[0].PlainText(), "Write a note") {
		t.Fatalf("open views: %+v", open)
	}
	viewID := open[0].ID

	ack, err := f.SubmitView(ctx, "U1", viewID, map[string]map[string]slackfake.InputValue{"note": {"note_input": slackfake.TextInput("hi")}})
	if err != nil {
		t.Fatal(err)
	}
	sub := <-submissions
	if sub.Type != slack.InteractionTypeViewSubmission || sub.View.ID != viewID || sub.View.CallbackID != "note_modal" ||
		sub.View.State == nil || sub.View.State.Values["note"]["note_input"].Value != "hi" || sub.User.ID != "U1" {
		t.Fatalf("view_submission: %+v", sub)
	}
	if ack.ResponseAction != "errors" || len(f.OpenViews("U1")) != 1 {
		t.Fatalf("errors ack must keep the view open: %+v %+v", ack, f.OpenViews("U1"))
	}

	if _, err := f.SubmitView(ctx, "U1", viewID, map[string]map[string]slackfake.InputValue{"note": {"note_input": slackfake.TextInput("a longer note")}}); err != nil {
		t.Fatal(err)
	}
	<-submissions
	if len(f.OpenViews("U1")) != 0 {
		t.Fatal("an empty ack must close the view")
	}
	var events []string
	for _, v := range f.Views("U1") {
		events = append(events, v.Event)
	}
	if strings.Join(events, ",") != "open,ack_errors,closed" {
		t.Fatalf("view history %v", events)
	}
	requireNoViolations(t, f)

	// What a Slack client cannot submit.
	if _, err := f.SubmitView(ctx, "U1", viewID, nil); err == nil {
		t.Fatal("submitted a closed view")
	}
}

func TestSubmitViewRefusesWhatSlackCannotSend(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	api, trigger := triggerSource(t, f)
	ctx := ctxT(t, 10*time.Second)
	sel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("pick"), "color",
		slack.NewOptionBlockObject("red", plain("Red"), nil), slack.NewOptionBlockObject("blue", plain("Blue"), nil))
	v, err := api.OpenViewContext(ctx, trigger(), modal("Pick", noteInput(), slack.NewInputBlock("colors", plain("Color"), nil, sel)))
	if err != nil {
		t.Fatal(err)
	}
	for name, values := range map[string]map[string]map[string]slackfake.InputValue{
		"required input empty": {"colors": {"color": slackfake.SelectOption("red")}},
		"unknown block":        {"note": {"note_input": slackfake.TextInput("x")}, "nope": {"a": slackfake.TextInput("x")}},
		"unknown action":       {"note": {"other": slackfake.TextInput("x")}, "colors": {"color": slackfake.SelectOption("red")}},
		"option not offered":   {"note": {"note_input": slackfake.TextInput("x")}, "colors": {"color": slackfake.SelectOption("green")}},
	} {
		if _, err := f.SubmitView(ctx, "U1", v.ID, values); err == nil {
			t.Errorf("%s: SubmitView accepted it", name)
		}
	}
	requireNoViolations(t, f)
}

func TestTriggerIDSingleUseAndExpiry(t *testing.T) {
	clk := newClock()
	f := newFake(t, slackfake.Options{Now: clk.Now})
	api, trigger := triggerSource(t, f)
	ctx := ctxT(t, 10*time.Second)
	view := modal("Hello", section("hi"))

	tr := trigger()
	if _, err := api.OpenViewContext(ctx, tr, view); err != nil {
		t.Fatal(err)
	}
	requireNoViolations(t, f)

	_, err := api.OpenViewContext(ctx, tr, view)
	if got := slackErr(t, err); got != "exchanged_trigger_id" {
		t.Fatalf("reused trigger: %q", got)
	}

	tr = trigger()
	clk.Advance(slackfake.TriggerTTL + time.Millisecond)
	_, err = api.OpenViewContext(ctx, tr, view)
	if got := slackErr(t, err); got != "expired_trigger_id" {
		t.Fatalf("expired trigger: %q", got)
	}

	_, err = api.OpenViewContext(ctx, "1.2.bogus", view)
	if got := slackErr(t, err); got != "invalid_trigger_id" {
		t.Fatalf("unknown trigger: %q", got)
	}
	requireViolation(t, f, "views.open: exchanged_trigger_id")
	requireViolation(t, f, "views.open: expired_trigger_id")
}

func TestViewLimits(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	api, trigger := triggerSource(t, f)
	ctx := ctxT(t, 30*time.Second)
	long := func(n int) string { return strings.Repeat("y", n) }
	with := func(mut func(v *slack.ModalViewRequest)) slack.ModalViewRequest {
		v := modal("Title", section("body"))
		mut(&v)
		return v
	}
	for _, tc := range []struct {
		name string
		view slack.ModalViewRequest
		want string
	}{
		{"title at limit", with(func(v *slack.ModalViewRequest) { v.Title = plain(long(24)) }), ""},
		{"title too long", with(func(v *slack.ModalViewRequest) { v.Title = plain(long(25)) }), "invalid_arguments"},
		{"title mrkdwn", with(func(v *slack.ModalViewRequest) {
			v.Title = slack.NewTextBlockObject(slack.MarkdownType, "t", false, false)
		}), "invalid_arguments"},
		{"submit too long", with(func(v *slack.ModalViewRequest) { v.Submit = plain(long(25)) }), "invalid_arguments"},
		{"close too long", with(func(v *slack.ModalViewRequest) { v.Close = plain(long(25)) }), "invalid_arguments"},
		{"callback_id too long", with(func(v *slack.ModalViewRequest) { v.CallbackID = long(256) }), "invalid_arguments"},
		{"private_metadata too long", with(func(v *slack.ModalViewRequest) { v.PrivateMetadata = long(3001) }), "invalid_arguments"},
		{"100 blocks", with(func(v *slack.ModalViewRequest) {
			v.Blocks.BlockSet = repeatBlocks(100, func(int) slack.Block { return slack.NewDividerBlock() })
		}), ""},
		{"101 blocks", with(func(v *slack.ModalViewRequest) {
			v.Blocks.BlockSet = repeatBlocks(101, func(int) slack.Block { return slack.NewDividerBlock() })
		}), "invalid_arguments"},
		{"input without submit", with(func(v *slack.ModalViewRequest) { v.Submit = nil; v.Blocks.BlockSet = []slack.Block{noteInput()} }), "invalid_arguments"},
		{"section too long", with(func(v *slack.ModalViewRequest) { v.Blocks.BlockSet = []slack.Block{section(long(3001))} }), "invalid_arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.ResetViolations()
			_, err := api.OpenViewContext(ctx, trigger(), tc.view)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Slack accepts this, fake said %v (%q)", err, f.Violations())
				}
				return
			}
			if got := slackErr(t, err); got != tc.want {
				t.Fatalf("error %q, want %q", got, tc.want)
			}
			requireViolation(t, f, "views.open: "+tc.want+": [ERROR]")
		})
	}
}

func TestViewUpdateHashPushAndStack(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	ctx := ctxT(t, 15*time.Second)
	nav := func() slack.Block { return slack.NewActionBlock("nav", button("next", "2", "Next")) }
	triggers := make(chan string, 1)
	pushed := make(chan error, 1)
	api, _ := startBot(t, f, func(sm *socketmode.Client, evt socketmode.Event) {
		_ = sm.Ack(*evt.Request)
		switch d := evt.Data.(type) {
		case slack.SlashCommand:
			triggers <- d.TriggerID
		case slack.InteractionCallback:
			if d.Type != slack.InteractionTypeBlockActions || d.Container.Type != "view" || d.View.ID == "" ||
				len(d.ActionCallback.BlockActions) != 1 || d.ActionCallback.BlockActions[0].ActionID != "next" {
				t.Errorf("block_actions in a view: %+v", d)
			}
			_, err := sm.PushViewContext(ctx, d.TriggerID, modal("Pushed", section("p"), nav()))
			pushed <- err
		}
	})
	trigger := func() string {
		if _, err := f.SlashCommand(ctx, "U1", "C1", "/tap", ""); err != nil {
			t.Fatal(err)
		}
		return <-triggers
	}

	v, err := api.OpenViewContext(ctx, trigger(), modal("Step 1", section("one"), nav()))
	if err != nil {
		t.Fatal(err)
	}
	u, err := api.UpdateViewContext(ctx, modal("Step 1b", section("one b"), nav()), "", v.Hash, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != v.ID || u.Hash == v.Hash || u.Title.Text != "Step 1b" {
		t.Fatalf("update must keep the id and rotate the hash: %+v", u.View)
	}
	_, err = api.UpdateViewContext(ctx, modal("Stale", section("x")), "", v.Hash, v.ID)
	if got := slackErr(t, err); got != "hash_conflict" {
		t.Fatalf("stale hash: %q", got)
	}
	_, err = api.PushViewContext(ctx, trigger(), modal("Pushed", section("p")))
	if got := slackErr(t, err); got != "invalid_trigger_id" {
		t.Fatalf("push with a trigger from a message: %q", got)
	}
	f.ResetViolations()

	current := v.ID
	for depth := 2; depth <= slackfake.MaxViewStack; depth++ {
		if _, err := f.ClickViewButton(ctx, "U1", current, "next", "2"); err != nil {
			t.Fatal(err)
		}
		if err := <-pushed; err != nil {
			t.Fatal(err)
		}
		open := f.OpenViews("U1")
		if len(open) != depth || open[0].ID != v.ID {
			t.Fatalf("stack after push: %+v", open)
		}
		current = open[depth-1].ID
	}
	if _, err := f.ClickViewButton(ctx, "U1", v.ID, "next", "2"); err == nil {
		t.Fatal("clicked a button in a view the user does not see")
	}
	if _, err := f.ClickViewButton(ctx, "U1", current, "next", "2"); err != nil {
		t.Fatal(err)
	}
	if got := slackErr(t, <-pushed); got != "push_limit_reached" {
		t.Fatalf("fourth view: %q", got)
	}
	if _, err := f.CloseView(ctx, "U1", current); err != nil {
		t.Fatal(err)
	}
	if n := len(f.OpenViews("U1")); n != 2 {
		t.Fatalf("close pops one view, %d left", n)
	}
	_, err = api.UpdateViewContext(ctx, modal("Gone", section("x")), "", "", current)
	if got := slackErr(t, err); got != "not_found" {
		t.Fatalf("update of a closed view: %q", got)
	}
}

func TestResponseURLBudgetAndExpiry(t *testing.T) {
	clk := newClock()
	f := newFake(t, slackfake.Options{Now: clk.Now})
	urls := make(chan string, 1)
	api, _ := startBot(t, f, func(sm *socketmode.Client, evt socketmode.Event) {
		_ = sm.Ack(*evt.Request)
		urls <- evt.Data.(slack.SlashCommand).ResponseURL
	})
	ctx := ctxT(t, 10*time.Second)
	responseURL := func() string {
		if _, err := f.SlashCommand(ctx, "U2", "C1", "/tap", ""); err != nil {
			t.Fatal(err)
		}
		return <-urls
	}

	u := responseURL()
	for i := 1; i <= slackfake.ResponseURLMaxUses; i++ {
		var err error
		switch i {
		case 1: // slack-go's MsgOptionResponseURL path
			_, _, err = api.PostMessageContext(ctx, "", slack.MsgOptionText("working", false), slack.MsgOptionResponseURL(u, slack.ResponseTypeEphemeral))
		case 2:
			_, _, err = api.PostMessageContext(ctx, "", slack.MsgOptionText("done", false), slack.MsgOptionResponseURL(u, slack.ResponseTypeInChannel))
		default: // the webhook path
			err = slack.PostWebhookContext(ctx, u, &slack.WebhookMessage{Text: "update"})
		}
		if err != nil {
			t.Fatalf("use %d: %v", i, err)
		}
	}
	if e := f.Ephemerals("U2"); len(e) != 4 || e[0].Text != "working" || e[0].Source != "response_url" {
		t.Fatalf("ephemerals: %+v", e)
	}
	if m, ok := f.LastMessage("C1"); !ok || m.Text != "done" || m.Source != "response_url" {
		t.Fatalf("in_channel response: %+v", m)
	}
	requireNoViolations(t, f)

	err := slack.PostWebhookContext(ctx, u, &slack.WebhookMessage{Text: "sixth"})
	var sce slack.StatusCodeError
	if !errors.As(err, &sce) || sce.Code != http.StatusNotFound {
		t.Fatalf("sixth use: %v", err)
	}
	requireViolation(t, f, "response_url: used_url")
	if f.Calls("response_url") != 6 {
		t.Fatalf("calls: %d", f.Calls("response_url"))
	}

	u = responseURL()
	clk.Advance(slackfake.ResponseURLTTL + time.Second)
	_, _, err = api.PostMessageContext(ctx, "", slack.MsgOptionText("late", false), slack.MsgOptionResponseURL(u, slack.ResponseTypeEphemeral))
	if !errors.As(err, &sce) || sce.Code != http.StatusNotFound {
		t.Fatalf("expired url: %v", err)
	}
	requireViolation(t, f, "response_url: expired_url")

	f.ResetViolations()
	u = responseURL()
	err = slack.PostWebhookContext(ctx, u, &slack.WebhookMessage{Blocks: &slack.Blocks{BlockSet: []slack.Block{section(strings.Repeat("z", 3001))}}})
	if !errors.As(err, &sce) || sce.Code != http.StatusBadRequest {
		t.Fatalf("invalid blocks via response_url: %v", err)
	}
	requireViolation(t, f, "response_url: invalid_blocks")
}

func TestClickButtonAndReplaceOriginal(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	clicks := make(chan slack.InteractionCallback, 1)
	api, _ := startBot(t, f, func(sm *socketmode.Client, evt socketmode.Event) {
		cb := evt.Data.(slack.InteractionCallback)
		if evt.Request.AcceptsResponsePayload {
			t.Errorf("block_actions envelopes do not accept a response payload")
		}
		_ = sm.Ack(*evt.Request)
		// Replace the clicked message through the response_url, as Slack apps do.
		if _, _, err := sm.PostMessageContext(context.Background(), "",
			slack.MsgOptionText("Approved by <@"+cb.User.ID+">", false),
			slack.MsgOptionReplaceOriginal(cb.ResponseURL)); err != nil {
			t.Errorf("replace_original: %v", err)
		}
		clicks <- cb
	})
	ctx := ctxT(t, 10*time.Second)
	_, ts, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("Request req-1", false),
		slack.MsgOptionBlocks(section("Approve req-1?"), slack.NewActionBlock("decide", button("approve", "req-1", "Approve"), button("deny", "req-1", "Deny"))))
	if err != nil {
		t.Fatal(err)
	}
	ref := slackfake.MessageRef{Channel: "C1", TS: ts}

	if _, err := f.ClickButton(ctx, "U1", ref, "approve", "req-2"); err == nil {
		t.Fatal("clicked a button that is not shown")
	}
	if _, err := f.ClickButton(ctx, "U1", ref, "approve", "req-1"); err != nil {
		t.Fatal(err)
	}
	cb := <-clicks
	if cb.Type != slack.InteractionTypeBlockActions || cb.User.ID != "U1" || cb.Channel.ID != "C1" || cb.Message.Timestamp != ts ||
		cb.Container.Type != "message" || cb.Container.MessageTs != ts || cb.Container.ChannelID != "C1" || cb.TriggerID == "" || cb.ResponseURL == "" {
		t.Fatalf("block_actions payload: %+v", cb)
	}
	acts := cb.ActionCallback.BlockActions
	if len(acts) != 1 || acts[0].ActionID != "approve" || acts[0].Value != "req-1" || acts[0].BlockID != "decide" ||
		acts[0].Type != "button" || acts[0].Text.Text != "Approve" || acts[0].ActionTs == "" {
		t.Fatalf("actions: %+v", acts)
	}
	if len(cb.Message.Blocks.BlockSet) != 2 {
		t.Fatalf("payload message blocks: %+v", cb.Message.Blocks)
	}

	ctxW := ctxT(t, 5*time.Second)
	if err := f.WaitFor(ctxW, func() bool {
		m, _ := f.Message(ref)
		return strings.HasPrefix(m.Text, "Approved")
	}); err != nil {
		t.Fatal(err)
	}
	m, _ := f.Message(ref)
	if len(m.History) != 2 || m.History[1].Source != "response_url" || len(m.Buttons()) != 0 {
		t.Fatalf("replaced message: %+v", m)
	}
	if _, err := f.ClickButton(ctx, "U1", ref, "approve", "req-1"); err == nil {
		t.Fatal("clicked a button Slack no longer shows")
	}
	requireNoViolations(t, f)
}

func TestOversizeAckIsDropped(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	ctx := ctxT(t, 10*time.Second)
	// slack-go refuses to send acks >= 20KB itself, so speak the protocol
	// with a raw websocket client, as a non-slack-go bot would.
	_, wsURL, err := apiClient(f).StartSocketModeContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	var hello struct {
		Type           string `json:"type"`
		NumConnections int    `json:"num_connections"`
	}
	if err := conn.ReadJSON(&hello); err != nil || hello.Type != "hello" || hello.NumConnections != 1 {
		t.Fatalf("hello: %+v %v", hello, err)
	}

	type result struct {
		ack slackfake.Ack
		err error
	}
	done := make(chan result, 1)
	go func() {
		a, err := f.SlashCommand(ctx, "U1", "C1", "/tap", "big")
		done <- result{a, err}
	}()
	var env struct {
		EnvelopeID             string          `json:"envelope_id"`
		Type                   string          `json:"type"`
		AcceptsResponsePayload bool            `json:"accepts_response_payload"`
		Payload                json.RawMessage `json:"payload"`
	}
	if err := conn.ReadJSON(&env); err != nil {
		t.Fatal(err)
	}
	if env.Type != "slash_commands" || !env.AcceptsResponsePayload || env.EnvelopeID == "" {
		t.Fatalf("envelope: %+v", env)
	}
	big := map[string]any{"envelope_id": env.EnvelopeID, "payload": map[string]any{"text": strings.Repeat("b", slackfake.MaxAckBytes)}}
	if err := conn.WriteJSON(big); err != nil {
		t.Fatal(err)
	}
	if err := f.WaitFor(ctx, func() bool { return len(f.Violations()) > 0 }); err != nil {
		t.Fatal(err)
	}
	requireViolation(t, f, "silently drops")
	select {
	case r := <-done:
		t.Fatalf("an oversize ack counted as an ack: %+v %v", r.ack, r.err)
	default:
	}
	if err := conn.WriteJSON(map[string]any{"envelope_id": env.EnvelopeID}); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.ack.Payload != nil || r.ack.EnvelopeID != env.EnvelopeID {
		t.Fatalf("small ack: %+v %v", r.ack, r.err)
	}
	if len(f.Ephemerals("U1")) != 0 {
		t.Fatal("the dropped ack's message was shown")
	}
}

func TestReconnectAfterDropAndRefresh(t *testing.T) {
	f := newFake(t, slackfake.Options{DisconnectGrace: 200 * time.Millisecond})
	startBot(t, f, ackAll)
	ctx := ctxT(t, 20*time.Second)
	if err := f.WaitConnections(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if n := f.DropConnections(); n != 1 {
		t.Fatalf("dropped %d", n)
	}
	if err := f.WaitFor(ctx, func() bool { return f.TotalConnections() >= 2 && f.ConnectionCount() == 1 }); err != nil {
		t.Fatal(err)
	}
	if _, err := f.SlashCommand(ctx, "U1", "C1", "/tap", "after drop"); err != nil {
		t.Fatal(err)
	}
	if n := f.RequestDisconnect("refresh_requested"); n != 1 {
		t.Fatalf("told %d", n)
	}
	if err := f.WaitFor(ctx, func() bool { return f.TotalConnections() >= 3 && f.ConnectionCount() == 1 }); err != nil {
		t.Fatal(err)
	}
	if _, err := f.SlashCommand(ctx, "U1", "C1", "/tap", "after refresh"); err != nil {
		t.Fatal(err)
	}
	requireNoViolations(t, f)
}

func TestEnvelopesRoundRobinOverConnections(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	var mu sync.Mutex
	perBot := map[int]int{}
	for i := range 2 {
		startBot(t, f, func(sm *socketmode.Client, evt socketmode.Event) {
			mu.Lock()
			perBot[i]++
			mu.Unlock()
			_ = sm.Ack(*evt.Request)
		})
	}
	ctx := ctxT(t, 10*time.Second)
	if err := f.WaitConnections(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if _, err := f.SlashCommand(ctx, "U1", "C1", "/tap", ""); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if perBot[0] != 2 || perBot[1] != 2 {
		t.Fatalf("deliveries per connection: %v", perBot)
	}
}

func TestRedeliverSameEnvelope(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	type seen struct {
		id      string
		attempt int
	}
	deliveries := make(chan seen, 2)
	startBot(t, f, func(sm *socketmode.Client, evt socketmode.Event) {
		deliveries <- seen{evt.Request.EnvelopeID, evt.Request.RetryAttempt}
		_ = sm.Ack(*evt.Request, map[string]any{"text": "once"})
	})
	ctx := ctxT(t, 10*time.Second)
	first, err := f.SlashCommand(ctx, "U1", "C1", "/tap", "")
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.Redeliver(ctx, first.EnvelopeID)
	if err != nil {
		t.Fatal(err)
	}
	a, b := <-deliveries, <-deliveries
	if a.id != b.id || a.attempt != 0 || b.attempt != 1 || second.EnvelopeID != first.EnvelopeID || second.RetryAttempt != 1 {
		t.Fatalf("deliveries %+v %+v, acks %+v %+v", a, b, first, second)
	}
	if len(f.Acks()) != 2 || len(f.Ephemerals("U1")) != 1 {
		t.Fatalf("acks %d, ephemerals %d: only the first ack is acted on", len(f.Acks()), len(f.Ephemerals("U1")))
	}
}

func TestAuthAndUnknownMethods(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	ctx := ctxT(t, 10*time.Second)
	api := apiClient(f)
	at, err := api.AuthTestContext(ctx)
	if err != nil || at.UserID != f.BotUserID() || at.TeamID != f.TeamID() {
		t.Fatalf("auth.test: %+v %v", at, err)
	}
	_, err = slack.New("xoxb-wrong", slack.OptionAPIURL(f.APIURL())).AuthTestContext(ctx)
	if got := slackErr(t, err); got != "invalid_auth" {
		t.Fatalf("wrong token: %q", got)
	}
	_, err = slack.New(f.AppToken(), slack.OptionAPIURL(f.APIURL())).AuthTestContext(ctx)
	if got := slackErr(t, err); got != "not_allowed_token_type" {
		t.Fatalf("app token on a bot method: %q", got)
	}
	_, _, err = slack.New(f.BotToken(), slack.OptionAPIURL(f.APIURL()), slack.OptionAppLevelToken(f.BotToken())).StartSocketModeContext(ctx)
	if got := slackErr(t, err); got != "not_allowed_token_type" {
		t.Fatalf("bot token on apps.connections.open: %q", got)
	}
	_, err = api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: "C1"})
	if got := slackErr(t, err); got != "unknown_method" {
		t.Fatalf("unimplemented method: %q", got)
	}
	requireViolation(t, f, "conversations.history: unknown_method")
	if f.Calls("conversations.history") != 1 || f.Calls("auth.test") != 3 {
		t.Fatalf("call log: %+v", f.CallLog())
	}
	for _, c := range f.CallLog() {
		if _, ok := c.Params["token"]; ok {
			t.Fatal("tokens must not be recorded")
		}
	}
}

func TestUsersAndGroups(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	ctx := ctxT(t, 10*time.Second)
	api := apiClient(f)
	u, err := api.GetUserInfoContext(ctx, "U1")
	if err != nil || u.Name != "alice" || u.RealName != "Alice A" || u.Profile.Email != "alice@example.com" || u.TZ != "UTC" || u.IsBot || u.Deleted {
		t.Fatalf("users.info: %+v %v", u, err)
	}
	if gone, err := api.GetUserInfoContext(ctx, "U3"); err != nil || !gone.Deleted {
		t.Fatalf("deactivated user: %+v %v", gone, err)
	}
	if bot, err := api.GetUserInfoContext(ctx, f.BotUserID()); err != nil || !bot.IsBot {
		t.Fatalf("bot user: %+v %v", bot, err)
	}
	if b, err := api.GetUserByEmailContext(ctx, "BOB@example.com"); err != nil || b.ID != "U2" {
		t.Fatalf("lookupByEmail: %+v %v", b, err)
	}
	_, err = api.GetUserByEmailContext(ctx, "nobody@example.com")
	if got := slackErr(t, err); got != "users_not_found" {
		t.Fatalf("unknown email: %q", got)
	}
	_, err = api.GetUserInfoContext(ctx, "U404")
	if got := slackErr(t, err); got != "user_not_found" {
		t.Fatalf("unknown user: %q", got)
	}
	members, err := api.GetUserGroupMembersContext(ctx, "S1")
	if err != nil || strings.Join(members, ",") != "U1,U2" {
		t.Fatalf("usergroups.users.list: %v %v", members, err)
	}
	_, err = api.GetUserGroupMembersContext(ctx, "S404")
	if got := slackErr(t, err); got != "no_such_subteam" {
		t.Fatalf("unknown group: %q", got)
	}
	requireNoViolations(t, f) // lookups that find nothing are not violations
}

func TestDMCommandEphemeralButtonAndEvents(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	clicks := make(chan slack.InteractionCallback, 1)
	mentions := make(chan *slackevents.AppMentionEvent, 1)
	api, _ := startBot(t, f, func(sm *socketmode.Client, evt socketmode.Event) {
		switch d := evt.Data.(type) {
		case slack.SlashCommand:
			_ = sm.Ack(*evt.Request, map[string]any{"response_type": "in_channel", "text": "public answer to " + d.Text})
		case slack.InteractionCallback:
			_ = sm.Ack(*evt.Request)
			if _, _, err := sm.PostMessageContext(context.Background(), "", slack.MsgOptionText("handled", false), slack.MsgOptionReplaceOriginal(d.ResponseURL)); err != nil {
				t.Errorf("replace ephemeral: %v", err)
			}
			clicks <- d
		case slackevents.EventsAPIEvent:
			_ = sm.Ack(*evt.Request)
			if m, ok := d.InnerEvent.Data.(*slackevents.AppMentionEvent); ok {
				mentions <- m
			}
		}
	})
	ctx := ctxT(t, 10*time.Second)

	if _, err := f.SlashCommand(ctx, "U1", "U1", "/tap", "dm"); err != nil {
		t.Fatal(err)
	}
	if m, ok := f.LastMessage("U1"); !ok || m.Text != "public answer to dm" || m.Channel != f.DMChannel("U1") {
		t.Fatalf("in_channel ack in the DM: %+v", m)
	}

	ts, err := api.PostEphemeralContext(ctx, "C1", "U1", slack.MsgOptionText("only you", false),
		slack.MsgOptionBlocks(slack.NewActionBlock("eph", button("ok", "1", "OK"))))
	if err != nil {
		t.Fatal(err)
	}
	eph := f.Ephemerals("U1")
	if len(eph) != 1 || eph[0].TS != ts {
		t.Fatalf("ephemerals: %+v", eph)
	}
	if _, err := f.ClickButton(ctx, "U2", eph[0].Ref(), "ok", "1"); err == nil {
		t.Fatal("U2 clicked U1's ephemeral")
	}
	if _, err := f.ClickButton(ctx, "U1", eph[0].Ref(), "ok", "1"); err != nil {
		t.Fatal(err)
	}
	cb := <-clicks
	if !cb.Container.IsEphemeral || cb.Container.MessageTs != ts || cb.Message.Timestamp != "" {
		t.Fatalf("ephemeral block_actions: container %+v, message ts %q", cb.Container, cb.Message.Timestamp)
	}
	if err := f.WaitFor(ctx, func() bool {
		e := f.Ephemerals("U1")
		return len(e) == 1 && e[0].Replaced == 1
	}); err != nil {
		t.Fatal(err)
	}
	if e := f.Ephemerals("U1"); e[0].Text != "handled" || len(e[0].Buttons()) != 0 {
		t.Fatalf("replaced ephemeral: %+v", e[0])
	}

	ack, err := f.SendEvent(ctx, map[string]any{"type": "app_mention", "user": "U2", "text": "<@" + f.BotUserID() + "> hi", "channel": "C1", "ts": "1.000001"})
	if err != nil || ack.Type != "events_api" {
		t.Fatalf("event ack: %+v %v", ack, err)
	}
	if m := <-mentions; m.User != "U2" || m.Channel != "C1" {
		t.Fatalf("app_mention: %+v", m)
	}
	requireNoViolations(t, f)
}

func TestLateAckIsAViolation(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Slack's real 3s ack deadline to pass")
	}
	f := newFake(t, slackfake.Options{})
	startBot(t, f, func(sm *socketmode.Client, evt socketmode.Event) {
		time.Sleep(slackfake.AckDeadline + 100*time.Millisecond) // a bot too slow to ack
		_ = sm.Ack(*evt.Request, map[string]any{"text": "too late"})
	})
	ack, err := f.SlashCommand(ctxT(t, 10*time.Second), "U1", "C1", "/tap", "")
	if err != nil {
		t.Fatal(err)
	}
	if ack.Latency <= slackfake.AckDeadline {
		t.Fatalf("latency %v", ack.Latency)
	}
	requireViolation(t, f, "Slack already showed the user an error")
	if len(f.Ephemerals("U1")) != 0 {
		t.Fatal("a late ack's message must not be shown")
	}
}

func TestViewSubmissionResponseActions(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	var n int
	startBot(t, f, func(sm *socketmode.Client, evt socketmode.Event) {
		switch d := evt.Data.(type) {
		case slack.SlashCommand:
			if _, err := sm.OpenViewContext(context.Background(), d.TriggerID, modal("Step 1", noteInput())); err != nil {
				t.Errorf("views.open: %v", err)
			}
			_ = sm.Ack(*evt.Request)
		case slack.InteractionCallback:
			n++
			switch n {
			case 1:
				_ = sm.Ack(*evt.Request, slack.NewUpdateViewSubmissionResponse(ptr(modal("Step 2", noteInput()))))
			case 2:
				_ = sm.Ack(*evt.Request, slack.NewPushViewSubmissionResponse(ptr(modal("Step 3", noteInput()))))
			case 3:
				bad := modal(strings.Repeat("t", 30), noteInput())
				_ = sm.Ack(*evt.Request, slack.NewUpdateViewSubmissionResponse(&bad))
			default:
				_ = sm.Ack(*evt.Request, slack.NewClearViewSubmissionResponse())
			}
		}
	})
	ctx := ctxT(t, 10*time.Second)
	if _, err := f.SlashCommand(ctx, "U1", "C1", "/tap", ""); err != nil {
		t.Fatal(err)
	}
	submit := func() {
		t.Helper()
		open := f.OpenViews("U1")
		if _, err := f.SubmitView(ctx, "U1", open[len(open)-1].ID, map[string]map[string]slackfake.InputValue{"note": {"note_input": slackfake.TextInput("x")}}); err != nil {
			t.Fatal(err)
		}
	}
	titles := func() string {
		var out []string
		for _, v := range f.OpenViews("U1") {
			out = append(out, v.Title)
		}
		return strings.Join(out, ",")
	}
	submit()
	if got := titles(); got != "Step 2" {
		t.Fatalf("after update: %q", got)
	}
	submit()
	if got := titles(); got != "Step 2,Step 3" {
		t.Fatalf("after push: %q", got)
	}
	requireNoViolations(t, f)
	submit()
	requireViolation(t, f, "response_action update: invalid_arguments")
	if got := titles(); got != "Step 2,Step 3" {
		t.Fatalf("an invalid update must leave the modal alone: %q", got)
	}
	submit()
	if got := titles(); got != "" {
		t.Fatalf("after clear: %q", got)
	}
}

func ptr[T any](v T) *T { return &v }
