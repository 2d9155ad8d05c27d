package main

import (
	"fmt"
	"strings"
)

// burstReport is everything one burst measured; like report, plain numbers for -json.
type burstReport struct {
	Mode       string          `json:"mode"` // "burst" or "burst-short"
	Machine    machine         `json:"machine"`
	Setup      burstSetup      `json:"setup"`
	Delivery   deliveryReport  `json:"delivery"`
	Requesters requesterReport `json:"requesters"`
	Timing     burstTiming     `json:"timing"`
	Floor      floorReport     `json:"floor"`
	// Ratio is the time to the last Reveal DM over the floor; 0 when the floor is 0 (a burst
	// small enough to fit in every bucket's burst).
	Ratio float64 `json:"ratio"`
	// RatioBeforeLastDM is the same time over the floor of only the calls made up to the last
	// Reveal DM: what tapbot sent after it cannot have delayed it.
	RatioBeforeLastDM float64 `json:"ratio_before_last_dm"`
	// RatioAllCalls is the same time over the floor of every call Slack served, repeats of
	// conversations.open included.
	RatioAllCalls float64    `json:"ratio_all_calls"`
	Slack         slackCalls `json:"slack"`
	Graph         struct {
		CreatePassCalls int `json:"create_pass_calls"`
	} `json:"graph"`
	BotLog     botLog     `json:"tapbot_log"`
	Violations violations `json:"violations"`
	Targets    []target   `json:"targets"`
}

type burstSetup struct {
	Requests           int    `json:"requests"`
	Managers           int    `json:"managers"`
	RequestsPerManager int    `json:"requests_per_manager"`
	Command            string `json:"command"`
	// SlackRateLimits and SlackSpeed are the fake's throttling; TapbotPacing is tapbot's own.
	SlackRateLimits  string  `json:"slack_rate_limits"`
	SlackSpeed       float64 `json:"slack_speed"`
	TapbotPacing     string  `json:"tapbot_slack_pacing"`
	RatePerRequester int     `json:"rate_per_requester"`
	GraphLatencyMs   float64 `json:"graph_latency_ms"`
	GraphConcurrency int     `json:"graph_concurrency"`
	TapbotSource     string  `json:"tapbot_source"`
}

type deliveryReport struct {
	Requests int `json:"requests"`
	// Delivered counts the requests with exactly one approval message, one pass in Entra and
	// one Reveal DM, whose approval message ends saying the pass was sent.
	Delivered        int      `json:"delivered"`
	Approved         int      `json:"approve_clicks"`
	ApprovalMessages int      `json:"approval_messages"`
	Passes           int      `json:"passes"`
	RevealDMs        int      `json:"reveal_dms"`
	Failed           int      `json:"failed"`
	Cancelled        int      `json:"cancelled"`
	Problems         int      `json:"problems"`
	FirstProblems    []string `json:"first_problems,omitempty"`
}

type requesterReport struct {
	Managers int `json:"managers"`
	// Replies is every text the managers were shown: replies to /tap, ephemerals, DMs.
	Replies       int      `json:"replies"`
	Warned        int      `json:"warned"`
	Warnings      int      `json:"warnings"`
	ToldQueued    int      `json:"told_queued"`
	FirstWarnings []string `json:"first_warnings,omitempty"`
}

// burstTiming is measured from t0, the moment before the first /tap; message times are the
// fake's timestamps (ts) of the messages.
type burstTiming struct {
	FiledSec               float64 `json:"all_filed_sec"`
	FirstApprovalPostedSec float64 `json:"first_approval_posted_sec"`
	LastApprovalPostedSec  float64 `json:"last_approval_posted_sec"`
	FirstRevealDMSec       float64 `json:"first_reveal_dm_sec"`
	LastRevealDMSec        float64 `json:"last_reveal_dm_sec"`
	LastSlackCallSec       float64 `json:"last_slack_call_sec"`
	Acks                   latency `json:"acks"`
	ClickToRevealDM        latency `json:"click_to_reveal_dm"`
}

