// Package bot is tapbot's Slack side: it takes /tap commands, button clicks and form submissions
// over socket mode, hands them to the approvals service, and renders what each person sees.
package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/metrics"
	"github.com/tapbot/tapbot/slackrate"
)

// handlerTimeout bounds the slow work after an ack (Graph calls with retries, Slack updates).
const handlerTimeout = 3 * time.Minute

// Defaults for Config's timing fields.
const (
	DefaultShutdownTimeout = 20 * time.Second
	DefaultSweepEvery      = 10 * time.Second
	DefaultHeartbeatTTL    = 15 * time.Second
	// socketGrace is how long the socket may be down before /healthz reports the process wedged.
	socketGrace = 60 * time.Second
)

// Config is what the bot needs; API, Socket, Service and ApprovalChannel are required.
type Config struct {
	API             *slack.Client
	Socket          *socketmode.Client
	Service         *approvals.Service
	ApprovalChannel string
	Logger          *slog.Logger
	HTTPClient      *http.Client     // for response_url replies; default http.DefaultClient
	Metrics         *metrics.Metrics // optional
	// ShutdownTimeout is how long in-flight work may go on after shutdown begins; what is not
	// done by then is left for another replica's sweeper.
	ShutdownTimeout time.Duration
	// SweepEvery is how often expiries and interrupted work are looked for.
	SweepEvery time.Duration
	// HeartbeatTTL is how long other replicas wait after this one's last heartbeat before they
	// take over its in-flight work.
	HeartbeatTTL time.Duration
	// AuditChannel receives every audit event and the security alerts; when empty, alerts go to
	// the approval channel and events only to the log and the store.
	AuditChannel string
	// Pacer is the Slack client's rate-limit scheduler, when API sends through one: a start-up
	// that waits for Slack's Tier 1 turn to connect is not reported unhealthy.
	Pacer *slackrate.Client
	// Memo keeps people's DM channels for every replica; nil asks Slack each time.
	Memo Memo
	// Profiles caches users.info; nil makes one.
	Profiles *Profiles
}

// Bot routes socket-mode envelopes to handlers. Each envelope is acknowledged first, with a small
// payload, and the slow work happens after.
type Bot struct {
	api       *slack.Client
	sm        *socketmode.Client
	svc       *approvals.Service
	channel   string
	log       *slog.Logger
	http      *http.Client
	metrics   *metrics.Metrics
	cfg       Config
	memo      Memo
	profiles  *Profiles
	dmLookups dmLookups
	connected atomic.Bool
	// refused is why Slack will never open a socket with the app-level token, once it said so.
	refused atomic.Pointer[error]
	// downSince is when the socket was last seen down (unix nanos), 0 while connected.
	downSince  atomic.Int64
	everOnline atomic.Bool
	ctx        context.Context
	// hardStop ends in-flight work once the shutdown timeout has run out.
	hardStop context.Context
	// audits carries audit events to the poster, in order, off the request path.
	audits chan auditPost

	// gate makes "no new handler after shutdown began" and Wait race-free: Add happens under the
	// lock only while open, and Run closes it before waiting.
	gate     sync.Mutex
	closing  bool
	inflight sync.WaitGroup
	// workers bounds the handlers doing a request's or a decision's slow work; see takeWorker.
	workers *workerPool
}

