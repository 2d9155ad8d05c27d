package slackrate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Doer sends an HTTP request; slack.OptionHTTPClient takes one, and *http.Client is one.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Options configure a Client. Every field is optional.
type Options struct {
	// HTTP sends the calls; nil is http.DefaultClient.
	HTTP Doer
	// Shared holds the buckets; nil is a NewLocal, right for one process.
	Shared Shared
	// Limits are the buckets calls are paced with; nil is Published().
	Limits *Limits
	Logger *slog.Logger
	// Observe counts every HTTP attempt by method and outcome: ok, error (Slack answered
	// ok:false), ratelimited (429), failed (no answer), and gave_up for a call not sent
	// because its caller's deadline or context ended while it waited.
	Observe func(method, outcome string)
	// ObserveWait records how long each call waited for Slack's limits, by priority.
	ObserveWait func(priority string, waited time.Duration)
}

// Client paces Slack Web API calls; pass it to slack.OptionHTTPClient. It is safe for
// concurrent use.
type Client struct {
	next        Doer
	shared      Shared
	limits      Limits
	log         *slog.Logger
	observe     func(method, outcome string)
	observeWait func(priority string, waited time.Duration)

	mu    sync.Mutex
	lanes map[string]*lane
	// sharedWarned is when the last "limits store unavailable" warning was logged (unix nanos).
	sharedWarned atomic.Int64
}

// New returns a Client.
func New(o Options) *Client {
	c := &Client{next: o.HTTP, shared: o.Shared, log: o.Logger, observe: o.Observe, observeWait: o.ObserveWait,
		lanes: map[string]*lane{}}
	if c.next == nil {
		c.next = http.DefaultClient
	}
	if c.shared == nil {
		c.shared = NewLocal()
	}
	if o.Limits != nil {
		c.limits = *o.Limits
	} else {
		c.limits = Published()
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.observe == nil {
		c.observe = func(string, string) {}
	}
	if c.observeWait == nil {
		c.observeWait = func(string, time.Duration) {}
	}
	return c
}

// ThrottledError is a call that was not sent because Slack's limits would hold it past its
// caller's deadline: a modal whose trigger_id expires in three seconds, say. Wait is about how
// long until such a call would go out.
type ThrottledError struct {
	Method string
	Wait   time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("%s not sent: Slack's rate limit allows it in about %s, after the caller's deadline",
		e.Method, e.Wait.Round(time.Second))
}

// Throttled reports whether err is a ThrottledError, and how long its call would have waited.
func Throttled(err error) (time.Duration, bool) {
	var te *ThrottledError
	if errors.As(err, &te) {
		return te.Wait, true
	}
	return 0, false
}

// Waiting counts the calls of method waiting for Slack's limits on this replica now.
func (c *Client) Waiting(method string) int {
	c.mu.Lock()
	lanes := make([]*lane, 0, len(c.lanes))
	for _, l := range c.lanes {
		if l.method == method && l.primary {
			lanes = append(lanes, l)
		}
	}
	c.mu.Unlock()
	n := 0
	for _, l := range lanes {
		n += l.queued()
	}
	return n
}

// WaitingByMethod counts the calls waiting for Slack's limits on this replica now, by method
// (a chat.postMessage waiting for both its buckets counts once per bucket).
func (c *Client) WaitingByMethod() map[string]int {
	c.mu.Lock()
	lanes := make([]*lane, 0, len(c.lanes))
	for _, l := range c.lanes {
		if l.primary {
			lanes = append(lanes, l)
		}
	}
	c.mu.Unlock()
	out := map[string]int{}
	for _, l := range lanes {
		if n := l.queued(); n > 0 && l.method != "" {
			out[l.method] += n
		}
	}
	return out
}

// slot is one bucket a call draws from.
type slot struct {
	key     string
	bucket  Bucket
	ordered bool
	primary bool // the call's first slot
}

// slots are the buckets of a call: its method's, or for chat.postMessage its channel's and the
// workspace's. A channel's posts keep their order: its lane stays taken until Slack answered,
// so one post cannot overtake another on the wire (a channel allows about one a second, so
// this costs nothing). Updates of one message keep their order the same way, through a lane of
// their own that Slack does not limit, so an older state of a message can never land after a
// newer one (a report's update overtaken by the revoke that followed it).
func (c *Client) slots(method string, req *http.Request) []slot {
	s := c.bucketsOf(method, req)
	s[0].primary = true
	return s
}

func (c *Client) bucketsOf(method string, req *http.Request) []slot {
	switch method {
	case "chat.postMessage":
		return []slot{
			{key: method + "@" + formValue(req, "channel"), bucket: c.limits.PostPerChannel, ordered: true},
			{key: method, bucket: c.limits.PostWorkspace},
		}
	case "chat.update":
		return []slot{
			{key: method + "@" + formValue(req, "channel") + "/" + formValue(req, "ts"), ordered: true},
			{key: method, bucket: c.limits.For(method)},
		}
	}
	return []slot{{key: method, bucket: c.limits.For(method)}}
}

// Do sends req once its buckets allow it, and again after Retry-After for as long as Slack
// answers 429 and req's context lasts.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	method := path.Base(req.URL.Path)
	ctx := req.Context()
	prio := Of(ctx)
	if err := replayable(req); err != nil {
		return nil, err
	}
	slots := c.slots(method, req)
	seqs := make([]uint64, len(slots))
	q := &queueNote{f: onQueued(ctx)}
	var waited time.Duration
	defer func() { c.observeWait(prio.String(), waited) }()
	for attempt := 0; ; attempt++ {
		start := time.Now()
		releases, err := c.acquireAll(ctx, method, slots, seqs, prio, q)
		waited += time.Since(start)
		if err != nil {
			c.observe(method, "gave_up")
			return nil, err
		}
		if attempt > 0 {
			body, err := req.GetBody()
			if err != nil {
				release(releases)
				return nil, fmt.Errorf("%s: resend after Retry-After: %w", method, err)
			}
			req.Body = body
		}
		resp, err := c.next.Do(req)
		if err != nil {
			release(releases)
			c.observe(method, "failed")
			return nil, err
		}
		if resp.StatusCode != http.StatusTooManyRequests {
			release(releases)
			c.observe(method, outcome(resp))
			return resp, nil
		}
		wait := retryAfter(resp.Header)
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		c.observe(method, "ratelimited")
		// Held before the turn is given back, so the next call in line cannot slip out first.
		// Every bucket of the call is held: Slack does not say which limit it hit (a post's
		// channel or the workspace), and a second 429 costs more than a second's pause.
		for _, s := range slots {
			c.hold(ctx, s, wait)
		}
		release(releases)
	}
}

