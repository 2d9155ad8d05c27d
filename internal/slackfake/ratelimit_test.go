package slackfake_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tapbot/tapbot/internal/slackfake"
)

// newLimitedFake is newFake with rate limits l (nil: the default) on a frozen real clock for the
// rate limiter, which the returned clock moves.
func newLimitedFake(t *testing.T, l *slackfake.RateLimits) (*slackfake.Server, *clock) {
	t.Helper()
	f := newFake(t, slackfake.Options{RateLimits: l})
	rc := newClock()
	slackfake.SetRateLimitClock(f, rc.Now)
	return f, rc
}

// rateLimited returns err's Retry-After, failing the test unless err is a *slack.RateLimitedError.
func rateLimited(t *testing.T, err error) time.Duration {
	t.Helper()
	var rle *slack.RateLimitedError
	if !errors.As(err, &rle) {
		t.Fatalf("want *slack.RateLimitedError, got %T: %v", err, err)
	}
	return rle.RetryAfter
}

func post(ctx context.Context, api *slack.Client, channel string) error {
	_, _, err := api.PostMessageContext(ctx, channel, slack.MsgOptionText("hi", false))
	return err
}

func TestPublishedTiersBurstThenRateLimited(t *testing.T) {
	tests := []struct {
		method string
		call   func(ctx context.Context, api *slack.Client) error
		burst  int
		// retryAfter is what Slack asks for right after the burst: one token's refill time,
		// rounded up to whole seconds.
		retryAfter time.Duration
	}{
		{"apps.connections.open", func(ctx context.Context, api *slack.Client) error {
			_, _, err := api.StartSocketModeContext(ctx)
			return err
		}, 3, 60 * time.Second},
		{"usergroups.users.list", func(ctx context.Context, api *slack.Client) error {
			_, err := api.GetUserGroupMembersContext(ctx, "S1")
			return err
		}, 5, 3 * time.Second},
		{"conversations.open", func(ctx context.Context, api *slack.Client) error {
			_, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U1"}})
			return err
		}, 10, 2 * time.Second}, // 1.2s
		{"users.lookupByEmail", func(ctx context.Context, api *slack.Client) error {
			_, err := api.GetUserByEmailContext(ctx, "alice@example.com")
			return err
		}, 10, 2 * time.Second},
		{"users.info", func(ctx context.Context, api *slack.Client) error {
			_, err := api.GetUserInfoContext(ctx, "U1")
			return err
		}, 20, time.Second}, // 0.6s
		{"auth.test", func(ctx context.Context, api *slack.Client) error {
			_, err := api.AuthTestContext(ctx)
			return err
		}, 20, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			f, _ := newLimitedFake(t, nil)
			api := apiClient(f)
			ctx := ctxT(t, 10*time.Second)
			for i := range tt.burst {
				if err := tt.call(ctx, api); err != nil {
					t.Fatalf("call %d of the burst: %v", i+1, err)
				}
			}
			if got := rateLimited(t, tt.call(ctx, api)); got != tt.retryAfter {
				t.Fatalf("Retry-After %v, want %v", got, tt.retryAfter)
			}
			if n := f.RateLimited(tt.method); n != 1 {
				t.Fatalf("RateLimited(%q) = %d, want 1", tt.method, n)
			}
			if n := f.RateLimited(""); n != 1 {
				t.Fatalf("RateLimited(\"\") = %d, want 1", n)
			}
			if c, s := f.Calls(tt.method), f.Served(tt.method); c != tt.burst+1 || s != tt.burst {
				t.Fatalf("Calls %d, Served %d; want %d, %d", c, s, tt.burst+1, tt.burst)
			}
			log := f.CallLog()
			if last := log[len(log)-1]; last.Method != tt.method || last.Error != "ratelimited" {
				t.Fatalf("last call logged as %+v", last)
			}
			requireNoViolations(t, f)
		})
	}
}