// New returns a Bot; Run starts it.
func New(cfg Config) *Bot {
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.SweepEvery == 0 {
		cfg.SweepEvery = DefaultSweepEvery
	}
	if cfg.HeartbeatTTL == 0 {
		cfg.HeartbeatTTL = DefaultHeartbeatTTL
	}
	b := &Bot{api: cfg.API, sm: cfg.Socket, svc: cfg.Service, channel: cfg.ApprovalChannel,
		log: cfg.Logger, http: cfg.HTTPClient, metrics: cfg.Metrics, cfg: cfg, memo: cfg.Memo, profiles: cfg.Profiles}
	if b.profiles == nil {
		b.profiles = NewProfiles(cfg.API)
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.http == nil {
		b.http = http.DefaultClient
	}
	if b.metrics == nil {
		b.metrics = metrics.New(nil)
	}
	b.downSince.Store(time.Now().UnixNano())
	b.audits = make(chan auditPost, 1024)
	b.workers = newWorkerPool(maxWorkers)
	return b
}

// maxWorkers bounds the handlers doing a request's or a decision's slow work (Slack lookups,
// Graph, the store) at once; the rest wait, parked, in arrival order. Without it a burst of
// 1,000 /tap commands started 1,000 handlers whose CPU and garbage competed with the acks of the
// commands still arriving (tapload: ack p99 and peak memory, BENCHMARKS.md). 32 keeps Graph's
// slots (TAP_GRAPH_CONCURRENCY, default 8) busy. Clicks that must open a view with their
// trigger (Reveal, the request form) never wait here: Slack's trigger expires in 3 seconds.
// Decisions go before new requests (workerPool).
const maxWorkers = 32

// takeWorker waits for a worker slot for a new request's checks; release gives it back and may
// be called more than once (deferred, against a panic, and early, before Slack is told). It
// fails only when ctx ends first, and then nothing was done.
func (b *Bot) takeWorker(ctx context.Context) (release func(), err error) {
	return b.workers.take(ctx, requestWork)
}

// takeDecisionWorker is takeWorker for an Approve or Deny, which goes before waiting requests.
func (b *Bot) takeDecisionWorker(ctx context.Context) (release func(), err error) {
	return b.workers.take(ctx, decisionWork)
}

// warmProfiles reads the Slack profiles a request's checks need into the cache, waiting as
// long as Slack's limits need (slackPatience) and holding no worker meanwhile; queued hears if
// they must wait. A failure is not reported here: the checks read again and say what is wrong.
func (b *Bot) warmProfiles(ctx context.Context, queued func(slackrate.Queue), users ...string) {
	ctx, cancel := b.patient(ctx)
	defer cancel()
	ctx = slackrate.OnQueued(ctx, queued)
	// Together, so a request's lookups queue side by side, not one behind the whole burst.
	var wg sync.WaitGroup
	for _, u := range users {
		if u != "" {
			wg.Go(func() { _, _ = b.profiles.Get(ctx, u) })
		}
	}
	wg.Wait()
}

// lastWords is a context for telling someone their work was not done after ctx ended: short,
// so a hung Slack cannot hold the handler.
func (b *Bot) lastWords(ctx context.Context) context.Context {
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	context.AfterFunc(c, cancel)
	return c
}

// busyText tells a person whose request or decision never got a worker that nothing was done.
const busyText = ":hourglass: tapbot is busy or shutting down, and nothing was done. Try again in a minute."

// Connected reports whether the socket-mode connection is up, for /readyz.
func (b *Bot) Connected() bool { return b.connected.Load() }

// Healthy reports whether the process is not wedged: the socket is up, has been down for less
// than a minute (slack-go reconnects on its own), or waits for Slack's turn to open one
// (apps.connections.open allows about one a minute, so a rolling restart or a crash loop
// queues for it), for /healthz.
func (b *Bot) Healthy() bool {
	since := b.downSince.Load()
	if since == 0 || time.Since(time.Unix(0, since)) < socketGrace {
		return true
	}
	return b.cfg.Pacer != nil && b.cfg.Pacer.Waiting("apps.connections.open") > 0
}

// appTokenRefusals are apps.connections.open's answers that no retry changes.
var appTokenRefusals = map[string]bool{
	"invalid_auth": true, "not_authed": true, "not_allowed_token_type": true, "token_revoked": true,
	"account_inactive": true, "missing_scope": true, "token_expired": true,
}

// ErrAppTokenRefused is what Run returns when Slack refuses the app-level token.
var ErrAppTokenRefused = errors.New("Slack refused the app-level token")

func (b *Bot) onConnected() {
	b.connected.Store(true)
	b.downSince.Store(0)
	if b.everOnline.Swap(true) {
		b.metrics.SocketReconnects.Inc()
	}
	b.log.Info("connected to Slack")
}

func (b *Bot) onDisconnected(state string) {
	if b.connected.Swap(false) {
		b.downSince.Store(time.Now().UnixNano())
	}
	b.log.Info("Slack connection", "state", state)
}

// Run serves socket mode until ctx ends. Then it takes no more envelopes and gives handlers
// already running ShutdownTimeout to finish; what they leave undone, the sweeper of another
// replica (or of the next start) finishes or reports.
func (b *Bot) Run(parent context.Context) error {
	// ctx also ends when the socket stops for good (Slack refused the app-level token), so the
	// loops stop with it.
	ctx, stopSocket := context.WithCancel(parent)
	defer stopSocket()
	b.ctx = ctx
	hardStop, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	b.hardStop = hardStop
	// The heartbeat and the audit poster outlive the socket until in-flight work is done, so no
	// other replica takes over work this one is still finishing, and late alerts still post.
	tail, endTail := context.WithCancel(context.WithoutCancel(ctx))
	defer endTail()
	work, loops := b.startLoops(ctx, tail)
	h := socketmode.NewSocketmodeHandler(b.sm)
	h.HandleSlashCommand("/tap", b.tracked(b.onSlashCommand))
	h.HandleInteractionBlockAction(ActionApprove, b.tracked(b.onClick(b.onDecision(true))))
	h.HandleInteractionBlockAction(ActionDeny, b.tracked(b.onClick(b.onDecision(false))))
	h.HandleInteractionBlockAction(ActionReveal, b.tracked(b.onClick(b.onReveal)))
	h.HandleInteractionBlockAction(ActionRevoke, b.tracked(b.onClick(b.onRevoke)))
	h.HandleInteractionBlockAction(ActionReport, b.tracked(b.onClick(b.onReport)))
	h.HandleInteractionBlockAction(ActionCancel, b.tracked(b.onClick(b.onCancel)))
	h.HandleViewSubmission(CallbackForm, b.tracked(b.onFormSubmission))
	h.HandleInteractionBlockAction(ActionHomeApprove, b.tracked(b.onHomeDecision(true)))
	h.HandleInteractionBlockAction(ActionHomeDeny, b.tracked(b.onHomeDecision(false)))
	h.HandleInteractionBlockAction(ActionRemind, b.tracked(b.onClick(b.onRemind)))
	h.HandleInteractionBlockAction(ActionExternalRevoke, b.tracked(b.onClick(b.onExternalRevoke)))
	h.HandleInteractionBlockAction(ActionExternalExpected, b.tracked(b.onClick(b.onExternalExpected)))
	h.HandleViewSubmission(CallbackExpected, b.tracked(b.onExpectedSubmission))
	h.HandleEvents(slackevents.AppHomeOpened, b.tracked(b.onHomeOpened))
	h.HandleInteractionBlockAction(ActionOnboardingRequest, b.tracked(b.onboardingAction(b.onOnboardingRequest)))
	h.HandleInteractionBlockAction(ActionOnboardingDecline, b.tracked(b.onboardingAction(b.onOnboardingDecline)))
	h.HandleInteractionBlockAction(ActionOnboardingRetry, b.tracked(b.onboardingAction(b.onOnboardingRetry)))
	h.HandleViewSubmission(CallbackOnboardingDecline, b.tracked(b.onDeclineSubmission))
	// Connection events are consumed by dispatch, in order; the handler would run each on its own
	// goroutine and a late "connecting" could overwrite "connected".
	for _, t := range []socketmode.EventType{socketmode.EventTypeConnected, socketmode.EventTypeConnecting,
		socketmode.EventTypeConnectionError, socketmode.EventTypeDisconnect, socketmode.EventTypeInvalidAuth} {
		h.Handle(t, func(*socketmode.Event, *socketmode.Client) {})
	}
	h.HandleDefault(b.onOther)
	go b.dispatch(ctx, h, stopSocket)
	err := b.sm.RunContext(ctx)
	if refused := b.refused.Load(); refused != nil && parent.Err() == nil {
		err = *refused
	}
	stopSocket()
	b.onDisconnected("stopped")
	b.gate.Lock()
	b.closing = true
	b.gate.Unlock()

	// Handlers and the periodic jobs' current turn share ShutdownTimeout: whatever still waits
	// then (on Slack's rate limits, say) is stopped and left to another replica's sweeper. The
	// heartbeat lasts until all of it has stopped, so no replica takes over work still going on.
	idle := make(chan struct{})
	go func() { b.inflight.Wait(); <-work; close(idle) }()
	select {
	case <-idle:
	case <-time.After(b.cfg.ShutdownTimeout):
		b.log.Warn("shutdown timeout: stopping in-flight work; another replica's sweeper will finish or report it",
			"timeout", b.cfg.ShutdownTimeout.String())
		stopWork()
		<-idle
	}
	stopWork()
	endTail()
	<-loops
	if parent.Err() != nil {
		return nil
	}
	if code := slackErrorCode(err); appTokenRefusals[code] {
		return fmt.Errorf("%w (%s)", ErrAppTokenRefused, code)
	}
	return err
}

// slackErrorCode is the Web API error code in err, "" when there is none.
func slackErrorCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	if err != nil && !strings.ContainsAny(err.Error(), " :") {
		return err.Error() // slack-go returns many codes as errors.New(code)
	}
	return ""
}

// dispatch reads socket-mode events in order: connection state is recorded here, synchronously,
// and everything is then handed to the router, which runs each handler on its own goroutine. A
// refusal of the app-level token that slack-go would retry forever (not_allowed_token_type)
// stops the socket through stop, so tapbot says what is wrong instead of retrying.
func (b *Bot) dispatch(ctx context.Context, h *socketmode.SocketmodeHandler, stop func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case evt, ok := <-b.sm.Events:
			if !ok {
				return
			}
			switch evt.Type {
			case socketmode.EventTypeConnected:
				b.onConnected()
			case socketmode.EventTypeConnecting, socketmode.EventTypeConnectionError, socketmode.EventTypeDisconnect:
				b.onDisconnected(string(evt.Type))
				if ce, ok := evt.Data.(*slack.ConnectionErrorEvent); ok {
					code := slackErrorCode(ce.ErrorObj)
					if code != "" && !appTokenRefusals[code] {
						b.log.Warn("Slack did not open a socket-mode connection; retrying", "error", code, "attempt", ce.Attempt)
					}
					if appTokenRefusals[code] {
						err := fmt.Errorf("%w (%s)", ErrAppTokenRefused, code)
						b.refused.Store(&err)
						b.log.Error("Slack refused the app-level token; check SLACK_APP_TOKEN", "error", code)
						stop()
					}
				}
			case socketmode.EventTypeInvalidAuth:
				b.onDisconnected("invalid_auth")
				b.log.Error("Slack refused the app token (invalid_auth); check SLACK_APP_TOKEN")
			}
			h.DispatchEvent(evt)
		}
	}
}