// acquireAll takes a token of each slot in order; each release func gives back a slot's lane.
func (c *Client) acquireAll(ctx context.Context, method string, slots []slot, seqs []uint64, prio Priority, q *queueNote) ([]func(), error) {
	var releases []func()
	for i, s := range slots {
		l := c.lane(method, s)
		done, err := c.acquire(ctx, l, prio, &seqs[i], q)
		if err != nil {
			c.unref(l)
			release(releases)
			return nil, err
		}
		if s.ordered {
			releases = append(releases, func() { done(); c.unref(l) })
		} else {
			done()
			c.unref(l)
		}
	}
	return releases, nil
}

func release(fs []func()) {
	for _, f := range fs {
		f()
	}
}

// hold keeps the slot's calls back for d here at once and on every replica through Shared.
func (c *Client) hold(ctx context.Context, s slot, d time.Duration) {
	l := c.lane("", s)
	l.holdFor(d)
	c.unref(l)
	if err := c.shared.HoldSlackCalls(ctx, "slack:"+s.key, d); err != nil && ctx.Err() == nil {
		c.warnShared(err)
	}
	c.log.Warn("Slack answered 429: holding these calls back for Retry-After", "bucket", s.key, "retry_after", d.String())
}

// warnShared logs, at most once a minute, that the shared buckets cannot be read: calls then go
// out paced by this replica alone, and Slack's own 429s still hold them back.
func (c *Client) warnShared(err error) {
	now := time.Now().UnixNano()
	last := c.sharedWarned.Load()
	if now-last < int64(time.Minute) || !c.sharedWarned.CompareAndSwap(last, now) {
		return
	}
	c.log.Warn("Slack rate-limit store unavailable; pacing Slack calls on Slack's answers alone", "err", err)
}

// queueNote calls a request's OnQueued function at most once.
type queueNote struct {
	f    func(Queue)
	done bool
}

func (q *queueNote) note(ahead int, wait time.Duration) {
	if q.f == nil || q.done || wait < queuedAfter {
		return
	}
	q.done = true
	q.f(Queue{Ahead: ahead, Wait: wait})
}