func TestTier3ConversationsOpenElevenQuickCalls(t *testing.T) {
	// The real clock: ten calls take far less than the 1.2s a Tier 3 token takes to come back.
	f := newFake(t, slackfake.Options{})
	api := apiClient(f)
	ctx := ctxT(t, 10*time.Second)
	open := func() error {
		_, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U1"}})
		return err
	}
	for i := range 10 {
		if err := open(); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	if ra := rateLimited(t, open()); ra < time.Second {
		t.Fatalf("Retry-After %v, want at least 1s", ra)
	}
	if n := f.RateLimited("conversations.open"); n != 1 {
		t.Fatalf("RateLimited = %d", n)
	}
	requireNoViolations(t, f)
}

func TestUnlistedMethodUsesDefault(t *testing.T) {
	f, _ := newLimitedFake(t, &slackfake.RateLimits{Default: slackfake.Bucket{Every: time.Minute, Burst: 2}})
	api := apiClient(f)
	ctx := ctxT(t, 10*time.Second)
	for range 2 {
		if _, err := api.AuthTestContext(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if ra := rateLimited(t, func() error { _, err := api.AuthTestContext(ctx); return err }()); ra != time.Minute {
		t.Fatalf("Retry-After %v", ra)
	}
	// Default buckets are per method.
	if _, err := api.GetUserInfoContext(ctx, "U1"); err != nil {
		t.Fatalf("another Default method: %v", err)
	}
}

func TestPostMessageLimits(t *testing.T) {
	t.Run("per channel", func(t *testing.T) {
		f, rc := newLimitedFake(t, nil)
		f.AddChannel("C2")
		api := apiClient(f)
		ctx := ctxT(t, 10*time.Second)
		for i := range 5 {
			if err := post(ctx, api, "C1"); err != nil {
				t.Fatalf("post %d: %v", i+1, err)
			}
		}
		if ra := rateLimited(t, post(ctx, api, "C1")); ra != time.Second {
			t.Fatalf("Retry-After %v, want 1s", ra)
		}
		if err := post(ctx, api, "C2"); err != nil {
			t.Fatalf("another channel: %v", err)
		}
		rc.Advance(time.Second)
		if err := post(ctx, api, "C1"); err != nil {
			t.Fatalf("a second later: %v", err)
		}
		if n := f.RateLimited("chat.postMessage"); n != 1 {
			t.Fatalf("RateLimited = %d", n)
		}
		requireNoViolations(t, f)
	})
	t.Run("a user ID and its DM share a bucket", func(t *testing.T) {
		f, _ := newLimitedFake(t, nil)
		api := apiClient(f)
		ctx := ctxT(t, 10*time.Second)
		for i := range 5 {
			if err := post(ctx, api, "U1"); err != nil {
				t.Fatalf("post %d: %v", i+1, err)
			}
		}
		rateLimited(t, post(ctx, api, f.DMChannel("U1")))
		if err := post(ctx, api, "U2"); err != nil {
			t.Fatalf("another user's DM: %v", err)
		}
	})
	t.Run("workspace", func(t *testing.T) {
		l := slackfake.PublishedRateLimits()
		l.PostMessageWorkspace = slackfake.Bucket{Every: time.Minute, Burst: 3}
		f, rc := newLimitedFake(t, &l)
		for _, c := range []string{"C2", "C3", "C4"} {
			f.AddChannel(c)
		}
		api := apiClient(f)
		ctx := ctxT(t, 10*time.Second)
		for _, c := range []string{"C1", "C2", "C3"} {
			if err := post(ctx, api, c); err != nil {
				t.Fatalf("post to %s: %v", c, err)
			}
		}
		if ra := rateLimited(t, post(ctx, api, "C4")); ra != time.Minute {
			t.Fatalf("Retry-After %v, want 1m", ra)
		}
		// A minute later the workspace bucket holds one token again: one post passes, the next
		// is refused although C4's own bucket is nearly full.
		rc.Advance(time.Minute)
		if err := post(ctx, api, "C4"); err != nil {
			t.Fatalf("after a minute: %v", err)
		}
		rateLimited(t, post(ctx, api, "C4"))
		requireNoViolations(t, f)
	})
}

func TestRateLimitedCallHasNoEffect(t *testing.T) {
	f, _ := newLimitedFake(t, nil)
	api, trigger := triggerSource(t, f)
	ctx := ctxT(t, 10*time.Second)

	for range 5 {
		if err := post(ctx, api, "C1"); err != nil {
			t.Fatal(err)
		}
	}
	before := len(f.Messages("C1"))
	_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("throttled", false))
	rateLimited(t, err)
	if ms := f.Messages("C1"); len(ms) != before || strings.Contains(f.AllPersistedText(), "throttled") {
		t.Fatalf("a 429'd chat.postMessage posted: %d messages, was %d", len(ms), before)
	}

	// Nor does one to a user ID, throttled by ThrottleFor.
	f.ThrottleFor("chat.postMessage", time.Minute)
	rateLimited(t, post(ctx, api, "U2"))
	f.ThrottleFor("chat.postMessage", 0)
	if ms := f.Messages("U2"); len(ms) != 0 {
		t.Fatalf("a 429'd DM posted %d messages", len(ms))
	}

	// A 429'd views.open does not exchange its trigger_id.
	tr := trigger()
	f.ThrottleFor("views.open", time.Minute)
	_, err = api.OpenViewContext(ctx, tr, modal("Hello", section("hi")))
	rateLimited(t, err)
	if len(f.OpenViews("U1")) != 0 {
		t.Fatal("a 429'd views.open opened a modal")
	}
	f.ThrottleFor("views.open", 0)
	if _, err := api.OpenViewContext(ctx, tr, modal("Hello", section("hi"))); err != nil {
		t.Fatalf("the trigger after the 429: %v", err)
	}
	requireNoViolations(t, f)
}

func TestRateLimitSpeed(t *testing.T) {
	// Tier 1 is a token a minute; at Speed 60 a token a second of real time, on the real clock.
	l := slackfake.PublishedRateLimits()
	l.Speed = 60
	f := newFake(t, slackfake.Options{RateLimits: &l})
	api := apiClient(f)
	ctx := ctxT(t, 10*time.Second)
	connect := func() error { _, _, err := api.StartSocketModeContext(ctx); return err }
	for i := range 3 {
		if err := connect(); err != nil {
			t.Fatalf("call %d of the burst: %v", i+1, err)
		}
	}
	ra := rateLimited(t, connect())
	if ra != time.Second {
		t.Fatalf("Retry-After %v, want 1s (a minute at Speed 60)", ra)
	}
	// Retry-After is rounded up, so after it the call passes.
	time.Sleep(ra)
	if err := connect(); err != nil {
		t.Fatalf("after Retry-After: %v", err)
	}
	if got := f.RateLimitsInUse().Speed; got != 60 {
		t.Fatalf("Speed in use %v", got)
	}
	requireNoViolations(t, f)
}

func TestRateLimitIgnoresOptionsNow(t *testing.T) {
	clk := newClock()
	f := newFake(t, slackfake.Options{Now: clk.Now})
	rc := newClock()
	slackfake.SetRateLimitClock(f, rc.Now)
	api := apiClient(f)
	ctx := ctxT(t, 10*time.Second)
	for range 5 {
		if err := post(ctx, api, "C1"); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(72 * time.Hour)
	rateLimited(t, post(ctx, api, "C1"))
}

func TestThrottleFor(t *testing.T) {
	for _, off := range []bool{false, true} {
		t.Run(map[bool]string{false: "published", true: "off"}[off], func(t *testing.T) {
			f, rc := newLimitedFake(t, &slackfake.RateLimits{Off: off})
			api, trigger := triggerSource(t, f)
			ctx := ctxT(t, 10*time.Second)
			tr := trigger()
			view := modal("Hello", section("hi"))
			open := func() error { _, err := api.OpenViewContext(ctx, tr, view); return err }

			f.ThrottleFor("views.open", 5*time.Second)
			if ra := rateLimited(t, open()); ra < 5*time.Second {
				t.Fatalf("Retry-After %v, want at least 5s", ra)
			}
			rc.Advance(2500 * time.Millisecond)
			if ra := rateLimited(t, open()); ra != 3*time.Second {
				t.Fatalf("Retry-After %v with 2.5s left, want 3s", ra)
			}
			rc.Advance(2400 * time.Millisecond)
			if ra := rateLimited(t, open()); ra != time.Second {
				t.Fatalf("Retry-After %v with 0.1s left, want 1s", ra)
			}
			// Other methods are not affected.
			if _, err := api.AuthTestContext(ctx); err != nil {
				t.Fatalf("auth.test during the window: %v", err)
			}
			rc.Advance(100 * time.Millisecond)
			if err := open(); err != nil {
				t.Fatalf("after the window: %v", err)
			}
			if n := f.RateLimited("views.open"); n != 3 {
				t.Fatalf("RateLimited = %d", n)
			}
			requireNoViolations(t, f)
		})
	}
}

func TestRateLimitsOff(t *testing.T) {
	f := newFake(t, slackfake.Options{RateLimits: &slackfake.RateLimits{Off: true}})
	api := apiClient(f)
	ctx := ctxT(t, 30*time.Second)
	for i := range 200 {
		if err := post(ctx, api, "C1"); err != nil {
			t.Fatalf("post %d: %v", i+1, err)
		}
		if _, _, err := api.StartSocketModeContext(ctx); err != nil {
			t.Fatalf("apps.connections.open %d: %v", i+1, err)
		}
	}
	if n := f.RateLimited(""); n != 0 {
		t.Fatalf("RateLimited = %d", n)
	}
	if n := f.Served("chat.postMessage"); n != 200 {
		t.Fatalf("Served = %d", n)
	}
	requireNoViolations(t, f)
}

func TestSetRateLimits(t *testing.T) {
	f, _ := newLimitedFake(t, nil)
	if got, want := f.RateLimitsInUse(), slackfake.PublishedRateLimits(); !reflect.DeepEqual(got, want) {
		t.Fatalf("default limits %+v, want %+v", got, want)
	}
	api := apiClient(f)
	ctx := ctxT(t, 10*time.Second)
	for range 5 {
		if err := post(ctx, api, "C1"); err != nil {
			t.Fatal(err)
		}
	}
	rateLimited(t, post(ctx, api, "C1"))

	// New limits start with full buckets.
	l := slackfake.PublishedRateLimits()
	l.PostMessagePerChannel.Burst = 2
	l.Speed = 0
	f.SetRateLimits(l)
	for range 2 {
		if err := post(ctx, api, "C1"); err != nil {
			t.Fatalf("after SetRateLimits: %v", err)
		}
	}
	rateLimited(t, post(ctx, api, "C1"))
	got := f.RateLimitsInUse()
	if got.Speed != 1 || got.PostMessagePerChannel.Burst != 2 {
		t.Fatalf("limits in use %+v", got)
	}
	// RateLimitsInUse is a copy.
	got.Methods["chat.update"] = slackfake.Bucket{}
	if f.RateLimitsInUse().Methods["chat.update"].Every == 0 {
		t.Fatal("RateLimitsInUse shares its Methods map")
	}

	f.SetRateLimits(slackfake.RateLimits{Off: true})
	for range 10 {
		if err := post(ctx, api, "C1"); err != nil {
			t.Fatalf("off: %v", err)
		}
	}
}

func TestRateLimitedResponseAndAuthOrder(t *testing.T) {
	f, _ := newLimitedFake(t, nil)
	f.ThrottleFor("auth.test", 90*time.Second)
	call := func(token string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, f.APIURL()+"auth.test", strings.NewReader(url.Values{}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	resp, body := call(f.BotToken())
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "90" ||
		body != `{"ok":false,"error":"ratelimited"}` {
		t.Fatalf("429 answer: %d Retry-After %q body %q", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// A bad token is still invalid_auth, not ratelimited.
	resp, body = call("xoxb-wrong")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"invalid_auth"`) {
		t.Fatalf("bad token: %d %s", resp.StatusCode, body)
	}
	if n := f.RateLimited("auth.test"); n != 1 {
		t.Fatalf("RateLimited = %d", n)
	}
	requireViolation(t, f, "auth.test: invalid_auth")
	for _, v := range f.Violations() {
		if strings.Contains(v, "ratelimited") {
			t.Fatalf("a 429 was recorded as a violation: %q", v)
		}
	}
}

func TestRateLimitConcurrentCalls(t *testing.T) {
	f, _ := newLimitedFake(t, nil)
	api := apiClient(f)
	ctx := ctxT(t, 10*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			_, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U1"}})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	passed, limited := 0, 0
	for err := range errs {
		var rle *slack.RateLimitedError
		switch {
		case err == nil:
			passed++
		case errors.As(err, &rle):
			limited++
		default:
			t.Fatal(err)
		}
	}
	if passed != 10 || limited != 40 || f.RateLimited("conversations.open") != 40 {
		t.Fatalf("passed %d, limited %d (counted %d); want 10 and 40", passed, limited, f.RateLimited("conversations.open"))
	}
	requireNoViolations(t, f)
}