// startLoops runs the periodic jobs (sweep, reminders, watching) until ctx ends, and the
// heartbeat and audit poster until tail ends; work closes when the jobs have stopped, all when
// everything has.
func (b *Bot) startLoops(ctx, tail context.Context) (work, all <-chan struct{}) {
	jobsDone, allDone := make(chan struct{}), make(chan struct{})
	var jobs, rest sync.WaitGroup
	jobs.Go(func() { b.every(ctx, b.cfg.SweepEvery, b.sweep) })
	jobs.Go(func() { b.every(ctx, b.cfg.SweepEvery, b.followUp) })
	if b.svc.OnboardingOn() {
		jobs.Go(func() { b.onboard(ctx) })
	}
	rest.Go(func() { b.every(tail, b.cfg.HeartbeatTTL/3, b.heartbeat) })
	rest.Go(func() { b.postAudits(tail) })
	go func() { jobs.Wait(); close(jobsDone); rest.Wait(); close(allDone) }()
	return jobsDone, allDone
}

// every runs f now and then every d until ctx ends.
func (b *Bot) every(ctx context.Context, d time.Duration, f func(context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		f(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (b *Bot) heartbeat(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := b.svc.Heartbeat(ctx, b.cfg.HeartbeatTTL); err != nil && ctx.Err() == nil {
		b.log.Warn("heartbeat", "err", err)
	}
}

// sweep takes this replica's turn, if it is its turn, at expiring requests and finishing what
// stopped replicas left, and brings Slack up to date for each change.
func (b *Bot) sweep(ctx context.Context) {
	b.onTurn(ctx, "sweep", func(ctx context.Context) (bool, error) { return b.svc.TakeSweepTurn(ctx, b.cfg.SweepEvery) },
		func(workCtx context.Context) {
			changed, err := b.svc.Sweep(workCtx)
			if err != nil {
				b.log.Error("sweep", "err", err)
			}
			for _, r := range changed {
				b.settle(workCtx, r)
			}
		})
}

// onTurn runs work when take says it is this replica's turn at a periodic job (one replica at a
// time does it); a store that cannot say is logged and the job skipped until the next tick.
func (b *Bot) onTurn(ctx context.Context, job string, take func(context.Context) (bool, error), work func(context.Context)) {
	turnCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	mine, err := take(turnCtx)
	cancel()
	if err != nil || !mine {
		if err != nil && ctx.Err() == nil {
			b.log.Warn(job+" turn", "err", err)
		}
		return
	}
	// Patient: what a turn changes (a hundred requests expiring at once) is told to Slack at
	// Slack's pace, and each message must get there, not time out half-way.
	workCtx, cancel := b.patient(slackrate.With(ctx, slackrate.Bulk))
	defer cancel()
	work(workCtx)
}

// settle brings Slack up to date with a request the sweeper changed or took over.
func (b *Bot) settle(ctx context.Context, r *approvals.Request) {
	switch {
	case r.State == approvals.Pending && r.ApprovalMessage.IsZero():
		// A copy of an interrupted request: put it before the approvers again.
		if _, err := b.postApproval(ctx, r); err != nil {
			b.log.Error("repost interrupted request", "request_id", r.ID, "err", err)
		}
		return
	case r.State == approvals.Issued && r.RevealMessage.IsZero():
		// Taken over from a replica that stopped before the recipient's DM.
		b.deliver(ctx, r, nil)
		return
	}
	b.metrics.Requests.WithLabelValues(string(r.State)).Inc()
	b.updateApproval(ctx, r)
	if m := r.RevealMessage; !m.IsZero() {
		b.updateRevealMessage(ctx, r)
	}
	b.tellRequester(ctx, r)
	if r.State == approvals.Failed && r.DecidedBy != "" {
		if _, err := b.dm(ctx, r.DecidedBy, approverUpdate(r), nil); err != nil {
			b.log.Error("tell approver", "request_id", r.ID, "err", err)
		}
	}
}

// tracked counts a handler as in flight, so Run returns only after it finished. Deduplication is
// not done here but after each handler's ack (ackOnce), so no ack waits for a Redis round trip.
func (b *Bot) tracked(f socketmode.SocketmodeHandlerFunc) socketmode.SocketmodeHandlerFunc {
	return func(evt *socketmode.Event, c *socketmode.Client) {
		b.gate.Lock()
		if b.closing {
			b.gate.Unlock()
			b.log.Warn("envelope arrived during shutdown; Slack will redeliver it", "type", string(evt.Type))
			return
		}
		b.inflight.Add(1)
		b.gate.Unlock()
		defer b.inflight.Done()
		defer func() {
			if p := recover(); p != nil {
				b.log.Error("handler panicked", "panic", fmt.Sprint(p), "event", string(evt.Type))
			}
		}()
		f(evt, c)
	}
}

// duplicate reports whether another delivery of this envelope was already taken, here or on
// another replica. When the store cannot tell, the envelope is handled: the state machine still
// refuses a second decision or reveal.
func (b *Bot) duplicate(evt *socketmode.Event) bool {
	if evt.Request == nil || evt.Request.EnvelopeID == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(b.ctx, 500*time.Millisecond)
	defer cancel()
	first, err := b.svc.FirstDelivery(ctx, evt.Request.EnvelopeID)
	if err != nil {
		b.log.Warn("envelope deduplication unavailable", "envelope_id", evt.Request.EnvelopeID, "err", err)
		return false
	}
	if !first {
		b.log.Info("ignored a redelivered envelope", "envelope_id", evt.Request.EnvelopeID, "retry_attempt", evt.Request.RetryAttempt)
	}
	return !first
}

// onOther acknowledges envelopes no handler claims (unknown actions, events), so Slack does not
// retry them, and logs them: an unknown action may be a forged payload.
func (b *Bot) onOther(evt *socketmode.Event, c *socketmode.Client) {
	if evt.Request == nil || evt.Request.EnvelopeID == "" {
		return // hello and other control frames need no ack
	}
	b.ack(evt, nil)
	attrs := []any{"type", string(evt.Type)}
	if cb, ok := evt.Data.(slack.InteractionCallback); ok {
		attrs = append(attrs, "interaction", string(cb.Type), "user", cb.User.ID)
		for _, a := range cb.ActionCallback.BlockActions {
			attrs = append(attrs, "action_id", a.ActionID)
		}
	}
	b.log.Warn("ignored unknown socket-mode envelope", attrs...)
}

// onClick is what every button click does first: acknowledge it, drop a redelivery and a click
// tapbot cannot read (clicked logs why), and give the handler the context for its slow work.
func (b *Bot) onClick(handle func(ctx context.Context, cb slack.InteractionCallback, id string)) socketmode.SocketmodeHandlerFunc {
	return func(evt *socketmode.Event, _ *socketmode.Client) {
		if !b.ackOnce(evt) {
			return
		}
		cb, id, ok := b.clicked(evt)
		if !ok {
			return
		}
		ctx, cancel := b.work()
		defer cancel()
		handle(slackrate.With(ctx, slackrate.Interactive), cb, id)
	}
}

// ackOnce acknowledges an envelope and then reports whether its work should run here: false for a
// redelivery that this or another replica already took. A redelivered envelope must be acked all
// the same, or Slack keeps retrying it.
func (b *Bot) ackOnce(evt *socketmode.Event) bool {
	b.ack(evt, nil)
	return !b.duplicate(evt)
}

// ack acknowledges an envelope at once; payload may be nil.
func (b *Bot) ack(evt *socketmode.Event, payload any) {
	start := time.Now()
	var err error
	if payload == nil {
		err = b.sm.Ack(*evt.Request)
	} else {
		err = b.sm.Ack(*evt.Request, payload)
	}
	b.metrics.AckDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		b.log.Error("ack failed", "envelope_id", evt.Request.EnvelopeID, "err", err)
	}
}

// work returns the context for the slow part of a handler.
func (b *Bot) work() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.hardStop, handlerTimeout)
}

