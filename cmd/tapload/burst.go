package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tapbot/tapbot/internal/graphfake"
	"github.com/tapbot/tapbot/internal/slackfake"
)

// The burst mode: a Monday morning against Slack's published rate limits. Managers file a
// cohort's requests within a few seconds, the approver approves each as it appears, and
// tapbot, pacing its own calls as it does in production, has to get every Reveal DM out
// through Slack's buckets. The time until the last Reveal DM is judged against the floor:
// the least time the fake's buckets allow for the Slack calls the burst made.

// burstSettings is the burst's load.
type burstSettings struct {
	Requests int // one per new starter, each for a different person
	Managers int // who file them, request i by manager i mod Managers
}

// targetBurstRatio is the target for the time to the last Reveal DM over the floor.
const targetBurstRatio = 1.3

const (
	// burstQuiet is how long the bot must make no Slack call before the burst counts as done:
	// longer than the gap between two paced calls of any bucket the burst uses (Tier 3's 1.2 s);
	// the short burst waits 3 s.
	burstQuiet = 5 * time.Second
	// burstStall gives up waiting for Reveal DMs when the bot made no Slack call and sent no
	// DM for this long: what has not arrived by then is not coming.
	burstStall = 2 * time.Minute
	// maxStartWait bounds the wait for the buckets tapbot's start-up used to fill again before
	// the burst; a bucket slower than that (apps.connections.open, 1 a minute) starts the burst
	// as full as it is, and the floor counts it so.
	maxStartWait = 20 * time.Second
	// defaultRatePerRequester is tapbot's TAP_RATE_PER_REQUESTER default (requests an hour).
	defaultRatePerRequester = 10
)

// fullBurstOptions is the published burst: 100 requests from 10 managers, Slack at speed 1.
func fullBurstOptions() options {
	return options{Burst: &burstSettings{Requests: 100, Managers: 10},
		GraphLatency: 50 * time.Millisecond, Timeout: 30 * time.Minute}
}

// shortBurstOptions is CI's smoke burst. tapbot's pacing runs at Slack's real speed (it has no
// setting to run faster), so the fake must too, and the smoke stays small instead: 8 requests
// from 2 managers need 3 s of the approval channel's 1-a-second limit beyond its burst of 5, and
// fit every other bucket's burst but chat.update's, so the whole burst takes about 10 s.
func shortBurstOptions() options {
	return options{Burst: &burstSettings{Requests: 8, Managers: 2},
		GraphLatency: 50 * time.Millisecond, Timeout: 3 * time.Minute, Short: true}
}

// burstCommand is request i of a burst: manager i mod m asks for new starter i.
func burstCommand(b burstSettings) func(i int) command {
	return func(i int) command {
		return command{user: managerID(i % b.Managers), text: "<@" + targetID(i) + "> 1h once onboarding"}
	}
}

// ratePerRequester is the TAP_RATE_PER_REQUESTER the bot runs with.
func ratePerRequester(botEnv []string) int {
	n := defaultRatePerRequester
	for _, kv := range botEnv {
		if v, ok := strings.CutPrefix(kv, "TAP_RATE_PER_REQUESTER="); ok {
			if x, err := strconv.Atoi(v); err == nil && x > 0 {
				n = x
			}
		}
	}
	return n
}

