package slackfake_test

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tapbot/tapbot/internal/slackfake"
)

// headerRecorder is an HTTP client for slack.OptionHTTPClient that keeps the scope headers of
// the last answer, which slack-go does not expose.
type headerRecorder struct {
	mu               sync.Mutex
	granted, accepts string
	seen             bool
}

func (h *headerRecorder) Do(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		h.mu.Lock()
		_, h.seen = resp.Header["X-Oauth-Scopes"]
		h.granted, h.accepts = resp.Header.Get("X-OAuth-Scopes"), resp.Header.Get("X-Accepted-OAuth-Scopes")
		h.mu.Unlock()
	}
	return resp, err
}

func (h *headerRecorder) last() (granted, accepts string, seen bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.granted, h.accepts, h.seen
}

func recordingClient(f *slackfake.Server, token string) (*slack.Client, *headerRecorder) {
	rec := &headerRecorder{}
	return slack.New(token, slack.OptionAPIURL(f.APIURL()), slack.OptionAppLevelToken(f.AppToken()), slack.OptionHTTPClient(rec)), rec
}

func missingScope(t *testing.T, err error) slack.SlackErrorResponse {
	t.Helper()
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != "missing_scope" {
		t.Fatalf("want missing_scope, got %v", err)
	}
	return se
}

func TestScopesHeaderDefaultsToEverything(t *testing.T) {
	f := newFake(t, slackfake.Options{})
	ctx := ctxT(t, 10*time.Second)
	api, rec := recordingClient(f, f.BotToken())
	if _, err := api.AuthTestContext(ctx); err != nil {
		t.Fatal(err)
	}
	if granted, _, _ := rec.last(); granted != strings.Join(slackfake.DefaultScopes, ",") {
		t.Fatalf("X-OAuth-Scopes = %q, want the default set", granted)
	}
	if _, err := api.GetUserGroupMembersContext(ctx, "S1"); err != nil {
		t.Fatal(err)
	}
	if _, accepts, _ := rec.last(); accepts != "usergroups:read" {
		t.Fatalf("X-Accepted-OAuth-Scopes = %q", accepts)
	}
	if _, _, err := api.StartSocketModeContext(ctx); err != nil {
		t.Fatal(err)
	}
	if granted, _, _ := rec.last(); granted != "connections:write" {
		t.Fatalf("the app-level token's X-OAuth-Scopes = %q", granted)
	}
	// A refused token gets no scope header: Slack does not say what an unknown token may do.
	bad, rec := recordingClient(f, "xoxb-wrong")
	_, _ = bad.AuthTestContext(ctx)
	if _, _, seen := rec.last(); seen {
		t.Fatal("X-OAuth-Scopes on an invalid_auth answer")
	}
	f.ResetViolations()
	if got := f.Scopes(); strings.Join(got, ",") != strings.Join(slackfake.DefaultScopes, ",") {
		t.Fatalf("Scopes() = %v", got)
	}
}

func TestMissingScopeIsRefused(t *testing.T) {
	f := newFake(t, slackfake.Options{Scopes: []string{"chat:write"}})
	ctx := ctxT(t, 10*time.Second)
	api, rec := recordingClient(f, f.BotToken())
	_, err := api.GetUserInfoContext(ctx, "U1")
	se := missingScope(t, err)
	if se.Needed != "users:read" || se.Provided != "chat:write" {
		t.Fatalf("needed %q provided %q", se.Needed, se.Provided)
	}
	if granted, _, _ := rec.last(); granted != "chat:write" {
		t.Fatalf("X-OAuth-Scopes = %q", granted)
	}
	requireViolation(t, f, "users.info: missing_scope")
	f.ResetViolations()
	// auth.test needs no scope, and posting needs only chat:write.
	if _, err := api.AuthTestContext(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("hi", false)); err != nil {
		t.Fatal(err)
	}

	// Reinstalled with users:read but not users:read.email: profiles come without the email,
	// and looking a user up by email is refused.
	f.SetScopes("chat:write", "users:read")
	u, err := api.GetUserInfoContext(ctx, "U1")
	if err != nil || u.Name != "alice" || u.Profile.Email != "" {
		t.Fatalf("users.info without users:read.email: %+v %v", u, err)
	}
	_, err = api.GetUserByEmailContext(ctx, "alice@example.com")
	if se := missingScope(t, err); se.Needed != "users:read.email" {
		t.Fatalf("needed %q", se.Needed)
	}
	_, err = api.GetUserGroupMembersContext(ctx, "S1")
	if se := missingScope(t, err); se.Needed != "usergroups:read" || se.Provided != "chat:write,users:read" {
		t.Fatalf("needed %q provided %q", se.Needed, se.Provided)
	}
	if granted, _, _ := rec.last(); granted != "chat:write,users:read" {
		t.Fatalf("X-OAuth-Scopes after SetScopes = %q", granted)
	}
}

func TestConversationsInfo(t *testing.T) {
	// More calls than Tier 3's burst: this test is about the answers, not the rate limits.
	f := newFake(t, slackfake.Options{RateLimits: &slackfake.RateLimits{Off: true}})
	f.AddChannel("G1", "U1")
	ctx := ctxT(t, 10*time.Second)
	api := apiClient(f)
	info := func(id string) (*slack.Channel, error) {
		return api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: id})
	}
	c, err := info("C1")
	if err != nil || c.ID != "C1" || !c.IsMember || c.IsPrivate || !c.IsChannel {
		t.Fatalf("public channel with the bot: %+v %v", c, err)
	}
	c, err = info("G1")
	if err != nil || !c.IsMember || !c.IsPrivate {
		t.Fatalf("private channel with the bot: %+v %v", c, err)
	}
	f.SetBotMember("C1", false)
	if c, err = info("C1"); err != nil || c.IsMember {
		t.Fatalf("public channel without the bot: %+v %v", c, err)
	}
	// A private channel the bot is not in is invisible to it, as in Slack.
	f.SetBotMember("G1", false)
	if _, err = info("G1"); slackErr(t, err) != "channel_not_found" {
		t.Fatalf("private channel without the bot: %v", err)
	}
	f.SetChannelPrivate("C1", true)
	if _, err = info("C1"); slackErr(t, err) != "channel_not_found" {
		t.Fatalf("channel made private, bot not in it: %v", err)
	}
	if _, err = info("C404"); slackErr(t, err) != "channel_not_found" {
		t.Fatalf("unknown channel: %v", err)
	}
	requireNoViolations(t, f) // a channel the bot cannot see is a lookup result, not a refusal

	// Public channels need channels:read, private ones groups:read.
	f.SetBotMember("G1", true)
	f.SetChannelPrivate("C1", false)
	f.SetScopes("channels:read")
	if _, err = info("C1"); err != nil {
		t.Fatalf("public channel with channels:read: %v", err)
	}
	if _, err = info("G1"); missingScope(t, err).Needed != "groups:read" {
		t.Fatalf("private channel without groups:read: %v", err)
	}
	f.SetScopes("groups:read")
	if _, err = info("G1"); err != nil {
		t.Fatalf("private channel with groups:read: %v", err)
	}
	if _, err = info("C1"); missingScope(t, err).Needed != "channels:read" {
		t.Fatalf("public channel without channels:read: %v", err)
	}
	if d, err := info(f.DMChannel("U1")); missingScope(t, err).Needed != "im:read" {
		t.Fatalf("DM without im:read: %+v %v", d, err)
	}
	f.ResetViolations()
}