// ephemeralAck is an ack payload for a slash command that only its author sees.
func ephemeralAck(text string) map[string]any {
	return map[string]any{"response_type": "ephemeral", "text": text}
}

func (b *Bot) usageText() string {
	c := b.svc.Config()
	return fmt.Sprintf(Usage, approvals.FormatDuration(c.DefaultLifetime), approvals.FormatDuration(c.MaxLifetime))
}

func (b *Bot) onSlashCommand(evt *socketmode.Event, _ *socketmode.Client) {
	cmd, ok := evt.Data.(slack.SlashCommand)
	if !ok {
		b.ack(evt, nil)
		return
	}
	parsed, err := ParseCommand(cmd.Text)
	switch {
	case err != nil:
		b.ack(evt, ephemeralAck(":warning: "+userMessage(err)+"\n\n"+b.usageText()))
		return
	case parsed.Help:
		b.ack(evt, ephemeralAck(b.usageText()))
		return
	}
	if !b.ackOnce(evt) {
		return
	}
	ctx, cancel := b.work()
	defer cancel()

	if parsed.Modal {
		b.openForm(ctx, cmd)
		return
	}
	if parsed.Status {
		b.showStatus(ctx, cmd.UserID, cmd.ResponseURL, false)
		return
	}
	// The profiles the checks read (users.info) are fetched first, patiently and holding no
	// worker: in a burst they queue behind Slack's limit for minutes.
	queued := b.queuedReply(cmd.ResponseURL, cmd.UserID)
	b.warmProfiles(ctx, func(q slackrate.Queue) { queued.say(nil, q) }, cmd.UserID, parsed.TargetUserID)
	ctx, cancel = b.work() // the checks' own time starts now
	defer cancel()
	release, err := b.takeWorker(ctx)
	if err != nil {
		b.respond(b.lastWords(ctx), cmd.ResponseURL, busyText)
		return
	}
	defer release()
	r, err := b.check(ctx, approvals.Draft{
		Requester: cmd.UserID, TargetUserID: parsed.TargetUserID, TargetEmail: parsed.TargetEmail,
		Lifetime: parsed.Lifetime, UsableOnce: parsed.UsableOnce, Reason: parsed.Reason,
	})
	// The worker is for the checks (Graph, the store); waiting for Slack's limits holds none.
	release()
	if err == nil {
		r, err = b.postApproval(withQueued(ctx, queued.say), r)
	}
	if err != nil {
		text := ":warning: " + userMessage(err)
		if approvals.ErrorCode(err) == approvals.Invalid {
			text += "\n\n" + b.usageText()
		}
		// Said even when shutdown cut the work short: whoever asked hears that nothing was done.
		queued.reply(b.lastWords(ctx), text, nil)
		return
	}
	b.metrics.Requests.WithLabelValues("submitted").Inc()
	text := ":outbox_tray: " + confirmation(r)
	queued.reply(b.lastWords(ctx), text, confirmationBlocks(text, r))
}

// submit stores a request and puts it before the approvers. A request the approvers cannot see
// is cancelled, so nothing stays pending unseen.
func (b *Bot) submit(ctx context.Context, d approvals.Draft) (*approvals.Request, error) {
	r, err := b.check(ctx, d)
	if err != nil {
		return nil, err
	}
	if r, err = b.postApproval(ctx, r); err != nil {
		return nil, err
	}
	b.metrics.Requests.WithLabelValues("submitted").Inc()
	return r, nil
}

// check runs a draft through the service's checks and stores it as a pending request.
func (b *Bot) check(ctx context.Context, d approvals.Draft) (*approvals.Request, error) {
	r, err := b.svc.Submit(ctx, d)
	if err != nil {
		b.metrics.Requests.WithLabelValues("rejected").Inc()
		if approvals.ErrorCode(err) == "" {
			b.log.Error("submit request", "requester", d.Requester, "err", err)
		}
		return nil, err
	}
	return r, nil
}

// slackPatience bounds how long a request's own messages (the approval message, the Reveal DM
// and their updates) wait for Slack's rate limits: a burst of requests queues behind Slack's
// limits for minutes, longer than a handler's work may take, and must not fail for it.
const slackPatience = 30 * time.Minute

// patient returns a context for a request's own Slack messages: it keeps ctx's values (the
// priority of its calls) but not its deadline, and ends at slackPatience or when shutdown's
// time runs out.
func (b *Bot) patient(ctx context.Context) (context.Context, context.CancelFunc) {
	c, cancel := context.WithTimeout(b.hardStop, slackPatience)
	return slackrate.With(c, slackrate.Of(ctx)), cancel
}