// acquire waits for l's turn in priority order, then for a token of l's bucket, giving the turn
// to a call that ranks before this one while it sleeps. The returned func gives the turn back.
func (c *Client) acquire(ctx context.Context, l *lane, prio Priority, seq *uint64, q *queueNote) (func(), error) {
	w := l.enqueue(prio, seq)
	for {
		if ahead, wait := l.ahead(w); ahead > 0 {
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait+sendMargin {
				l.leave(w)
				return nil, &ThrottledError{Method: l.method, Wait: wait}
			}
			q.note(ahead, wait)
		}
		select {
		case <-w.turn():
		case <-ctx.Done():
			l.leave(w)
			return nil, ctx.Err()
		}
	sleep:
		for {
			wait, err := c.take(ctx, l, prio)
			if err != nil {
				if ctx.Err() != nil {
					l.release(w)
					return nil, ctx.Err()
				}
				c.warnShared(err)
				wait = 0
			}
			if wait <= 0 {
				l.send(w)
				return func() { l.release(w) }, nil
			}
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait+sendMargin {
				l.release(w)
				return nil, &ThrottledError{Method: l.method, Wait: wait}
			}
			l.sleeping(w, wait, c.log)
			q.note(0, wait)
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				l.release(w)
				return nil, ctx.Err()
			case <-w.preempt:
				t.Stop()
				l.yield(w)
				break sleep
			}
		}
	}
}

func (c *Client) take(ctx context.Context, l *lane, prio Priority) (time.Duration, error) {
	if d := l.held(); d > 0 {
		return d, nil
	}
	if c.limits.Off || l.bucket.Every <= 0 {
		return 0, nil // no pacing, or a lane that only keeps order
	}
	return c.shared.TakeSlackCall(ctx, "slack:"+l.key, l.bucket.Every, burstFor(l.bucket, prio))
}

// sendMargin is what a call needs after its token to reach Slack and be answered: a caller
// whose deadline leaves less is told to wait instead (ThrottledError).
const sendMargin = 500 * time.Millisecond

// lane returns the slot's lane, counted as in use until unref. Idle lanes are forgotten once
// there are many (a lane per DM channel and per updated message): an idle lane holds nothing
// a new one would not.
func (c *Client) lane(method string, s slot) *lane {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.lanes[s.key]
	if l == nil {
		if len(c.lanes) >= maxIdleLanes {
			for k, idle := range c.lanes {
				if idle.refs == 0 && !idle.busy() && idle.held() == 0 {
					delete(c.lanes, k)
				}
			}
		}
		l = &lane{key: s.key, method: method, bucket: s.bucket, primary: s.primary}
		c.lanes[s.key] = l
	}
	if l.method == "" {
		l.method = method
	}
	l.refs++
	return l
}

// maxIdleLanes is how many lanes a Client keeps before it forgets the idle ones.
const maxIdleLanes = 1024

func (c *Client) unref(l *lane) {
	c.mu.Lock()
	l.refs--
	c.mu.Unlock()
}

// replayable makes sure req can be sent again after a 429.
func replayable(req *http.Request) error {
	if req.Body == nil || req.Body == http.NoBody || req.GetBody != nil {
		return nil
	}
	b, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return fmt.Errorf("read request body: %w", err)
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	return nil
}

// formValue reads an argument of a Web API call, form or JSON encoded.
func formValue(req *http.Request, name string) string {
	if v := req.URL.Query().Get(name); v != "" {
		return v
	}
	if req.GetBody == nil {
		return ""
	}
	body, err := req.GetBody()
	if err != nil {
		return ""
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, 1<<20))
	if err != nil {
		return ""
	}
	ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if ct == "application/json" {
		var v map[string]any
		_ = json.Unmarshal(b, &v)
		s, _ := v[name].(string)
		return s
	}
	vals, _ := url.ParseQuery(string(b))
	return vals.Get(name)
}

// retryAfter is Slack's Retry-After in whole seconds, at least one.
func retryAfter(h http.Header) time.Duration {
	sec, err := strconv.ParseInt(strings.TrimSpace(h.Get("Retry-After")), 10, 64)
	if err != nil || sec < 1 {
		sec = 1
	}
	return time.Duration(sec) * time.Second
}

// outcome labels an answer other than 429: ok, or error when Slack said ok:false. The body is
// read and put back for the caller.
func outcome(resp *http.Response) string {
	if resp.StatusCode != http.StatusOK {
		return "error"
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	if err != nil {
		return "failed"
	}
	var v struct {
		OK bool `json:"ok"`
	}
	if json.Unmarshal(b, &v) != nil || !v.OK {
		return "error"
	}
	return "ok"
}
