package slackrate_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/tapbot/tapbot/slackrate"
)

// fakeSlack answers Web API calls in order, recording them; answer decides each one's status.
type fakeSlack struct {
	mu     sync.Mutex
	calls  []string // method:text
	answer func(method string, n int) (status int, retryAfter int)
	srv    *httptest.Server
}

func newFakeSlack(t *testing.T, answer func(method string, n int) (int, int)) *fakeSlack {
	t.Helper()
	f := &fakeSlack{answer: answer}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		method := r.URL.Path[len("/api/"):]
		f.mu.Lock()
		n := 0
		for _, c := range f.calls {
			if len(c) >= len(method) && c[:len(method)] == method {
				n++
			}
		}
		f.calls = append(f.calls, method+":"+r.PostForm.Get("text"))
		f.mu.Unlock()
		status, after := http.StatusOK, 0
		if f.answer != nil {
			status, after = f.answer(method, n)
		}
		w.Header().Set("Content-Type", "application/json")
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", strconv.Itoa(after))
			w.WriteHeader(status)
			fmt.Fprint(w, `{"ok":false,"error":"ratelimited"}`)
			return
		}
		fmt.Fprint(w, `{"ok":true,"channel":"C1","ts":"1.0","user_id":"U1","team_id":"T1"}`)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSlack) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeSlack) api(c *slackrate.Client) *slack.Client {
	return slack.New("xoxb-test", slack.OptionAPIURL(f.srv.URL+"/api/"), slack.OptionHTTPClient(c))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func limits(update, post slackrate.Bucket) *slackrate.Limits {
	l := slackrate.Published()
	l.Methods["chat.update"] = update
	l.PostPerChannel = post
	l.PostWorkspace = slackrate.Bucket{Every: time.Millisecond, Burst: 1000}
	return &l
}

func TestRetryAfterDelaysTheCallAndSendsItAgain(t *testing.T) {
	f := newFakeSlack(t, func(method string, n int) (int, int) {
		if n == 0 {
			return http.StatusTooManyRequests, 1
		}
		return http.StatusOK, 0
	})
	var outcomes []string
	var mu sync.Mutex
	c := slackrate.New(slackrate.Options{Observe: func(m, o string) { mu.Lock(); outcomes = append(outcomes, m+"="+o); mu.Unlock() }})
	start := time.Now()
	if _, err := f.api(c).AuthTestContext(context.Background()); err != nil {
		t.Fatalf("auth.test after one 429: %v", err)
	}
	if took := time.Since(start); took < time.Second {
		t.Fatalf("the call was resent after %v, before Retry-After's 1s", took)
	}
	if got := len(f.log()); got != 2 {
		t.Fatalf("Slack saw %d calls, want the 429 and one resend", got)
	}
	if want := []string{"auth.test=ratelimited", "auth.test=ok"}; !slices.Equal(outcomes, want) {
		t.Fatalf("outcomes %v, want %v", outcomes, want)
	}
}

func TestPostsToOneChannelGoOutInOrder(t *testing.T) {
	// Every third post is refused once, so resends must keep their place in line.
	refused := map[string]bool{}
	var mu sync.Mutex
	f := newFakeSlack(t, nil)
	f.answer = func(method string, n int) (int, int) {
		mu.Lock()
		defer mu.Unlock()
		if n%3 == 1 && !refused[strconv.Itoa(n)] {
			refused[strconv.Itoa(n)] = true
			return http.StatusTooManyRequests, 1
		}
		return http.StatusOK, 0
	}
	c := slackrate.New(slackrate.Options{Limits: limits(slackrate.Tier3, slackrate.Bucket{Every: 30 * time.Millisecond, Burst: 2})})
	api := f.api(c)
	var wg sync.WaitGroup
	var done atomic.Int32
	const posts = 12
	for i := range posts {
		wg.Go(func() {
			defer done.Add(1)
			if _, _, err := api.PostMessageContext(context.Background(), "CAPPROVALS", slack.MsgOptionText(strconv.Itoa(i), false)); err != nil {
				t.Errorf("post %d: %v", i, err)
			}
		})
		// The next post is filed only once this one waits in line or is done.
		waitFor(t, fmt.Sprintf("post %d in line", i), func() bool {
			return c.Waiting("chat.postMessage")+int(done.Load()) >= i+1
		})
	}
	wg.Wait()
	var order []string
	for _, call := range f.log() {
		order = append(order, call[len("chat.postMessage:"):])
	}
	// A refused post is resent in its place, right after its refusal.
	if got := dedupe(order); !slices.Equal(got, firstN(posts)) {
		t.Fatalf("posts reached Slack in the order %v, want 0..%d in filing order", got, posts-1)
	}
}

func dedupe(xs []string) []string {
	var out []string
	for _, x := range xs {
		if len(out) == 0 || out[len(out)-1] != x {
			out = append(out, x)
		}
	}
	return out
}

func firstN(n int) []string {
	var out []string
	for i := range n {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

func TestAClickGoesBeforeQueuedNotifications(t *testing.T) {
	f := newFakeSlack(t, nil)
	c := slackrate.New(slackrate.Options{Limits: limits(slackrate.Bucket{Every: 40 * time.Millisecond, Burst: 1}, slackrate.PostPerChannel)})
	api := f.api(c)
	bulk := slackrate.With(context.Background(), slackrate.Bulk)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			_, _, _, _ = api.UpdateMessageContext(bulk, "C1", "1.0", slack.MsgOptionText("bulk"+strconv.Itoa(i), false))
		})
	}
	waitFor(t, "the notifications to queue", func() bool { return c.Waiting("chat.update") >= 8 })
	click := slackrate.With(context.Background(), slackrate.Interactive)
	if _, _, _, err := api.UpdateMessageContext(click, "C1", "1.0", slack.MsgOptionText("click", false)); err != nil {
		t.Fatalf("click's update: %v", err)
	}
	wg.Wait()
	log := f.log()
	at := slices.Index(log, "chat.update:click")
	if sentBefore := at; sentBefore > 3 {
		t.Fatalf("the click went out after %d queued notifications (%v); it must go first", sentBefore, log)
	}
}