// postApproval puts a pending request before the approvers, waiting as long as Slack's rate
// limits need (slackPatience). A request they cannot see is cancelled, so nothing stays
// pending unseen.
func (b *Bot) postApproval(ctx context.Context, r *approvals.Request) (*approvals.Request, error) {
	// The approval post is the request flow itself, whether a command, a form or the sweeper
	// reposting an interrupted request made it.
	ctx = slackrate.With(ctx, slackrate.Normal)
	queued := queuedFunc(ctx)
	ctx, cancel := b.patient(ctx)
	defer cancel()
	if queued != nil {
		ctx = slackrate.OnQueued(ctx, func(q slackrate.Queue) { queued(r, q) })
	}
	var channel, ts string
	var err error
	if r.Manager != "" {
		// The target's manager is asked first, in their DM; the channel is the fallback.
		var ref approvals.MessageRef
		if ref, err = b.dm(ctx, r.Manager, ApprovalText(r), ApprovalBlocks(r)); err == nil {
			channel, ts = ref.Channel, ref.TS
		} else {
			b.log.Warn("could not ask the manager; asking the approvers' channel", "request_id", r.ID, "err", err)
		}
	}
	if channel == "" {
		channel, ts, err = b.api.PostMessageContext(ctx, b.channel,
			slack.MsgOptionText(ApprovalText(r), false), slack.MsgOptionBlocks(ApprovalBlocks(r)...))
	}
	if err != nil {
		b.log.Error("post approval request", "request_id", r.ID, "channel", b.channel, "err", err)
		cctx := b.lastWords(ctx)
		if _, cerr := b.svc.Cancel(cctx, r.ID, "the approvers could not be asked"); cerr != nil {
			b.log.Error("cancel unseen request", "request_id", r.ID, "err", cerr)
		}
		b.metrics.Requests.WithLabelValues("cancelled").Inc()
		if _, throttled := slackrate.Throttled(err); throttled || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return nil, approvals.WrapError(approvals.Unavailable, err,
				"Slack kept tapbot from posting your request to the approvers for too long (tapbot is stopping, or Slack is limiting it hard), so nothing was requested. Try again in a few minutes.")
		}
		return nil, approvals.WrapError(approvals.Unavailable, err,
			"I could not post your request to the approvers' channel, so nothing was requested. Ask your Slack admin to check that tapbot is in that channel.")
	}

	updated, err := b.svc.SetApprovalMessage(ctx, r.ID, approvals.MessageRef{Channel: channel, TS: ts})
	if err != nil {
		b.log.Error("remember approval message", "request_id", r.ID, "err", err)
		return r, nil
	}
	if updated.State != approvals.Pending {
		// Decided from App Home before its message was recorded: show the decision there too.
		b.updateApproval(ctx, updated)
	}
	return updated, nil
}

// respond replies to a slash command through its response_url, visible only to its author.
func (b *Bot) respond(ctx context.Context, responseURL, text string) {
	err := slack.PostWebhookCustomHTTPContext(ctx, responseURL, b.http, &slack.WebhookMessage{
		ResponseType: slack.ResponseTypeEphemeral, Text: text,
	})
	if err != nil {
		b.log.Error("reply to slash command", "err", withoutURL(err))
	}
}

// withoutURL drops the URL from an HTTP client error: a response_url lets anyone post as tapbot
// to that person for half an hour, so it must not reach the logs.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

func (b *Bot) onDecision(approve bool) func(context.Context, slack.InteractionCallback, string) {
	return func(ctx context.Context, cb slack.InteractionCallback, id string) {
		if cb.Container.Type != "message" {
			// These buttons live on approval messages only; App Home has its own (onHomeDecision).
			b.log.Warn("refused an Approve/Deny click that does not come from a message", "user", cb.User.ID,
				"container", cb.Container.Type, "request_id", id)
			return
		}
		release, err := b.takeDecisionWorker(ctx)
		if err != nil {
			b.tellClicker(b.lastWords(ctx), cb, busyText)
			return
		}
		defer release()
		clicker := cb.User.ID
		clicked := approvals.MessageRef{Channel: cb.Channel.ID, TS: cb.Container.MessageTs}
		var r *approvals.Request
		if approve {
			start := time.Now()
			r, err = b.svc.Approve(ctx, id, clicker, clicked)
			defer func() { b.metrics.IssueDuration.Observe(time.Since(start).Seconds()) }()
		} else {
			r, err = b.svc.Deny(ctx, id, clicker, clicked)
		}
		// The worker is for the decision (Graph, the store); what Slack is told next may
		// queue behind its limits and holds none.
		release()
		endedNow := err == nil || errors.Is(err, approvals.ErrIssueFailed) || errors.Is(err, approvals.ErrExpiredNow)
		if err != nil {
			if approvals.ErrorCode(err) == "" {
				b.log.Error("decision failed", "request_id", id, "clicker", clicker, "approve", approve, "err", err)
			}
			b.tellClicker(ctx, cb, ":warning: "+userMessage(err))
		}
		if r == nil || !endedNow {
			return
		}
		b.metrics.Requests.WithLabelValues(string(r.State)).Inc()
		if r.State == approvals.Issued {
			b.deliver(ctx, r, &cb)
			return
		}
		b.updateApprovalFrom(ctx, r, &cb)
		b.tellRequester(ctx, r)
	}
}

// deliver sends the recipient the Reveal DM for an issued request and tells everyone how it
// went. cb is the approver's click, or nil when the sweeper delivers for a stopped replica.
func (b *Bot) deliver(ctx context.Context, r *approvals.Request, cb *slack.InteractionCallback) {
	ctx, cancel := b.patient(ctx)
	defer cancel()
	defer b.svc.HoldDelivery(r.ID)()
	// The Reveal DM is the request's own message: neither a click's answer nor a notification.
	// The approval message after it keeps the caller's priority (the approver's click).
	ref, err := b.dm(slackrate.With(ctx, slackrate.Normal), r.Recipient, RevealText(r), RevealBlocks(r))
	if err != nil {
		b.log.Error("send reveal message", "request_id", r.ID, "recipient", r.Recipient, "err", err)
		if updated, uerr := b.svc.Undeliverable(ctx, r.ID); uerr == nil {
			r = updated
		}
		text := fmt.Sprintf(":warning: The pass for %s was created, but I could not send <@%s> the message to reveal it (Slack refused the DM). Nobody has seen the pass; it expires %s. Ask for a new one once <@%s> can receive DMs from tapbot.",
			upnText(r.Target.UPN), r.Recipient, slackDate(r.PassExpiresAt), r.Recipient)
		if cb != nil {
			b.tellClicker(ctx, *cb, text)
		} else if _, err := b.dm(ctx, r.DecidedBy, text, nil); err != nil {
			b.log.Error("tell approver", "request_id", r.ID, "err", err)
		}
		if _, err := b.dm(ctx, r.Requester, text, nil); err != nil {
			b.log.Error("tell requester", "request_id", r.ID, "err", err)
		}
		b.updateApproval(ctx, r)
		return
	}
	if updated, err := b.svc.Delivered(ctx, r.ID, ref); err != nil {
		b.log.Error("remember reveal message", "request_id", r.ID, "err", err)
		r.RevealMessage = ref
	} else {
		r = updated
	}
	b.updateApprovalFrom(ctx, r, cb)
	if !r.RecipientIsRequester() {
		// When the pass comes to the requester, the reveal DM already tells them.
		b.tellRequester(ctx, r)
	}
}

// clicked reads a button click; a payload that is not one of our buttons with a well-formed
// request ID is refused here, with a log line and no effect.
func (b *Bot) clicked(evt *socketmode.Event) (slack.InteractionCallback, string, bool) {
	cb, ok := evt.Data.(slack.InteractionCallback)
	if !ok || len(cb.ActionCallback.BlockActions) != 1 {
		b.log.Warn("refused malformed block action", "type", string(evt.Type))
		return cb, "", false
	}
	id := cb.ActionCallback.BlockActions[0].Value
	if !approvals.ValidID(id) {
		b.log.Warn("refused block action with a forged request ID", "user", cb.User.ID,
			"action_id", cb.ActionCallback.BlockActions[0].ActionID, "value_len", len(id))
		return cb, "", false
	}
	return cb, id, true
}