// floorReport is the floor three ways: of the calls the burst needed (the one judged), of
// every call Slack served, and of the calls served up to the last Reveal DM.
type floorReport struct {
	FloorSec           float64     `json:"floor_sec"`
	Bucket             string      `json:"bucket"`
	AllCallsSec        float64     `json:"floor_all_calls_sec"`
	AllCallsBucket     string      `json:"bucket_all_calls"`
	BeforeLastDMSec    float64     `json:"floor_before_last_dm_sec"`
	BeforeLastDMBucket string      `json:"bucket_before_last_dm"`
	Buckets            []bucketUse `json:"buckets"`
}

// bucketUse is one bucket's share of the burst.
type bucketUse struct {
	Bucket      string  `json:"bucket"`
	EveryMs     float64 `json:"every_ms"`
	Burst       int     `json:"burst"`
	StartTokens float64 `json:"start_tokens"`
	// Calls are the calls Slack served; Needed leaves out repeated conversations.open.
	Calls  int `json:"calls"`
	Needed int `json:"needed"`
	// CallsBeforeLastDM are the calls served up to and including the last Reveal DM.
	CallsBeforeLastDM    int     `json:"calls_before_last_dm"`
	FloorSec             float64 `json:"floor_sec"`
	FloorAllCallsSec     float64 `json:"floor_all_calls_sec"`
	FloorBeforeLastDMSec float64 `json:"floor_before_last_dm_sec"`
}

type slackCalls struct {
	// PerLifecycle is the Web API calls Slack served during the burst (429s left out) by
	// method, over the number of requests.
	PerLifecycle            map[string]float64 `json:"per_lifecycle"`
	WebAPIPerLifecycle      float64            `json:"web_api_per_lifecycle"`
	ResponseURLPerLifecycle float64            `json:"response_url_per_lifecycle"`
	ServedByMethod          map[string]int     `json:"served_by_method"`
	RateLimited             int                `json:"ratelimited"`
	RateLimitedByMethod     map[string]int     `json:"ratelimited_by_method"`
	// Repeats are served calls that were not needed: a conversations.open for someone whose
	// DM was already open.
	Repeats         int            `json:"repeats"`
	RepeatsByMethod map[string]int `json:"repeats_by_method"`
}

type botLog struct {
	Warnings    int      `json:"warnings"`
	Errors      int      `json:"errors"`
	FirstErrors []string `json:"first_errors,omitempty"`
}

func newBurstReport(o options) burstReport {
	mode := "burst"
	if o.Short {
		mode = "burst-short"
	}
	b := o.Burst
	gc := o.GraphConcurrency
	if gc == 0 {
		gc = defaultGraphConcurrency
	}
	return burstReport{
		Mode:    mode,
		Machine: describeMachine(),
		Setup: burstSetup{Requests: b.Requests, Managers: b.Managers,
			RequestsPerManager: (b.Requests + b.Managers - 1) / b.Managers,
			Command:            "/tap <@new starter> 1h once onboarding",
			SlackRateLimits:    "Slack's published tiers (slackfake.PublishedRateLimits)", SlackSpeed: 1,
			TapbotPacing:     "on (TAP_SLACK_PACING unset: Slack's published limits)",
			RatePerRequester: ratePerRequester(o.BotEnv), GraphLatencyMs: ms(o.GraphLatency), GraphConcurrency: gc},
	}
}

// judge compares the burst with the targets.
func (r *burstReport) judge() {
	d := r.Delivery
	ratio := target{Name: "last Reveal DM / floor", Target: fmt.Sprintf("<= %.1f", targetBurstRatio)}
	if r.Floor.FloorSec > 0 {
		ratio.Measured = fmt.Sprintf("%.2f (%.1f s / %.1f s, %s)", r.Ratio, r.Timing.LastRevealDMSec, r.Floor.FloorSec, r.Floor.Bucket)
		ratio.Met = r.Ratio <= targetBurstRatio && d.Delivered == d.Requests
	} else {
		ratio.Measured = fmt.Sprintf("n/a: the burst fits in every bucket's burst (floor 0 s; last Reveal DM %.1f s)", r.Timing.LastRevealDMSec)
	}
	r.Targets = []target{
		{"every request delivered", fmt.Sprintf("%d of %d, none failed or cancelled", d.Requests, d.Requests),
			fmt.Sprintf("%d of %d (failed %d, cancelled %d, other problems %d)", d.Delivered, d.Requests, d.Failed, d.Cancelled, d.Problems-d.Failed-d.Cancelled),
			d.Delivered == d.Requests && d.Failed == 0 && d.Cancelled == 0},
		{"requesters warned or told something went wrong", "0",
			fmt.Sprintf("%d of %d", r.Requesters.Warned, r.Requesters.Managers), r.Requesters.Warned == 0},
		ratio,
	}
}