// runBurst starts the fakes (Slack at its published limits), Redis and tapbot (pacing on), runs
// one burst and returns its report. As with run, the error is for a run that could not complete;
// a request not delivered or a missed target is reported, not returned.
func runBurst(ctx context.Context, o options) (rep burstReport, err error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	b := o.Burst
	if b == nil || b.Requests <= 0 || b.Managers <= 0 {
		return rep, errors.New("a burst needs a positive number of requests and managers")
	}
	if b.Managers > b.Requests {
		return rep, fmt.Errorf("%d managers for %d requests: every manager files at least one", b.Managers, b.Requests)
	}
	perManager := (b.Requests + b.Managers - 1) / b.Managers
	if limit := ratePerRequester(o.BotEnv); perManager > limit {
		return rep, fmt.Errorf("%d requests from %d managers is %d per manager, but tapbot allows a requester %d an hour (TAP_RATE_PER_REQUESTER): add managers, or raise it with -bot-env TAP_RATE_PER_REQUESTER=%d",
			b.Requests, b.Managers, perManager, limit, perManager)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	rep = newBurstReport(o)
	dir, done, err := workDir(o)
	if err != nil {
		return rep, err
	}
	defer func() { done(err) }()
	w := &world{o: o, dir: dir, log: o.Log, entraID: map[string]string{}}
	defer w.close()
	rep.Setup.TapbotSource = tapbotSource(ctx, o)
	if err := w.start(ctx); err != nil {
		return rep, err
	}
	rep.Machine.RedisVersion = w.redis.version(ctx)
	limits := w.slack.RateLimitsInUse()
	if limits.Off || limits.Speed != 1 {
		return rep, fmt.Errorf("the Slack fake runs limits %+v, not Slack's published ones at speed 1", limits)
	}

	o.Log.Info("waiting for the buckets tapbot's start-up used to fill again")
	if err := w.fillBuckets(ctx); err != nil {
		return rep, err
	}
	o.Log.Info("burst", "requests", b.Requests, "managers", b.Managers)
	if err := w.burst(ctx, &rep); err != nil {
		return rep, err
	}
	rep.Violations = violationsOf(w.slack.Violations(), w.graph.Violations())
	if err := w.bot.stop(30 * time.Second); err != nil {
		return rep, fmt.Errorf("stop tapbot: %w", err)
	}
	rep.BotLog = readBotLog(filepath.Join(dir, "tapbot.log"))
	rep.judge()
	return rep, nil
}

// tapbotSource says which tapbot a run measures: the prebuilt binary, or the commit the build
// starts from and the source files changed since (tapload's own left out), as a burst's time
// depends on how tapbot spends Slack's limits and the tree may be mid-change.
func tapbotSource(ctx context.Context, o options) string {
	if o.Tapbot != "" {
		return "prebuilt binary " + o.Tapbot
	}
	git := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, "git", args...).Output()
		return strings.TrimRight(string(out), "\n"), err
	}
	head, err := git("rev-parse", "--short", "HEAD")
	if err != nil {
		return "built from cmd/tapbot (revision unknown)"
	}
	status, err := git("status", "--porcelain", "--untracked-files=all", "--", ":/", ":(top,exclude)cmd/tapload")
	if err != nil {
		return "built from " + head + " (changes unknown)"
	}
	var changed []string
	for _, line := range strings.Split(status, "\n") {
		if len(line) < 4 {
			continue
		}
		f := line[3:]
		if (strings.HasSuffix(f, ".go") && !strings.HasSuffix(f, "_test.go")) || strings.HasSuffix(f, "go.mod") || strings.HasSuffix(f, "go.sum") {
			changed = append(changed, f)
		}
	}
	if len(changed) == 0 {
		return "built from " + head
	}
	return fmt.Sprintf("built from %s with uncommitted changes to %s", head, strings.Join(changed, ", "))
}

// fillBuckets waits until the bot is quiet and every bucket its start-up drew from is full again
// (within maxStartWait), so the burst starts as a Monday morning does: Slack's buckets full.
func (w *world) fillBuckets(ctx context.Context) error {
	if err := w.settle(ctx, time.Second, 30*time.Second); err != nil {
		return err
	}
	m := w.bucketModel(false)
	calls := w.slack.CallLog()
	now := time.Now()
	var wait time.Duration
	for key, tokens := range m.levels(calls, now) {
		kb := m.bucket(key)
		need := time.Duration((kb.burst() - tokens) * float64(kb.Every) / m.speed())
		if need > maxStartWait {
			w.log.Info("a bucket tapbot's start-up used starts the burst short of full", "bucket", bucketName(key),
				"tokens", fmt.Sprintf("%.2f of %d", tokens, kb.Burst))
			continue
		}
		wait = max(wait, need)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(wait + 100*time.Millisecond):
	}
	return w.settle(ctx, 500*time.Millisecond, 30*time.Second)
}

