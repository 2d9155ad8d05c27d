// Package slackrate paces tapbot's Slack Web API calls to Slack's rate limits, which are per
// method per app per workspace and so shared by every replica. Every call goes through one
// Client: it waits for a token of the method's bucket (kept where all replicas see it), lets a
// person waiting on a click go before bulk notifications, and when Slack still answers 429 it
// holds that bucket for Retry-After on every replica and sends the call again. Being throttled
// delays a call; it never fails it, unless the caller's own deadline (a trigger_id's three
// seconds) cannot be met, and then the caller learns how long to wait (ThrottledError).
package slackrate

import (
	"math"
	"time"
)

// Bucket is one token bucket: on average one call every Every, and Burst calls at once.
type Bucket struct {
	Every time.Duration
	Burst int
}

// Limits are the buckets tapbot paces its calls with.
type Limits struct {
	// Off turns pacing off: calls go out at once and only Slack's own 429s slow them down.
	Off bool
	// Methods maps a Web API method to its bucket; a method not listed uses Default.
	Methods map[string]Bucket
	Default Bucket
	// PostPerChannel and PostWorkspace are chat.postMessage's two limits: each channel has
	// its own bucket, and every post also draws from the workspace's.
	PostPerChannel Bucket
	PostWorkspace  Bucket
}

// The tiers of Slack's published rate limits (docs.slack.dev/apis/web-api/rate-limits; Slack's
// Java SDK lists the same tiers in MethodsRateLimits). Slack publishes rates ("50+ per minute")
// but not burst sizes, so the bursts are tapbot's reading of "small", "occasional",
// "sporadic" and "generous" bursts.
var (
	Tier1 = Bucket{Every: time.Minute, Burst: 3}
	Tier2 = Bucket{Every: time.Minute / 20, Burst: 5}
	Tier3 = Bucket{Every: time.Minute / 50, Burst: 10}
	Tier4 = Bucket{Every: time.Minute / 100, Burst: 20}
	// chat.postMessage: about one message a second per channel with short bursts, and a
	// workspace-wide limit Slack describes as several hundred messages a minute.
	PostPerChannel = Bucket{Every: time.Second, Burst: 5}
	PostWorkspace  = Bucket{Every: time.Minute / 300, Burst: 30}
)

// Published returns Slack's published limits for the methods tapbot calls. A method not listed
// is paced as Tier 3, the tier of most of Slack's write methods.
func Published() Limits {
	return Limits{
		Methods: map[string]Bucket{
			"apps.connections.open": Tier1,
			"usergroups.users.list": Tier2,
			"usergroups.list":       Tier2,
			"users.list":            Tier2,
			"chat.update":           Tier3,
			"chat.delete":           Tier3,
			"conversations.open":    Tier3,
			"conversations.info":    Tier3,
			"users.lookupByEmail":   Tier3,
			"users.info":            Tier4,
			"chat.postEphemeral":    Tier4,
			"views.open":            Tier4,
			"views.update":          Tier4,
			"views.publish":         Tier4,
			"views.push":            Tier4,
			"auth.test":             Tier4,
		},
		Default:        Tier3,
		PostPerChannel: PostPerChannel,
		PostWorkspace:  PostWorkspace,
	}
}

// Scaled returns the limits run speed times faster, for tests against a Slack fake that runs
// Slack's limits in compressed time; speed 1 (or 0) returns them unchanged.
func (l Limits) Scaled(speed float64) Limits {
	if speed <= 0 || speed == 1 {
		return l
	}
	scale := func(b Bucket) Bucket {
		b.Every = time.Duration(math.Ceil(float64(b.Every) / speed))
		return b
	}
	out := l
	out.Methods = make(map[string]Bucket, len(l.Methods))
	for m, b := range l.Methods {
		out.Methods[m] = scale(b)
	}
	out.Default = scale(l.Default)
	out.PostPerChannel = scale(l.PostPerChannel)
	out.PostWorkspace = scale(l.PostWorkspace)
	return out
}

// For returns the bucket of a method other than chat.postMessage.
func (l Limits) For(method string) Bucket {
	if b, ok := l.Methods[method]; ok {
		return b
	}
	return l.Default
}

// burstFor is how much of a bucket's burst a call of priority p may use: bulk work leaves a
// quarter of the burst to the normal flow and another quarter to clicks, and the normal flow
// leaves a quarter to clicks, so a person who clicked never waits behind a queue of
// notifications. Every class still gets the bucket's full rate when the others are idle.
func burstFor(b Bucket, p Priority) int {
	reserve := (b.Burst + 3) / 4
	burst := b.Burst
	switch p {
	case Normal:
		burst -= reserve
	case Bulk:
		burst -= 2 * reserve
	}
	return max(burst, 1)
}