// tellClicker answers the person who clicked, visible only to them, where they clicked. The
// click's own response_url goes first: a button can sit where tapbot may not post (a /tap
// confirmation in a DM between two people), and there chat.postEphemeral is refused.
func (b *Bot) tellClicker(ctx context.Context, cb slack.InteractionCallback, text string) {
	ctx, cancel := b.patient(ctx)
	defer cancel()
	var err error
	if cb.ResponseURL != "" {
		err = slack.PostWebhookCustomHTTPContext(ctx, cb.ResponseURL, b.http, &slack.WebhookMessage{
			ResponseType: slack.ResponseTypeEphemeral, Text: text,
		})
	}
	if cb.ResponseURL == "" || err != nil {
		_, err = b.api.PostEphemeralContext(ctx, cb.Channel.ID, cb.User.ID, slack.MsgOptionText(text, false))
	}
	if err != nil {
		b.log.Error("tell clicker", "user", cb.User.ID, "err", withoutURL(err))
	}
}

// updateApproval rewrites the approval message for the request's current state, buttons gone
// once decided. chat.update, unlike response_url, has no use limit.
func (b *Bot) updateApproval(ctx context.Context, r *approvals.Request) {
	m := r.ApprovalMessage
	if m.IsZero() {
		return
	}
	ctx, cancel := b.patient(ctx)
	defer cancel()
	r = b.latest(ctx, r)
	if _, _, _, err := b.api.UpdateMessageContext(ctx, m.Channel, m.TS,
		slack.MsgOptionText(ApprovalText(r), false), slack.MsgOptionBlocks(ApprovalBlocks(r)...)); err != nil {
		b.log.Error("update approval message", "request_id", r.ID, "err", err)
	}
}

// latest is the request as the store has it now, with the message references r knows that
// the store does not yet. A message is rendered from it when its update goes out: a handler
// that waited on Slack's limits (a "this wasn't me" behind a queue of updates) must not
// overwrite what a later click (a revoke) already showed. Updates of one message also go out
// in the order they were made (slackrate), so the last one shows the newest state.
func (b *Bot) latest(ctx context.Context, r *approvals.Request) *approvals.Request {
	cur, err := b.svc.Get(ctx, r.ID)
	if err != nil {
		return r
	}
	if cur.ApprovalMessage.IsZero() {
		cur.ApprovalMessage = r.ApprovalMessage
	}
	if cur.RevealMessage.IsZero() {
		cur.RevealMessage = r.RevealMessage
	}
	return cur
}

// updateApprovalFrom rewrites the approval message after a decision clicked on it: through the
// click's response_url when there is one, which costs none of chat.update's Tier 3 budget (the
// scarcest one a burst of approvals spends), and with chat.update otherwise.
func (b *Bot) updateApprovalFrom(ctx context.Context, r *approvals.Request, cb *slack.InteractionCallback) {
	m := r.ApprovalMessage
	if cb == nil || cb.ResponseURL == "" || m.IsZero() || cb.Container.MessageTs != m.TS || cb.Channel.ID != m.Channel {
		b.updateApproval(ctx, r)
		return
	}
	err := slack.PostWebhookCustomHTTPContext(ctx, cb.ResponseURL, b.http, &slack.WebhookMessage{
		ReplaceOriginal: true, Text: ApprovalText(r), Blocks: &slack.Blocks{BlockSet: ApprovalBlocks(r)},
	})
	if err != nil {
		b.log.Warn("update approval message through response_url; using chat.update", "request_id", r.ID, "err", withoutURL(err))
		b.updateApproval(ctx, r)
	}
}

// dm posts to a person's DM with the app. The DM's channel is remembered (dmChannel); one that
// Slack no longer knows is opened again.
func (b *Bot) dm(ctx context.Context, user, text string, blocks []slack.Block) (approvals.MessageRef, error) {
	opts := []slack.MsgOption{slack.MsgOptionText(text, false)}
	if len(blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(blocks...))
	}
	id, fresh, err := b.dmChannel(ctx, user, false)
	if err != nil {
		return approvals.MessageRef{}, err
	}
	channel, ts, err := b.api.PostMessageContext(ctx, id, opts...)
	if err != nil && !fresh && slackErrorCode(err) == "channel_not_found" {
		// Once, and from Slack: a memo that cannot be forgotten must not loop.
		b.forgetDMChannel(ctx, user)
		if id, _, err = b.dmChannel(ctx, user, true); err != nil {
			return approvals.MessageRef{}, err
		}
		channel, ts, err = b.api.PostMessageContext(ctx, id, opts...)
	}
	if err != nil {
		return approvals.MessageRef{}, fmt.Errorf("chat.postMessage to %s: %w", user, err)
	}
	return approvals.MessageRef{Channel: channel, TS: ts}, nil
}

