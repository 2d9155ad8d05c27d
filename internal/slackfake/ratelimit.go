package slackfake

import (
	"maps"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Bucket is one token bucket: a call every Every on average, Burst at once.
//
// A bucket starts full (Burst tokens), a call takes one token, and tokens come back at one per
// Every (divided by RateLimits.Speed) up to Burst. A Bucket whose Every is zero or negative does
// not limit; a Burst below 1 counts as 1.
type Bucket struct {
	Every time.Duration
	Burst int
}

// limits reports whether the bucket limits anything.
func (b Bucket) limits() bool { return b.Every > 0 }

func (b Bucket) burst() float64 { return float64(max(b.Burst, 1)) }

// RateLimits is how the fake throttles the Web API.
//
// A call over a limit is answered as Slack answers it: HTTP 429 with a "Retry-After: <seconds>"
// header and the body {"ok":false,"error":"ratelimited"}, which slack-go returns as
// *slack.RateLimitedError. Retry-After is the real time until the call would be allowed, rounded
// up to whole seconds and at least 1. A refused call has no effect and takes no token; it is
// logged (Call.Error "ratelimited", counted by Calls and RateLimited, not by Served) but is not
// a violation: being throttled is normal Slack behaviour.
//
// Limits are per method (Slack limits per method, per app, per workspace), measured with the
// real clock, never Options.Now, so moving Options.Now to expire trigger_ids and response_urls
// does not refill buckets. response_url POSTs and Socket Mode frames are not throttled.
//
// The zero RateLimits limits nothing (every Bucket is zero); start from PublishedRateLimits and
// change what you need instead.
type RateLimits struct {
	// Off turns throttling off: every call is answered at once (measuring tapbot itself).
	// Windows set with ThrottleFor still apply.
	Off bool
	// Speed runs Slack's limits that many times faster than real time (buckets refill Speed
	// times as fast; Retry-After is in real seconds); 0 means 1.
	Speed float64
	// Methods maps a method name to its bucket; a method not listed uses Default.
	// Every method has buckets of its own, Default ones included.
	Methods map[string]Bucket
	Default Bucket
	// PostMessagePerChannel and PostMessageWorkspace are chat.postMessage's two limits.
	// chat.postMessage draws one token from its channel's PostMessagePerChannel bucket and one
	// from the single PostMessageWorkspace bucket (and from Methods["chat.postMessage"] if that
	// is listed; Default never applies to it). The channel is the post target: a user ID and
	// the app's DM channel with that user share one bucket; any other channel argument is used
	// as sent.
	PostMessagePerChannel Bucket
	PostMessageWorkspace  Bucket
}

// Slack's published tiers, as buckets. Slack publishes the rates ("per minute") but not the
// burst sizes ("small bursts", "sporadic bursts", "generous bursts"); the bursts are the fake's
// choice: Tier 1 3, Tier 2 5, Tier 3 10, Tier 4 20.
var (
	tier1                 = Bucket{Every: time.Minute, Burst: 3}        // 1 per minute
	tier2                 = Bucket{Every: time.Minute / 20, Burst: 5}   // 20 per minute
	tier3                 = Bucket{Every: time.Minute / 50, Burst: 10}  // 50 per minute
	tier4                 = Bucket{Every: time.Minute / 100, Burst: 20} // 100 per minute
	postMessagePerChannel = Bucket{Every: time.Second, Burst: 5}        // 1 per second per channel, short bursts
	postMessageWorkspace  = Bucket{Every: time.Minute / 300, Burst: 30} // "several hundred messages per minute"
)

// PublishedRateLimits returns Slack's published tiers with the bursts chosen above, at Speed 1:
//
//	Tier 1 (1/min, burst 3):    apps.connections.open
//	Tier 2 (20/min, burst 5):   usergroups.users.list, usergroups.list, users.list
//	Tier 3 (50/min, burst 10):  chat.update, chat.delete, conversations.open,
//	                            conversations.info, users.lookupByEmail; also Default, for
//	                            every method not listed
//	Tier 4 (100/min, burst 20): users.info, chat.postEphemeral, views.open, views.update,
//	                            views.publish, views.push, auth.test
//	chat.postMessage: 1/s per channel with burst 5, and a workspace-wide 300/min
//	                  ("several hundred messages per minute") with burst 30.
//
// Slack does not publish burst sizes; these are the fake's choice.
func PublishedRateLimits() RateLimits {
	return RateLimits{
		Speed: 1,
		Methods: map[string]Bucket{
			"apps.connections.open": tier1,

			"usergroups.users.list": tier2,
			"usergroups.list":       tier2,
			"users.list":            tier2,

			"chat.update":         tier3,
			"chat.delete":         tier3,
			"conversations.open":  tier3,
			"conversations.info":  tier3,
			"users.lookupByEmail": tier3,

			"users.info":         tier4,
			"chat.postEphemeral": tier4,
			"views.open":         tier4,
			"views.update":       tier4,
			"views.publish":      tier4,
			"views.push":         tier4,
			"auth.test":          tier4,
		},
		Default:               tier3,
		PostMessagePerChannel: postMessagePerChannel,
		PostMessageWorkspace:  postMessageWorkspace,
	}
}

// normalized returns a copy of l that shares nothing with it, Speed 0 (or below) made 1.
func (l RateLimits) normalized() RateLimits {
	if !(l.Speed > 0) {
		l.Speed = 1
	}
	l.Methods = maps.Clone(l.Methods)
	return l
}

// limiter is the throttling state; s.mu guards it.
type limiter struct {
	limits  RateLimits
	buckets map[string]*bucketState // see bucketsLocked for the keys
	until   map[string]time.Time    // method -> end of its ThrottleFor window (real clock)
	limited map[string]int          // method -> 429s answered
	now     func() time.Time        // the real clock; tests may replace it
}

type bucketState struct {
	tokens float64
	at     time.Time
}

func newLimiter(l RateLimits) limiter {
	return limiter{
		limits:  l.normalized(),
		buckets: map[string]*bucketState{},
		until:   map[string]time.Time{},
		limited: map[string]int{},
		now:     time.Now,
	}
}

// SetRateLimits replaces the limits the fake enforces; every bucket starts full. Windows set
// with ThrottleFor are kept.
func (s *Server) SetRateLimits(l RateLimits) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rl.limits = l.normalized()
	s.rl.buckets = map[string]*bucketState{}
	s.notifyLocked()
}