// burst files every request, approves each as it appears, waits for every Reveal DM and then for
// the bot to finish, and fills in the report.
func (w *world) burst(ctx context.Context, rep *burstReport) error {
	b := *w.o.Burst
	n := b.Requests
	targets := make([]string, n)
	for i := range targets {
		targets[i] = targetID(i)
	}

	approveCtx, stopApproving := context.WithCancel(ctx)
	defer stopApproving()
	t0 := time.Now()
	approver := w.approveAsTheyAppear(approveCtx)

	acks, err := slash(ctx, w.slack, n, b.Managers, burstCommand(b))
	if err != nil {
		return fmt.Errorf("filing the burst: %w", err)
	}
	rep.Timing.FiledSec = seconds(time.Since(t0))
	rep.Timing.Acks = summarize(acks)

	// Every Reveal DM, or until nothing has happened for burstStall.
	dmAt := map[string]time.Time{}
	lastCalls, lastChange := -1, time.Now()
	var tsErr error
	waitErr := w.waitFor(ctx, "every Reveal DM", timeLeft(ctx), 100*time.Millisecond, func() bool {
		for _, t := range targets {
			if _, ok := dmAt[t]; ok {
				continue
			}
			if m, _, ok := w.revealDM(t); ok {
				at, err := tsTime(m.TS)
				if err != nil {
					tsErr = err
					return true
				}
				dmAt[t] = at
				lastChange = time.Now()
			}
		}
		if c := len(w.slack.CallLog()); c != lastCalls {
			lastCalls, lastChange = c, time.Now()
		}
		return len(dmAt) == n || time.Since(lastChange) > burstStall
	})
	if tsErr != nil {
		return tsErr
	}
	if waitErr != nil {
		return fmt.Errorf("%d of %d Reveal DMs arrived: %w", len(dmAt), n, waitErr)
	}
	if len(dmAt) < n {
		w.log.Warn("the bot went quiet before every Reveal DM was sent", "sent", len(dmAt), "requests", n)
	}
	// The Reveal DM is not the last thing an approval does (the approval message and the
	// requester are told after it): let every queued call go out before counting.
	quiet := burstQuiet
	if w.o.Short {
		quiet = 3 * time.Second
	}
	if err := w.settle(ctx, quiet, 10*time.Minute); err != nil {
		return err
	}
	stopApproving()
	clicks := <-approver
	if clicks.err != nil {
		return clicks.err
	}

	calls := w.slack.CallLog()
	var first, end time.Time
	for _, at := range dmAt {
		if at.After(end) {
			end = at
		}
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	t := &rep.Timing
	if !end.IsZero() {
		t.FirstRevealDMSec = seconds(first.Sub(t0))
		t.LastRevealDMSec = seconds(end.Sub(t0))
	}
	firstApproval, lastApproval := w.approvalsPosted()
	t.FirstApprovalPostedSec = seconds(firstApproval.Sub(t0))
	t.LastApprovalPostedSec = seconds(lastApproval.Sub(t0))
	var toDM []time.Duration
	for target, at := range dmAt {
		if c, ok := clicks.at[target]; ok {
			toDM = append(toDM, at.Sub(c))
		}
	}
	t.ClickToRevealDM = summarize(toDM)
	var lastCall time.Time
	for _, c := range calls {
		if c.Error != "ratelimited" && c.At.After(lastCall) {
			lastCall = c.At
		}
	}
	t.LastSlackCallSec = seconds(lastCall.Sub(t0))

	w.checkDelivery(rep, targets, clicks.at)
	w.checkRequesters(rep, b)
	rep.Graph.CreatePassCalls = w.graph.Calls(graphfake.OpCreatePass)

	m := w.bucketModel(true)
	rep.account(m, calls, t0, n)
	if w.o.KeepDir {
		w.writeCallLog(calls, t0)
	}
	return nil
}

// writeCallLog keeps the burst's Slack calls next to the bot's log, one a line: seconds since
// t0, method, the arguments that say where it went (no text or blocks), and its error.
func (w *world) writeCallLog(calls []slackfake.Call, t0 time.Time) {
	var b strings.Builder
	for _, c := range calls {
		var args []string
		for _, k := range []string{"channel", "users", "user", "ts", "response_type", "replace_original"} {
			if v, ok := c.Params[k]; ok {
				args = append(args, k+"="+v)
			}
		}
		if strings.Contains(c.Params["blocks"], "Reveal pass") {
			args = append(args, "(Reveal DM)")
		}
		fmt.Fprintf(&b, "%9.3f %-20s %-10s %s\n", c.At.Sub(t0).Seconds(), c.Method, c.Error, strings.Join(args, " "))
	}
	path := filepath.Join(w.dir, "burst-calls.log")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		w.log.Info("call log not kept", "err", err)
	}
}