// table renders the burst report for a terminal and for BENCHMARKS.md.
func (r *burstReport) table() string {
	var b strings.Builder
	m, s := r.Machine, r.Setup
	fmt.Fprintf(&b, "tapload (%s): %d CPUs, %s, %s RAM, Linux %s, %s, redis %s\n", r.Mode, m.CPUs, m.CPUModel,
		mb(m.MemoryBytes), m.Kernel, m.GoVersion, m.RedisVersion)
	fmt.Fprintf(&b, "%d requests (%s) for %d new starters from %d managers (%d each), approved as they appear\n",
		s.Requests, s.Command, s.Requests, s.Managers, s.RequestsPerManager)
	fmt.Fprintf(&b, "Slack fake: %s at speed %g; tapbot: pacing %s, TAP_RATE_PER_REQUESTER %d; Graph %.0f ms per call, TAP_GRAPH_CONCURRENCY %d\n",
		s.SlackRateLimits, s.SlackSpeed, s.TapbotPacing, s.RatePerRequester, s.GraphLatencyMs, s.GraphConcurrency)
	fmt.Fprintf(&b, "tapbot %s\n", s.TapbotSource)
	section := sectionWriter(&b)
	lat := func(x latency) string {
		return fmt.Sprintf("p50 %.2f s, p99 %.2f s, max %.2f s", x.P50ms/1000, x.P99ms/1000, x.MaxMs/1000)
	}
	d, rq, t := r.Delivery, r.Requesters, r.Timing
	section("Delivery", func(row func(...any)) {
		row("requests / delivered (one approval message, one pass, one Reveal DM each)", fmt.Sprintf("%d / %d", d.Requests, d.Delivered))
		row("failed / cancelled / other problems", fmt.Sprintf("%d / %d / %d", d.Failed, d.Cancelled, d.Problems-d.Failed-d.Cancelled))
		row("approve clicks / approval messages / passes in Entra / Reveal DMs", fmt.Sprintf("%d / %d / %d / %d", d.Approved, d.ApprovalMessages, d.Passes, d.RevealDMs))
		for _, p := range d.FirstProblems {
			row("problem", p)
		}
		row("requesters warned or told something went wrong", fmt.Sprintf("%d of %d (%d warnings in %d replies)", rq.Warned, rq.Managers, rq.Warnings, rq.Replies))
		for _, w := range rq.FirstWarnings {
			row("warning", w)
		}
		row("requesters told a request of theirs was queued behind Slack's limits", fmt.Sprintf("%d of %d", rq.ToldQueued, rq.Managers))
		row("tapbot log: errors / warnings", fmt.Sprintf("%d / %d", r.BotLog.Errors, r.BotLog.Warnings))
		for _, e := range r.BotLog.FirstErrors {
			row("error", e)
		}
	})
	section("Time from the first /tap", func(row func(...any)) {
		row(fmt.Sprintf("all %d /tap filed", d.Requests), fmt.Sprintf("%.3f s", t.FiledSec),
			fmt.Sprintf("acks p50 %.2f ms, p99 %.2f ms, max %.2f ms", t.Acks.P50ms, t.Acks.P99ms, t.Acks.MaxMs))
		row("first / last approval message posted", fmt.Sprintf("%.1f s / %.1f s", t.FirstApprovalPostedSec, t.LastApprovalPostedSec))
		row("first / last Reveal DM", fmt.Sprintf("%.1f s / %.1f s", t.FirstRevealDMSec, t.LastRevealDMSec), "Approve click to Reveal DM "+lat(t.ClickToRevealDM))
		row("last Slack call (approval messages and requesters updated)", fmt.Sprintf("%.1f s", t.LastSlackCallSec))
	})
	f := r.Floor
	section("Floor: the least time Slack's buckets allow for the calls the burst needed (the busiest bucket's, each as full as at t0)", func(row func(...any)) {
		verdict := "n/a"
		if f.FloorSec > 0 {
			verdict = "met"
			if r.Ratio > targetBurstRatio {
				verdict = "MISSED"
			}
		}
		row("floor: calls needed (served, repeated conversations.open left out)", fmt.Sprintf("%.1f s", f.FloorSec), f.Bucket)
		row("last Reveal DM / floor", fmt.Sprintf("%.2f", r.Ratio), fmt.Sprintf("target <= %.1f: %s", targetBurstRatio, verdict))
		row("floor of every call served (repeats included)", fmt.Sprintf("%.1f s", f.AllCallsSec), f.AllCallsBucket, fmt.Sprintf("ratio %.2f", r.RatioAllCalls))
		row("floor of the calls served up to the last Reveal DM", fmt.Sprintf("%.1f s", f.BeforeLastDMSec), f.BeforeLastDMBucket, fmt.Sprintf("ratio %.2f", r.RatioBeforeLastDM))
	})
	section("Busiest buckets", func(row func(...any)) {
		row("bucket", "one call per", "burst", "tokens at t0", "served", "needed", "up to last DM", "floor", "floor up to last DM")
		shown, rest, restMax := 0, 0, 0
		for _, u := range f.Buckets {
			if shown >= 8 && u.FloorSec == 0 && u.FloorAllCallsSec == 0 {
				rest++
				restMax = max(restMax, u.Calls)
				continue
			}
			shown++
			row(u.Bucket, fmt.Sprintf("%.1f s", u.EveryMs/1000), u.Burst, fmt.Sprintf("%.1f", u.StartTokens), u.Calls, u.Needed, u.CallsBeforeLastDM,
				fmt.Sprintf("%.1f s", u.FloorSec), fmt.Sprintf("%.1f s", u.FloorBeforeLastDMSec))
		}
		if rest > 0 {
			row(fmt.Sprintf("%d more buckets (DMs), at most %d calls each, within their bursts", rest, restMax), "", "", "", "", "", "", "0.0 s", "0.0 s")
		}
	})
	sc := r.Slack
	section(fmt.Sprintf("Slack calls per lifecycle (calls Slack served during the burst / %d requests; 429s left out)", d.Requests), func(row func(...any)) {
		for _, method := range sortedKeys(sc.PerLifecycle) {
			row(method, fmt.Sprintf("%.2f", sc.PerLifecycle[method]), fmt.Sprintf("(%d calls)", sc.ServedByMethod[method]))
		}
		row("Web API, all methods", fmt.Sprintf("%.2f", sc.WebAPIPerLifecycle))
		row("of which repeats (conversations.open for a DM already open)", fmt.Sprintf("%.2f", perRequest(sc.Repeats, d.Requests)), fmt.Sprintf("(%d calls)", sc.Repeats))
		row("response_url POSTs (not rate limited)", fmt.Sprintf("%.2f", sc.ResponseURLPerLifecycle), fmt.Sprintf("(%d posts)", sc.ServedByMethod["response_url"]))
		row("Graph createPass calls", r.Graph.CreatePassCalls)
		row("429s from Slack", sc.RateLimited, counts(sc.RateLimitedByMethod, nil))
	})
	section("Protocol", func(row func(...any)) {
		row("violations (Slack / Graph)", fmt.Sprintf("%d / %d", r.Violations.Slack, r.Violations.Graph))
		for _, v := range r.Violations.First {
			row("violation", v)
		}
	})
	section("Targets", func(row func(...any)) {
		for _, tg := range r.Targets {
			verdict := "met"
			switch {
			case strings.HasPrefix(tg.Measured, "n/a"):
				verdict = "n/a"
			case !tg.Met:
				verdict = "MISSED"
			}
			row(tg.Name, tg.Target, tg.Measured, verdict)
		}
	})
	return b.String()
}