// RateLimitsInUse returns the limits the server enforces now (Speed 0 reported as 1).
func (s *Server) RateLimitsInUse() RateLimits {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rl.limits.normalized()
}

// ThrottleFor makes every call of method answer 429 for d of real time (Slack stricter than
// its published rate, e.g. an enterprise-wide limit), with Retry-After the time left (ceil, min 1).
// It applies even when RateLimits.Off is set, is not sped up by RateLimits.Speed, and replaces
// an earlier window for the same method (d <= 0 ends it). A call refused by the window takes no
// token.
func (s *Server) ThrottleFor(method string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.rl.until, method)
		return
	}
	s.rl.until[method] = s.rl.now().Add(d)
}

// RateLimited counts the 429s answered for method ("" counts all methods).
func (s *Server) RateLimited(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if method == "" {
		n := 0
		for _, c := range s.rl.limited {
			n += c
		}
		return n
	}
	return s.rl.limited[method]
}

// Served counts the calls of a Web API method that were not rate limited ("response_url"
// counts response_url POSTs), whatever they answered; Calls counts every call.
func (s *Server) Served(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.Method == method && c.Error != errRateLimited {
			n++
		}
	}
	return n
}

const errRateLimited = "ratelimited"

// throttleLocked decides whether a call of method with p may run now. If it may, it takes a
// token from every bucket the call draws from and returns 0; if not, it takes nothing, counts
// the 429 and returns the real time until the call would be allowed.
func (s *Server) throttleLocked(method string, p params) time.Duration {
	now := s.rl.now()
	var wait time.Duration
	if until, ok := s.rl.until[method]; ok {
		if left := until.Sub(now); left > 0 {
			wait = left
		} else {
			delete(s.rl.until, method)
		}
	}
	var take []*bucketState
	if !s.rl.limits.Off {
		speed := s.rl.limits.Speed
		for _, kb := range s.bucketsLocked(method, p) {
			st := s.rl.buckets[kb.key]
			if st == nil {
				st = &bucketState{tokens: kb.b.burst(), at: now}
				s.rl.buckets[kb.key] = st
			}
			// Refill for the real time since the last look.
			if el := now.Sub(st.at); el > 0 {
				st.tokens = math.Min(kb.b.burst(), st.tokens+el.Seconds()*speed/kb.b.Every.Seconds())
				st.at = now
			}
			if st.tokens >= 1 {
				take = append(take, st)
				continue
			}
			need := time.Duration(math.Ceil((1 - st.tokens) * float64(kb.b.Every) / speed))
			wait = max(wait, need)
		}
	}
	if wait > 0 {
		s.rl.limited[method]++
		return wait
	}
	for _, st := range take {
		st.tokens--
	}
	return 0
}

type keyedBucket struct {
	key string
	b   Bucket
}

// bucketsLocked lists the buckets a call draws from, keyed "method:<name>",
// "postMessage:channel:<target>" and "postMessage:workspace".
func (s *Server) bucketsLocked(method string, p params) []keyedBucket {
	l := &s.rl.limits
	var out []keyedBucket
	add := func(key string, b Bucket) {
		if b.limits() {
			out = append(out, keyedBucket{key, b})
		}
	}
	if method != "chat.postMessage" {
		b, ok := l.Methods[method]
		if !ok {
			b = l.Default
		}
		add("method:"+method, b)
		return out
	}
	if b, ok := l.Methods[method]; ok {
		add("method:"+method, b)
	}
	add("postMessage:channel:"+s.postBucketKeyLocked(p["channel"]), l.PostMessagePerChannel)
	add("postMessage:workspace", l.PostMessageWorkspace)
	return out
}

// postBucketKeyLocked names chat.postMessage's per-channel bucket for a channel argument: a user
// ID and the app's DM channel with that user name the same bucket, as postTargetLocked resolves
// a user ID to that DM. It creates nothing, so a refused call leaves no DM behind.
func (s *Server) postBucketKeyLocked(id string) string {
	if _, isUser := s.users[id]; isUser {
		return "dm:" + id
	}
	if c := s.channels[id]; c != nil && c.isDM() {
		return "dm:" + c.dmUser
	}
	return id
}

// retryAfterSeconds is Retry-After for a wait: whole seconds, rounded up, at least 1.
func retryAfterSeconds(wait time.Duration) int64 {
	return max(int64((wait+time.Second-1)/time.Second), 1)
}

// writeRateLimited answers a throttled call exactly as Slack does.
func writeRateLimited(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.FormatInt(retryAfterSeconds(wait), 10))
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write([]byte(`{"ok":false,"error":"ratelimited"}`))
}