// timeLeft is the time left before ctx's deadline, for a wait that the run's own timeout bounds.
func timeLeft(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl)
	}
	return time.Hour
}

// clicks is what the approver did: when they clicked Approve for each target, and the first
// click that failed.
type clicks struct {
	at  map[string]time.Time
	err error
}

// approveAsTheyAppear has the approver click Approve on every approval message as it appears in
// the approval channel, once per message, until ctx ends; the result comes on the channel then.
func (w *world) approveAsTheyAppear(ctx context.Context) <-chan clicks {
	out := make(chan clicks, 1)
	go func() {
		var (
			mu      sync.Mutex
			res     = clicks{at: map[string]time.Time{}}
			wg      sync.WaitGroup
			clicked = map[string]bool{}
		)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
	poll:
		for {
			for _, m := range w.slack.Messages(approvalChannel) {
				if clicked[m.TS] {
					continue
				}
				var approve *slackfake.Button
				for _, b := range m.Buttons() {
					if b.Text == "Approve" {
						approve = &b
					}
				}
				match := mentionRE.FindStringSubmatch(m.PlainText())
				if approve == nil || match == nil {
					continue
				}
				clicked[m.TS] = true
				target, ref, btn := match[1], m.Ref(), *approve
				wg.Go(func() {
					cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
					defer cancel()
					at := time.Now()
					_, err := w.slack.ClickButton(cctx, approver, ref, btn.ActionID, btn.Value)
					mu.Lock()
					defer mu.Unlock()
					if _, seen := res.at[target]; !seen {
						res.at[target] = at
					}
					if err != nil && res.err == nil {
						res.err = fmt.Errorf("approve for %s: %w", target, err)
					}
				})
			}
			select {
			case <-ctx.Done():
				break poll
			case <-tick.C:
			}
		}
		wg.Wait()
		out <- res
	}()
	return out
}