func TestACallThatWouldOutliveItsDeadlineIsNotSent(t *testing.T) {
	f := newFakeSlack(t, func(method string, n int) (int, int) { return http.StatusTooManyRequests, 10 })
	c := slackrate.New(slackrate.Options{})
	ctx, cancel := context.WithTimeout(slackrate.With(context.Background(), slackrate.Interactive), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := f.api(c).OpenViewContext(ctx, "trigger", slack.ModalViewRequest{Type: slack.VTModal})
	wait, ok := slackrate.Throttled(err)
	if !ok {
		t.Fatalf("views.open behind a 10s Retry-After with 2s left = %v, want a ThrottledError", err)
	}
	if wait < 9*time.Second || time.Since(start) > time.Second {
		t.Fatalf("told to wait %v after %v; want about 10s, said at once", wait, time.Since(start))
	}
	var te *slackrate.ThrottledError
	if !errors.As(err, &te) || te.Method != "views.open" {
		t.Fatalf("error %v does not name views.open", err)
	}
}

func TestReplicasHonourOneAnothersRetryAfter(t *testing.T) {
	var mu sync.Mutex
	refusals := 0
	f := newFakeSlack(t, func(method string, n int) (int, int) {
		mu.Lock()
		defer mu.Unlock()
		if n == 0 {
			refusals++
			return http.StatusTooManyRequests, 1
		}
		return http.StatusOK, 0
	})
	shared := slackrate.NewLocal()
	a := slackrate.New(slackrate.Options{Shared: shared})
	b := slackrate.New(slackrate.Options{Shared: shared})
	done := make(chan error, 1)
	go func() { _, err := f.api(a).GetUserInfoContext(context.Background(), "U1"); done <- err }()
	waitFor(t, "replica a's 429", func() bool { return len(f.log()) >= 1 })
	time.Sleep(50 * time.Millisecond) // a records its hold right after the 429
	start := time.Now()
	if _, err := f.api(b).GetUserInfoContext(context.Background(), "U2"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 800*time.Millisecond {
		t.Fatalf("replica b called after %v, inside the Retry-After replica a heard", took)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if refusals != 1 {
		t.Fatalf("Slack refused %d calls; the second replica must not earn its own 429", refusals)
	}
}

func TestOffPacesByRetryAfterAlone(t *testing.T) {
	f := newFakeSlack(t, nil)
	l := slackrate.Published()
	l.Off = true
	c := slackrate.New(slackrate.Options{Limits: &l})
	api := f.api(c)
	start := time.Now()
	for range 30 {
		if _, _, _, err := api.UpdateMessageContext(context.Background(), "C1", "1.0", slack.MsgOptionText("x", false)); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("30 calls with pacing off took %v", took)
	}
}

// TestUpdatesOfOneMessageLandInOrder: a slow chat.update must not be overtaken by a later
// update of the same message, or the message ends showing the older state; updates of other
// messages go on meanwhile.
func TestUpdatesOfOneMessageLandInOrder(t *testing.T) {
	var mu sync.Mutex
	var landed []string
	slow, arrived := make(chan struct{}), make(chan struct{})
	var release sync.Once
	f := newFakeSlack(t, nil)
	t.Cleanup(func() { release.Do(func() { close(slow) }) }) // before the server closes
	f.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		text := r.PostForm.Get("text")
		if text == "reported" {
			close(arrived)
			<-slow // Slack takes its time over the first update
		}
		mu.Lock()
		landed = append(landed, text)
		mu.Unlock()
		fmt.Fprint(w, `{"ok":true,"channel":"C1","ts":"1.0"}`)
	})
	c := slackrate.New(slackrate.Options{})
	api := f.api(c)
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _, _, _ = api.UpdateMessageContext(ctx, "C1", "1.0", slack.MsgOptionText("reported", false))
	}()
	<-arrived
	second := make(chan struct{})
	go func() {
		defer close(second)
		_, _, _, _ = api.UpdateMessageContext(ctx, "C1", "1.0", slack.MsgOptionText("revoked", false))
	}()
	waitFor(t, "the second update in line", func() bool { return c.Waiting("chat.update") >= 1 })
	// Another message's update is not held up by the slow one.
	if _, _, _, err := api.UpdateMessageContext(ctx, "C1", "2.0", slack.MsgOptionText("other", false)); err != nil {
		t.Fatal(err)
	}
	release.Do(func() { close(slow) })
	<-done
	<-second
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"other", "reported", "revoked"}; !slices.Equal(landed, want) {
		t.Fatalf("updates landed in the order %v, want %v", landed, want)
	}
}

// TestIdleLanesAreForgotten: a lane per DM channel must not pile up for every person tapbot
// ever wrote to.
func TestIdleLanesAreForgotten(t *testing.T) {
	f := newFakeSlack(t, nil)
	l := slackrate.Published()
	l.PostPerChannel = slackrate.Bucket{Every: time.Millisecond, Burst: 100}
	l.PostWorkspace = slackrate.Bucket{Every: time.Microsecond, Burst: 10000}
	c := slackrate.New(slackrate.Options{Limits: &l})
	api := f.api(c)
	for i := range 3000 {
		if _, _, err := api.PostMessageContext(context.Background(), fmt.Sprintf("D%05d", i), slack.MsgOptionText("hi", false)); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Lanes(); n > 1100 {
		t.Fatalf("%d lanes kept after posts to 3,000 channels; idle ones must be forgotten", n)
	}
}