// onReveal shows the pass once. It opens a modal with the click's trigger first and only then
// claims the pass; if Slack refuses to show it after all (it replaced or closed the window), the
// pass goes back to the store, so a double click or a lost window never costs the person their
// pass. An update with no clear answer (a reset or timeout after it was sent) may have put the
// pass on screen, so it counts as shown: a pass is never offered twice.
func (b *Bot) onReveal(ctx context.Context, cb slack.InteractionCallback, id string) {
	view, err := b.openWithTrigger(ctx, cb.TriggerID, MessageModal("Your access pass", "Unsealing your pass…"))
	if wait, throttled := slackrate.Throttled(err); throttled {
		b.log.Warn("reveal modal throttled past the trigger's life; the pass stays sealed", "request_id", id, "retry_in", wait.String())
		b.metrics.Reveals.WithLabelValues("throttled").Inc()
		b.tellClicker(ctx, cb, fmt.Sprintf(":hourglass_flowing_sand: Slack is limiting how fast tapbot may open windows right now, so your pass was not shown. It is still sealed and unseen: click *Reveal pass* again in %s.", roundWait(wait)))
		return
	}
	if err != nil {
		b.log.Error("open reveal modal", "request_id", id, "err", err)
		b.tellClicker(ctx, cb, ":warning: Slack did not let me open a window for your pass; nothing was revealed. Click *Reveal pass* again.")
		b.metrics.Reveals.WithLabelValues("error").Inc()
		return
	}
	// The recipient's time zone is read before the pass is claimed, so the claimed pass reaches
	// the screen as soon as possible.
	loc := b.userLocation(ctx, cb.User.ID)
	r, code, err := b.svc.Reveal(ctx, id, cb.User.ID, approvals.MessageRef{Channel: cb.Channel.ID, TS: cb.Container.MessageTs})
	if err != nil {
		if approvals.ErrorCode(err) == "" {
			b.log.Error("reveal", "request_id", id, "err", err)
		}
		b.updateView(ctx, view.ID, MessageModal("Cannot show the pass", ":no_entry: "+userMessage(err)))
		b.metrics.Reveals.WithLabelValues(revealOutcome(err)).Inc()
		if r != nil && r.State == approvals.Failed {
			// The pass is gone for good (it would not decrypt): say so everywhere it was offered.
			b.updateRevealMessage(ctx, r)
			b.updateApproval(ctx, r)
			if r.Requester != cb.User.ID {
				b.tellRequester(ctx, r)
			}
		}
		return
	}
	shown := b.showPass(ctx, view.ID, PassModalIn(r, code, loc))
	if shown == passRefused {
		defer b.metrics.Reveals.WithLabelValues("returned").Inc()
		back, err := b.svc.ReturnPass(ctx, id, code)
		if err != nil {
			b.log.Error("return unseen pass", "request_id", id, "err", err)
			b.tellClicker(ctx, cb, ":warning: "+userMessage(err))
			if back != nil && back.State == approvals.Failed {
				// Deleted in Entra ID: say so everywhere it was offered.
				b.updateRevealMessage(ctx, back)
				b.updateApproval(ctx, back)
				if back.Requester != cb.User.ID {
					b.tellRequester(ctx, back)
				}
			}
			return
		}
		b.tellClicker(ctx, cb, ":information_source: Slack closed the window before your pass could be shown. It is still safe and unseen: click *Reveal pass* again.")
		return
	}
	if shown == passUnclear {
		b.metrics.Reveals.WithLabelValues("unclear").Inc()
		b.tellClicker(ctx, cb, ":warning: Slack did not confirm that your pass reached your screen, so tapbot counts it as shown and will not show it again. "+
			"If you see it, you are all set. If you do not, tell your IT team: they can revoke it, and a new one can be asked for with /tap.")
	} else {
		b.metrics.Reveals.WithLabelValues("revealed").Inc()
	}
	confirmed, err := b.svc.ConfirmReveal(ctx, id)
	switch {
	case errors.Is(err, approvals.ErrShownInDoubt):
		// Shown after another replica took the reveal over: the pass was deleted, and the
		// recipient hears why the pass on their screen must not be used.
		b.metrics.Reveals.WithLabelValues("in_doubt").Inc()
		b.tellClicker(ctx, cb, ":rotating_light: "+userMessage(err))
		r = confirmed
	case err != nil:
		b.log.Error("record reveal", "request_id", id, "err", err)
	default:
		r = confirmed
	}
	if r.RevealMessage.IsZero() {
		// The click beat the record of where its DM is (Delivered): the DM is the clicked message.
		r.RevealMessage = approvals.MessageRef{Channel: cb.Channel.ID, TS: cb.Container.MessageTs}
	}
	b.updateRevealMessage(ctx, r)
	b.updateApproval(ctx, r)
	if (r.State == approvals.Revealed || r.State == approvals.Failed) && r.Requester != r.Recipient {
		b.tellRequester(ctx, r)
	}
}

// updateRevealMessage rewrites the recipient's DM for the request's current state.
func (b *Bot) updateRevealMessage(ctx context.Context, r *approvals.Request) {
	m := r.RevealMessage
	if m.IsZero() {
		return
	}
	ctx, cancel := b.patient(ctx)
	defer cancel()
	r = b.latest(ctx, r)
	if _, _, _, err := b.api.UpdateMessageContext(ctx, m.Channel, m.TS,
		slack.MsgOptionText(RevealText(r), false), slack.MsgOptionBlocks(RevealBlocks(r)...)); err != nil {
		b.log.Error("update reveal message", "request_id", r.ID, "err", err)
	}
}

// revealOutcome labels a refused reveal for metrics.
func revealOutcome(err error) string {
	switch {
	case errors.Is(err, approvals.ErrAlreadyRevealed):
		return "already_revealed"
	case errors.Is(err, approvals.ErrRevealInProgress):
		return "in_progress"
	case errors.Is(err, approvals.ErrPassLost):
		return "lost"
	case approvals.ErrorCode(err) == approvals.Unavailable:
		return "unavailable"
	}
	return "refused"
}

// passShown is what a views.update that puts the pass on screen did, as far as tapbot can tell.
type passShown int

const (
	passOnScreen passShown = iota // Slack answered ok
	passRefused                   // Slack certainly did not show it
	passUnclear                   // no clear answer: Slack may have shown it
)

// showPass puts the pass into the reveal modal.
func (b *Bot) showPass(ctx context.Context, viewID string, v slack.ModalViewRequest) passShown {
	_, err := b.api.UpdateViewContext(ctx, v, "", "", viewID)
	switch {
	case err == nil:
		return passOnScreen
	case definiteRefusal(err):
		b.log.Warn("Slack refused to show the pass; it goes back unseen", "view_id", viewID, "err", err)
		return passRefused
	}
	b.log.Error("no clear answer from Slack to the update that shows the pass; it counts as shown", "view_id", viewID, "err", err)
	return passUnclear
}

// definiteRefusal reports whether a Slack call that failed with err certainly did nothing: it
// was never sent (held back by the pacer), Slack throttled it (429), or Slack answered with an
// error that means it did not act. A reset, a timeout or a 5xx after the call went out, or an
// answer Slack itself calls unsure (internal_error, fatal_error: "some aspect of the operation
// may have succeeded"), is no refusal: the call may have been applied.
func definiteRefusal(err error) bool {
	if _, throttled := slackrate.Throttled(err); throttled {
		return true
	}
	var limited *slack.RateLimitedError
	if errors.As(err, &limited) {
		return true
	}
	return slackRefusals[slackErrorCode(err)]
}

// slackRefusals are the Web API error codes that mean Slack did not apply a call: the view is
// gone or was replaced, the request was malformed, or the token was refused.
var slackRefusals = map[string]bool{
	"not_found": true, "view_not_found": true, "hash_conflict": true, "duplicate_external_id": true,
	"invalid_arguments": true, "invalid_blocks": true, "invalid_view": true, "view_too_large": true,
	"expired_trigger_id": true, "exchanged_trigger_id": true, "invalid_trigger_id": true,
	"not_authed": true, "invalid_auth": true, "account_inactive": true, "token_revoked": true,
	"token_expired": true, "no_permission": true, "missing_scope": true, "not_allowed_token_type": true,
	"access_denied": true, "team_access_not_granted": true, "ekm_access_denied": true,
	"org_login_required": true, "two_factor_setup_required": true, "method_deprecated": true,
	"deprecated_endpoint": true, "ratelimited": true, "request_timeout": true,
	"invalid_form_data": true, "invalid_json": true, "json_not_object": true, "invalid_charset": true,
	"invalid_arg_name": true, "invalid_array_arg": true, "invalid_post_type": true, "missing_post_type": true,
}

// triggerBudget is how long after a click tapbot may still spend a trigger_id: Slack lets it
// be used within 3 s of the click, and the call itself takes time.
const triggerBudget = 2500 * time.Millisecond

// openWithTrigger opens a modal with a click's trigger_id, first in line for Slack's limits. A
// call that Slack's limits would hold past the trigger's life is not sent:
// slackrate.ThrottledError says when to try again.
func (b *Bot) openWithTrigger(ctx context.Context, trigger string, v slack.ModalViewRequest) (*slack.ViewResponse, error) {
	ctx, cancel := context.WithTimeout(slackrate.With(ctx, slackrate.Interactive), triggerBudget)
	defer cancel()
	return b.api.OpenViewContext(ctx, trigger, v)
}