// approvalsPosted is when the first and the last approval message were posted.
func (w *world) approvalsPosted() (first, last time.Time) {
	for _, m := range w.slack.Messages(approvalChannel) {
		at, err := tsTime(m.TS)
		if err != nil {
			continue
		}
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	return first, last
}

// checkDelivery checks what each new starter and the approvers see: exactly one approval
// message, one pass in Entra and one Reveal DM per request, and the approval message's last
// version says the pass was sent.
func (w *world) checkDelivery(rep *burstReport, targets []string, clickedAt map[string]time.Time) {
	approvalsFor := map[string][]slackfake.Message{}
	for _, m := range w.slack.Messages(approvalChannel) {
		if match := mentionRE.FindStringSubmatch(m.PlainText()); match != nil {
			approvalsFor[match[1]] = append(approvalsFor[match[1]], m)
		}
	}
	d := &rep.Delivery
	d.Requests = len(targets)
	problem := func(format string, args ...any) {
		d.Problems++
		if len(d.FirstProblems) < 5 {
			d.FirstProblems = append(d.FirstProblems, fmt.Sprintf(format, args...))
		}
	}
	for _, t := range targets {
		approvals := approvalsFor[t]
		passes := len(w.graph.Passes(w.entraID[t]))
		reveals := 0
		for _, m := range w.slack.Messages(t) {
			for _, v := range m.History {
				if slices.ContainsFunc(slackfake.BlocksButtons(v.Blocks), func(b slackfake.Button) bool { return b.Text == "Reveal pass" }) {
					reveals++
					break
				}
			}
		}
		d.ApprovalMessages += len(approvals)
		d.Passes += passes
		d.RevealDMs += reveals
		if _, ok := clickedAt[t]; ok {
			d.Approved++
		}
		state := "no approval message"
		if len(approvals) > 0 {
			state = approvalState(approvals[len(approvals)-1].PlainText())
		}
		switch state {
		case "failed":
			d.Failed++
		case "cancelled":
			d.Cancelled++
		}
		if len(approvals) == 1 && passes == 1 && reveals == 1 && state == "sent" {
			d.Delivered++
			continue
		}
		problem("%s: %d approval messages, %d passes, %d Reveal DMs, approval message: %s", t, len(approvals), passes, reveals, state)
	}
}

// approvalState reads where a request ended from its approval message (bot.outcomeText).
func approvalState(text string) string {
	switch {
	case strings.Contains(text, ":x:"):
		return "failed"
	case strings.Contains(text, ":heavy_minus_sign:"):
		return "cancelled"
	case strings.Contains(text, ":warning:"):
		return "pass not delivered"
	case strings.Contains(text, "pass sent to"):
		return "sent"
	case strings.Contains(text, "waiting for approval"):
		return "still pending"
	case strings.Contains(text, "creating the pass"):
		return "still issuing"
	}
	return "unrecognized: " + firstLine(text)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

// trouble is what a reply to a requester says when something went wrong for them.
var trouble = []string{":warning:", ":x:", ":no_entry:", "Something went wrong", "something went wrong",
	"nothing was requested", "could not", "was cancelled"}

// checkRequesters reads what every manager was told (the replies to their /tap, ephemerals and
// DMs): who got a warning or a "something went wrong", and who heard their request was queued.
func (w *world) checkRequesters(rep *burstReport, b burstSettings) {
	r := &rep.Requesters
	r.Managers = b.Managers
	for i := range b.Managers {
		mgr := managerID(i)
		var texts []string
		queued := false
		for _, e := range w.slack.Ephemerals(mgr) {
			texts = append(texts, e.PlainText())
			// A queued note is replaced by the confirmation once the approvers see the request.
			queued = queued || e.Replaced > 0
		}
		for _, m := range w.slack.Messages(mgr) {
			for _, v := range m.History {
				texts = append(texts, joinVersion(v))
			}
		}
		warned := false
		for _, t := range texts {
			queued = queued || strings.Contains(t, "is queued")
			for _, bad := range trouble {
				if strings.Contains(t, bad) {
					warned = true
					r.Warnings++
					if len(r.FirstWarnings) < 5 {
						r.FirstWarnings = append(r.FirstWarnings, mgr+": "+firstLine(t))
					}
					break
				}
			}
		}
		if warned {
			r.Warned++
		}
		if queued {
			r.ToldQueued++
		}
		r.Replies += len(texts)
	}
}

// joinVersion is one version of a message as plain text.
func joinVersion(v slackfake.MessageVersion) string {
	return slackfake.Message{Text: v.Text, Blocks: v.Blocks}.PlainText()
}

// bucketModel is the fake's throttling rule (internal/slackfake/ratelimit.go) replayed over its
// call log: which buckets a call draws from, and how full each was at a given moment.
type bucketModel struct {
	limits  slackfake.RateLimits
	users   map[string]bool   // the workspace's user IDs
	dmOwner map[string]string // the app's DM channel ID -> the user it is with
}

// bucketModel reads the fake's limits in use. withDMs also learns every user's DM channel, which
// creates the DMs nobody used yet: only once the burst is over.
func (w *world) bucketModel(withDMs bool) *bucketModel {
	m := &bucketModel{limits: w.slack.RateLimitsInUse(), users: map[string]bool{manager: true, approver: true},
		dmOwner: map[string]string{}}
	for id := range w.entraID {
		m.users[id] = true
	}
	if withDMs {
		for id := range m.users {
			m.dmOwner[w.slack.DMChannel(id)] = id
		}
	}
	return m
}

type keyedBucket struct {
	key string
	slackfake.Bucket
}

func (b keyedBucket) burst() float64 { return float64(max(b.Burst, 1)) }

func (m *bucketModel) speed() float64 {
	if m.limits.Speed > 0 {
		return m.limits.Speed
	}
	return 1
}

// bucket returns the bucket behind a key bucketsOf returns.
func (m *bucketModel) bucket(key string) keyedBucket {
	var b slackfake.Bucket
	switch {
	case key == "postMessage:workspace":
		b = m.limits.PostMessageWorkspace
	case strings.HasPrefix(key, "postMessage:channel:"):
		b = m.limits.PostMessagePerChannel
	default:
		method := strings.TrimPrefix(key, "method:")
		var ok bool
		if b, ok = m.limits.Methods[method]; !ok && method != "chat.postMessage" {
			b = m.limits.Default
		}
	}
	return keyedBucket{key, b}
}

// bucketsOf lists the buckets a call drew from, keyed as the fake keys them: "method:<name>",
// "postMessage:channel:<target>" and "postMessage:workspace". response_url POSTs draw from none.
func (m *bucketModel) bucketsOf(c slackfake.Call) []keyedBucket {
	if m.limits.Off || c.Method == "response_url" {
		return nil
	}
	var out []keyedBucket
	add := func(key string, b slackfake.Bucket) {
		if b.Every > 0 {
			out = append(out, keyedBucket{key, b})
		}
	}
	if c.Method != "chat.postMessage" {
		b, ok := m.limits.Methods[c.Method]
		if !ok {
			b = m.limits.Default
		}
		add("method:"+c.Method, b)
		return out
	}
	if b, ok := m.limits.Methods[c.Method]; ok {
		add("method:"+c.Method, b)
	}
	ch := c.Params["channel"]
	switch owner, isDM := m.dmOwner[ch]; {
	case m.users[ch]:
		ch = "dm:" + ch
	case isDM:
		ch = "dm:" + owner
	}
	add("postMessage:channel:"+ch, m.limits.PostMessagePerChannel)
	add("postMessage:workspace", m.limits.PostMessageWorkspace)
	return out
}

// levels replays the calls Slack served before t and returns how many tokens each bucket they
// drew from held at t. A bucket starts full, loses a token per served call and regains one per
// Every/Speed, up to its burst.
func (m *bucketModel) levels(calls []slackfake.Call, t time.Time) map[string]float64 {
	type state struct {
		tokens float64
		at     time.Time
	}
	st := map[string]*state{}
	refill := func(b keyedBucket, s *state, now time.Time) {
		if el := now.Sub(s.at); el > 0 {
			s.tokens = math.Min(b.burst(), s.tokens+el.Seconds()*m.speed()/b.Every.Seconds())
			s.at = now
		}
	}
	for _, c := range calls {
		if c.Error == "ratelimited" || !c.At.Before(t) {
			continue
		}
		for _, b := range m.bucketsOf(c) {
			s := st[b.key]
			if s == nil {
				s = &state{tokens: b.burst(), at: c.At}
				st[b.key] = s
			}
			refill(b, s, c.At)
			s.tokens = max(0, s.tokens-1)
		}
	}
	out := map[string]float64{}
	for key, s := range st {
		refill(m.bucket(key), s, t)
		out[key] = s.tokens
	}
	return out
}

// floor is the least time a bucket holding tokens allows for n calls: the first ones go at
// once, each later one a token's refill after the one before.
func (m *bucketModel) floor(b keyedBucket, tokens float64, n int) time.Duration {
	if float64(n) <= tokens {
		return 0
	}
	return time.Duration((float64(n) - tokens) * float64(b.Every) / m.speed())
}

// bucketName says which limit a bucket key is, for the report.
func bucketName(key string) string {
	switch {
	case key == "postMessage:workspace":
		return "chat.postMessage, workspace-wide"
	case strings.HasPrefix(key, "postMessage:channel:dm:"):
		return "chat.postMessage to the DM with " + strings.TrimPrefix(key, "postMessage:channel:dm:")
	case strings.HasPrefix(key, "postMessage:channel:"):
		return "chat.postMessage to " + strings.TrimPrefix(key, "postMessage:channel:") + " (per channel)"
	}
	return strings.TrimPrefix(key, "method:")
}

// account counts the burst's Slack calls (those from t0 on) by method and by bucket, and works
// out the floor from the buckets: for each, the least time it allows for the calls the burst
// needed in it, starting as full as it was at t0; the floor is the busiest bucket's.
//
// A call the burst needed is one Slack served (a 429 is not), except a conversations.open for
// someone whose DM Slack had already opened for the app: Slack answers it with the same
// channel, so it is spent, not needed. The floor of every served call, and of those up to the
// last Reveal DM, are reported next to it.
func (rep *burstReport) account(m *bucketModel, calls []slackfake.Call, t0 time.Time, requests int) {
	start := m.levels(calls, t0)
	// The calls up to the last Reveal DM: the DM's own chat.postMessage is the last of them.
	lastDM := -1
	for i, c := range calls {
		if c.Method == "chat.postMessage" && c.Error == "" && strings.Contains(c.Params["blocks"], "Reveal pass") {
			lastDM = i
		}
	}
	served, limited, repeats := map[string]int{}, map[string]int{}, map[string]int{}
	perBucket, needed, beforeDM := map[string]int{}, map[string]int{}, map[string]int{}
	opened := map[string]bool{}
	for i, c := range calls {
		repeat := false
		if c.Method == "conversations.open" && c.Error == "" {
			repeat = opened[c.Params["users"]]
			opened[c.Params["users"]] = true
		}
		if c.At.Before(t0) {
			continue
		}
		if c.Error == "ratelimited" {
			limited[c.Method]++
			continue
		}
		served[c.Method]++
		if repeat {
			repeats[c.Method]++
		}
		for _, b := range m.bucketsOf(c) {
			perBucket[b.key]++
			if !repeat {
				needed[b.key]++
			}
			if i <= lastDM {
				beforeDM[b.key]++
			}
		}
	}
	s := &rep.Slack
	s.ServedByMethod, s.RateLimitedByMethod, s.RepeatsByMethod = served, limited, repeats
	for _, n := range repeats {
		s.Repeats += n
	}
	s.PerLifecycle = map[string]float64{}
	for method, n := range served {
		if method == "response_url" {
			s.ResponseURLPerLifecycle = perRequest(n, requests)
			continue
		}
		s.PerLifecycle[method] = perRequest(n, requests)
		s.WebAPIPerLifecycle += float64(n)
	}
	s.WebAPIPerLifecycle = perRequest(int(s.WebAPIPerLifecycle), requests)
	for _, n := range limited {
		s.RateLimited += n
	}

	f := &rep.Floor
	for key, n := range perBucket {
		b := m.bucket(key)
		tokens, ok := start[key]
		if !ok {
			tokens = b.burst()
		}
		use := bucketUse{Bucket: bucketName(key), EveryMs: ms(b.Every), Burst: b.Burst,
			StartTokens: math.Round(tokens*100) / 100, Calls: n, Needed: needed[key], CallsBeforeLastDM: beforeDM[key],
			FloorSec: seconds(m.floor(b, tokens, needed[key])), FloorAllCallsSec: seconds(m.floor(b, tokens, n)),
			FloorBeforeLastDMSec: seconds(m.floor(b, tokens, beforeDM[key]))}
		f.Buckets = append(f.Buckets, use)
		if use.FloorSec > f.FloorSec || f.Bucket == "" {
			f.FloorSec, f.Bucket = use.FloorSec, use.Bucket
		}
		if use.FloorAllCallsSec > f.AllCallsSec || f.AllCallsBucket == "" {
			f.AllCallsSec, f.AllCallsBucket = use.FloorAllCallsSec, use.Bucket
		}
		if use.FloorBeforeLastDMSec > f.BeforeLastDMSec || f.BeforeLastDMBucket == "" {
			f.BeforeLastDMSec, f.BeforeLastDMBucket = use.FloorBeforeLastDMSec, use.Bucket
		}
	}
	slices.SortFunc(f.Buckets, func(a, b bucketUse) int {
		if a.FloorSec != b.FloorSec {
			return -cmpFloat(a.FloorSec, b.FloorSec)
		}
		if a.Calls != b.Calls {
			return b.Calls - a.Calls
		}
		return strings.Compare(a.Bucket, b.Bucket)
	})
	if f.FloorSec > 0 {
		rep.Ratio = ratio(rep.Timing.LastRevealDMSec, f.FloorSec)
	}
	if f.BeforeLastDMSec > 0 {
		rep.RatioBeforeLastDM = ratio(rep.Timing.LastRevealDMSec, f.BeforeLastDMSec)
	}
	if f.AllCallsSec > 0 {
		rep.RatioAllCalls = ratio(rep.Timing.LastRevealDMSec, f.AllCallsSec)
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func perRequest(n, requests int) float64 {
	return math.Round(float64(n)/float64(requests)*100) / 100
}

// readBotLog counts the warnings and errors tapbot logged (JSON lines on stderr) and keeps the
// first few errors' messages.
func readBotLog(path string) botLog {
	var l botLog
	f, err := os.Open(path)
	if err != nil {
		return l
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		switch line.Level {
		case "WARN":
			l.Warnings++
		case "ERROR":
			l.Errors++
			if len(l.FirstErrors) < 5 {
				l.FirstErrors = append(l.FirstErrors, line.Msg)
			}
		}
	}
	return l
}