func (b *Bot) updateView(ctx context.Context, viewID string, v slack.ModalViewRequest) bool {
	if _, err := b.api.UpdateViewContext(ctx, v, "", "", viewID); err != nil {
		b.log.Error("update modal", "view_id", viewID, "err", err)
		return false
	}
	return true
}

// onRevoke deletes an issued pass in Entra ID, from the approval message or an alert.
func (b *Bot) onRevoke(ctx context.Context, cb slack.InteractionCallback, id string) {
	r, err := b.svc.Revoke(ctx, id, cb.User.ID)
	if err != nil {
		if approvals.ErrorCode(err) == "" {
			b.log.Error("revoke", "request_id", id, "err", err)
		}
		b.tellClicker(ctx, cb, ":warning: "+userMessage(err))
		return
	}
	b.metrics.Requests.WithLabelValues(string(r.State)).Inc()
	b.updateApproval(ctx, r)
	b.updateRevealMessage(ctx, r)
	if cb.Container.MessageTs != r.ApprovalMessage.TS {
		// Clicked on an alert: show there that it was handled.
		if _, _, _, err := b.api.UpdateMessageContext(ctx, cb.Channel.ID, cb.Container.MessageTs,
			slack.MsgOptionText("Temporary Access Pass alert: revoked", false),
			slack.MsgOptionBlocks(AlertBlocks(r, fmt.Sprintf(":no_entry: Revoked by <@%s>.", r.RevokedBy))...)); err != nil {
			b.log.Error("update alert", "request_id", id, "err", err)
		}
	}
	b.tellClicker(ctx, cb, fmt.Sprintf(":no_entry: The pass for %s was deleted in Entra ID; it can no longer be used or revealed.", targetText(r.Target)))
	if r.RevokedBy != r.Requester {
		b.tellRequester(ctx, r)
	}
}

// onReport records the recipient's "this wasn't me"; the audit sink raises the alert.
func (b *Bot) onReport(ctx context.Context, cb slack.InteractionCallback, id string) {
	r, err := b.svc.Report(ctx, id, cb.User.ID)
	if err != nil {
		b.tellClicker(ctx, cb, ":warning: "+userMessage(err))
		return
	}
	b.updateRevealMessage(ctx, r)
	b.updateApproval(ctx, r)
	b.tellClicker(ctx, cb, ":rotating_light: Thank you. IT has been alerted and can revoke the pass. Do not use it.")
}

type auditPost struct {
	e approvals.Event
	r *approvals.Request
}

// OnAudit queues an audit event for the audit channel; it is the service's audit sink. It never
// blocks a request: when the queue is full the event is only in the log and the store.
func (b *Bot) OnAudit(_ context.Context, e approvals.Event, r *approvals.Request) {
	select {
	case b.audits <- auditPost{e, cloneOrNil(r)}:
	default:
		b.log.Warn("audit channel queue full; event kept in log and store only", "event", e.Event, "request_id", e.RequestID)
	}
}

// cloneOrNil copies a request, if the event has one (onboarding events have none).
func cloneOrNil(r *approvals.Request) *approvals.Request {
	if r == nil {
		return nil
	}
	return r.Clone()
}

// postAudits posts queued audit events in order until ctx ends, then drains what is queued
// for a few seconds at most: shutdown must not wait on Slack's limits, and what is left is in
// the log and the store.
func (b *Bot) postAudits(ctx context.Context) {
	for {
		select {
		case p := <-b.audits:
			// Bulk: an audit post or alert never keeps a click waiting; a queue of them is
			// drained in order, each allowed to wait its turn, until shutdown (ctx).
			postCtx, cancel := context.WithTimeout(slackrate.With(ctx, slackrate.Bulk), slackPatience)
			b.postAudit(postCtx, p)
			cancel()
		case <-ctx.Done():
			drain, cancel := context.WithTimeout(slackrate.With(context.WithoutCancel(ctx), slackrate.Bulk), auditDrainTimeout)
			defer cancel()
			for {
				select {
				case p := <-b.audits:
					if drain.Err() != nil {
						b.log.Warn("audit posts not sent at shutdown; they are in the log and the store", "left", len(b.audits)+1)
						return
					}
					b.postAudit(drain, p)
				default:
					return
				}
			}
		}
	}
}

// auditDrainTimeout bounds the audit posts sent after shutdown began.
const auditDrainTimeout = 5 * time.Second

func (b *Bot) postAudit(ctx context.Context, p auditPost) {
	if alert := alertText(p.e); alert != "" {
		channel := b.cfg.AuditChannel
		if channel == "" {
			channel = b.channel
		}
		// An alert is not bulk: someone may be taking over an account.
		if _, _, err := b.api.PostMessageContext(slackrate.With(ctx, slackrate.Normal), channel, slack.MsgOptionText("Temporary Access Pass alert", false),
			slack.MsgOptionBlocks(AlertBlocks(p.r, alert)...)); err != nil {
			b.log.Error("post security alert", "request_id", p.e.RequestID, "event", p.e.Event, "err", err)
		}
		return
	}
	if b.cfg.AuditChannel == "" || p.e.Event == approvals.EventExternalCreated {
		return // a pass made outside tapbot has its own alert (watchTenant)
	}
	if _, _, err := b.api.PostMessageContext(ctx, b.cfg.AuditChannel, slack.MsgOptionText(AuditLine(p.e), false)); err != nil {
		b.log.Error("post audit event", "request_id", p.e.RequestID, "event", p.e.Event, "err", err)
	}
}

// alertText is the alarm an event raises, or "" for an ordinary event.
func alertText(e approvals.Event) string {
	switch {
	case e.Event == approvals.EventReported:
		return fmt.Sprintf(":rotating_light: <@%s> says *this wasn't me*: they did not expect this pass. Someone may be trying to take over the account.", e.Actor)
	case e.Event == approvals.EventRevealRefused && strings.HasPrefix(e.Detail, "already revealed"):
		return fmt.Sprintf(":rotating_light: <@%s> tried to reveal a pass that was already revealed. Someone else may have it.", e.Actor)
	case e.Event == approvals.EventRevealRefused:
		return fmt.Sprintf(":rotating_light: <@%s> tried to reveal a pass that is not theirs.", e.Actor)
	case e.Event == approvals.EventRevealInDoubt:
		return ":rotating_light: A pass was put on screen after another tapbot replica had taken its reveal over, so it may have been shown twice. It was deleted in Entra ID; check who signed in with it."
	}
	return ""
}

// tellRequester DMs the requester where their request stands now.
func (b *Bot) tellRequester(ctx context.Context, r *approvals.Request) {
	ctx, cancel := b.patient(slackrate.With(ctx, slackrate.Bulk))
	defer cancel()
	if _, err := b.dm(ctx, r.Requester, requesterUpdate(r), nil); err != nil {
		b.log.Error("tell requester", "request_id", r.ID, "err", err)
	}
}
