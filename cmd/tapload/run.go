package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tapbot/tapbot/internal/graphfake"
	"github.com/tapbot/tapbot/internal/slackfake"
)

// The people and places of the load's fake workspace.
const (
	botToken        = "xoxb-tapload-bot-token"
	appToken        = "xapp-tapload-app-token"
	manager         = "UMANAGER"
	approver        = "UAPPROVER"
	approvalChannel = "CAPPROVALS"
	general         = "CGENERAL"
	// defaultGraphConcurrency is tapbot's TAP_GRAPH_CONCURRENCY default, reported when the load
	// leaves the variable unset, as the target is about the default.
	defaultGraphConcurrency = 8
)

func targetID(i int) string { return fmt.Sprintf("UTGT%05d", i) }

// startersPerManager is how many new starters each manager asks passes for. A Monday's load comes
// from many managers at once, and tapbot allows each requester TAP_RATE_PER_REQUESTER (default
// 10) requests an hour, so the load spreads its requests the way a company would.
const startersPerManager = 5

func managerID(i int) string { return fmt.Sprintf("UMGR%05d", i) }

// onboarding is the request for new starter i, from their manager: every one names a different
// person, because tapbot allows one open request per person.
func onboarding(i int) command {
	return command{user: managerID(i / startersPerManager), text: "<@" + targetID(i) + "> 1h once onboarding"}
}

// targets is how many new starters a run needs: one per measured command, and at least one per
// issuance; a burst needs one per request.
func (o options) targets() int {
	if o.Burst != nil {
		return o.Burst.Requests
	}
	return max(o.Commands, o.Issuances)
}

// managers is how many managers a run needs: startersPerManager starters each, or the burst's.
func (o options) managers() int {
	n := (o.targets() + startersPerManager - 1) / startersPerManager
	if o.Burst != nil {
		n = max(n, o.Burst.Managers)
	}
	return n
}
func cycleID(i int) string { return fmt.Sprintf("UCYCLE%02d", i) }

// options is one load run.
type options struct {
	Commands         int           // slash commands measured, at the bot and at the floor
	Concurrency      int           // slash commands in flight
	Issuances        int           // pending requests approved at once
	ClickConcurrency int           // Approve clicks in flight
	GraphLatency     time.Duration // added by the Graph fake to every Graph call
	// GraphConcurrency sets TAP_GRAPH_CONCURRENCY; 0 leaves it unset so tapbot's default runs.
	GraphConcurrency int
	// Tapbot is a prebuilt tapbot binary; empty builds cmd/tapbot with BuildFlags.
	Tapbot     string
	BuildFlags []string
	// Self is the executable that runs the floor client when floorEnv is set.
	Self    string
	Timeout time.Duration
	Short   bool
	// KeepDir keeps the working directory (bot and floor logs) even when the run succeeds.
	KeepDir bool
	// BotEnv adds variables to the bot's environment (GOGC, GOMEMLIMIT, GODEBUG=gctrace=1 for
	// experiments); the published run sets none.
	BotEnv []string
	// Profile builds tapbot with a pprof server (go build -overlay, source untouched) and saves
	// CPU, heap and goroutine profiles of the ack and issuance runs into the working directory.
	Profile bool
	// Burst runs the burst mode (burst.go) instead of the measurements above: the fake throttles
	// at Slack's published rates and tapbot paces its calls, as in production.
	Burst *burstSettings
	Log   *slog.Logger
}

func fullOptions() options {
	return options{Commands: 1000, Concurrency: 20, Issuances: 500, ClickConcurrency: 100,
		GraphLatency: 50 * time.Millisecond, Timeout: 10 * time.Minute}
}

func shortOptions() options {
	return options{Commands: 50, Concurrency: 20, Issuances: 20, ClickConcurrency: 20,
		GraphLatency: 50 * time.Millisecond, Timeout: 3 * time.Minute, Short: true}
}

// world is the fakes, Redis and the bot process of one run.
type world struct {
	o       options
	dir     string
	log     *slog.Logger
	slack   *slackfake.Server
	graph   *graphfake.Server
	redis   *redisServer
	bot     *child
	health  string            // http://addr of the bot's health server
	prof    *profiler         // nil unless options.Profile
	entraID map[string]string // Slack user ID -> Entra object ID
}

// run starts everything, runs each measurement in turn and returns the report. The error is for
// a run that could not complete (a fake, Redis or the bot failed, or something timed out); a
// missed target is only reported.
func run(ctx context.Context, o options) (rep report, err error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Self == "" {
		if o.Self, err = os.Executable(); err != nil {
			return rep, fmt.Errorf("find tapload's own executable for the floor client: %w", err)
		}
	}
	if o.Commands <= 0 || o.Concurrency <= 0 || o.Issuances <= 0 || o.ClickConcurrency <= 0 {
		return rep, errors.New("commands, concurrency, issuances and click concurrency must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	rep = newReport(o)
	dir, done, err := workDir(o)
	if err != nil {
		return rep, err
	}
	defer func() { done(err) }()

	w := &world{o: o, dir: dir, log: o.Log, entraID: map[string]string{}}
	defer w.close()
	if err := w.start(ctx); err != nil {
		return rep, err
	}
	rep.Machine.RedisVersion = w.redis.version(ctx)
	meter, err := newCPUMeter(w.bot.pid(), w.redis.cmd.Process.Pid)
	if err != nil {
		return rep, err
	}

	steps := []struct {
		name string
		f    func(context.Context, *report) error
	}{
		{"idle memory", w.measureIdle},
		{"redis commands per lifecycle", w.measureLifecycle},
		{"ack latency", w.measureAcks},
		{"issuance", w.measureIssuance},
	}
	for _, s := range steps {
		o.Log.Info("measuring", "step", s.name)
		if err := s.f(ctx, &rep); err != nil {
			return rep, fmt.Errorf("%s: %w", s.name, err)
		}
		if err := w.bot.exited(); err != nil {
			return rep, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	rep.Violations = violationsOf(w.slack.Violations(), w.graph.Violations())
	if rep.Machine.ForeignCPUPercent, err = meter.foreignPercent(); err != nil {
		return rep, err
	}
	if err := w.bot.stop(30 * time.Second); err != nil {
		return rep, fmt.Errorf("stop tapbot: %w", err)
	}
	rep.judge()
	return rep, nil
}

// workDir makes a run's working directory; done removes it unless the run failed (err) or
// options.KeepDir asks to keep it.
func workDir(o options) (dir string, done func(err error), err error) {
	dir, err = os.MkdirTemp("", "tapload-")
	if err != nil {
		return "", nil, fmt.Errorf("working directory: %w", err)
	}
	return dir, func(err error) {
		if err != nil || o.KeepDir {
			o.Log.Info("logs kept", "dir", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}, nil
}

func (w *world) start(ctx context.Context) error {
	var err error
	if w.redis, err = startRedis(ctx, w.dir); err != nil {
		return err
	}

	// These runs measure tapbot itself, so Slack's rate limits are off on both sides: the fake
	// answers every call at once and tapbot does not pace (TAP_SLACK_PACING=off). The burst
	// mode measures tapbot against Slack's published limits instead: the fake throttles at
	// PublishedRateLimits (speed 1) and tapbot paces with its defaults.
	limits := &slackfake.RateLimits{Off: true}
	if w.o.Burst != nil {
		published := slackfake.PublishedRateLimits()
		limits = &published
	}
	w.slack = slackfake.New(slackfake.Options{BotToken: botToken, AppToken: appToken, RateLimits: limits})
	w.slack.AddUser(slackfake.User{ID: manager, Name: "manager", Email: "manager@example.com", TZ: "Europe/Berlin"})
	w.slack.AddUser(slackfake.User{ID: approver, Name: "approver", Email: "approver@example.com"})
	w.slack.AddChannel(approvalChannel)
	w.slack.AddChannel(general)

	if w.graph, err = graphfake.New(graphfake.Options{Latency: w.o.GraphLatency}); err != nil {
		return fmt.Errorf("graph fake: %w", err)
	}
	w.graph.AddUser(graphfake.User{UPN: "manager@example.com", Mail: "manager@example.com", DisplayName: "Manager"})
	w.graph.AddUser(graphfake.User{UPN: "approver@example.com", Mail: "approver@example.com", DisplayName: "Approver"})
	addPerson := func(id, name string) {
		email := strings.ToLower(id) + "@example.com"
		w.slack.AddUser(slackfake.User{ID: id, Name: strings.ToLower(id), Email: email, TZ: "Europe/London"})
		u := w.graph.AddUser(graphfake.User{UPN: email, Mail: email, DisplayName: name})
		w.entraID[id] = u.ID
	}
	for i := range w.o.targets() {
		addPerson(targetID(i), fmt.Sprintf("New Starter %d", i))
	}
	for i := range w.o.managers() {
		addPerson(managerID(i), fmt.Sprintf("Manager %d", i))
	}
	for i := range maxLifecycleAttempts + 1 {
		addPerson(cycleID(i), fmt.Sprintf("Lifecycle %d", i))
	}

	bin, flags := w.o.Tapbot, w.o.BuildFlags
	if w.o.Profile && bin == "" {
		overlay, err := pprofOverlay(ctx, w.dir)
		if err != nil {
			return err
		}
		flags = append(append([]string(nil), flags...), overlay)
	}
	if bin == "" {
		w.log.Info("building tapbot", "package", tapbotPackage, "flags", strings.Join(flags, " "))
		if bin, err = buildTapbot(ctx, w.dir, flags); err != nil {
			return err
		}
	}
	caPath := filepath.Join(w.dir, "graphfake-ca.pem")
	if err := os.WriteFile(caPath, w.graph.CACertPEM(), 0o600); err != nil {
		return fmt.Errorf("write the Graph fake's CA: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	httpAddr := "127.0.0.1:" + strconv.Itoa(port)
	w.health = "http://" + httpAddr
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	env := []string{
		"SLACK_APP_TOKEN=" + appToken,
		"SLACK_BOT_TOKEN=" + botToken,
		"SLACK_API_URL=" + w.slack.APIURL(),
		"AZURE_TENANT_ID=" + w.graph.TenantID(),
		"AZURE_CLIENT_ID=" + w.graph.ClientID(),
		"AZURE_CLIENT_SECRET=" + w.graph.ClientSecret(),
		"AZURE_AUTHORITY_HOST=" + w.graph.AuthorityHost(),
		"GRAPH_BASE_URL=" + w.graph.GraphURL(),
		"REDIS_URL=" + w.redis.url(),
		"TAP_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(key),
		"TAP_APPROVAL_CHANNEL=" + approvalChannel,
		"TAP_APPROVERS=" + approver,
		"TAP_HTTP_ADDR=" + httpAddr,
		// Go reads extra roots from SSL_CERT_FILE on Linux: the bot trusts the fake's CA the way
		// an operator would make it trust a private CA, with no test hook.
		"SSL_CERT_FILE=" + caPath,
	}
	if w.o.Burst == nil {
		env = append(env, "TAP_SLACK_PACING=off")
	}
	if w.o.GraphConcurrency > 0 {
		env = append(env, "TAP_GRAPH_CONCURRENCY="+strconv.Itoa(w.o.GraphConcurrency))
	}
	if w.o.Profile {
		pport, err := freePort()
		if err != nil {
			return err
		}
		addr := "127.0.0.1:" + strconv.Itoa(pport)
		env = append(env, pprofEnv+"="+addr)
		w.prof = &profiler{base: "http://" + addr, dir: w.dir, log: w.log}
	}
	env = append(env, w.o.BotEnv...)
	botDir := filepath.Join(w.dir, "bot") // no .env here: the environment is the whole config
	if err := os.Mkdir(botDir, 0o700); err != nil {
		return fmt.Errorf("bot directory: %w", err)
	}
	if w.bot, err = startChild("tapbot", bin, nil, env, botDir, filepath.Join(w.dir, "tapbot.log")); err != nil {
		return err
	}
	return w.waitReady(ctx)
}

// waitReady waits for /readyz (socket connected and Redis answering) and the fake's view of the
// connection.
func (w *world) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		if err := w.bot.exited(); err != nil {
			return err
		}
		if code, _, err := httpGet(ctx, w.health+"/readyz"); err == nil && code == 200 && w.slack.ConnectionCount() > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("tapbot was not ready within 90s; last output:\n%s", w.bot.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (w *world) close() {
	if w.bot != nil {
		_ = w.bot.stop(10 * time.Second)
	}
	if w.slack != nil {
		w.slack.Close()
	}
	if w.graph != nil {
		w.graph.Close()
	}
	if w.redis != nil {
		w.redis.stop()
	}
}

// waitFor polls cond until it holds, the bot dies, or the timeout runs out. Polling, rather
// than the fake's change notifications, keeps the fake's lock free for the bot under load.
func (w *world) waitFor(ctx context.Context, what string, timeout, every time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if cond() {
			return nil
		}
		if err := w.bot.exited(); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(every):
		}
	}
}

// settle waits until the bot has made no Slack call for quiet, so a memory reading or the next
// step is not taken while the last one's work still runs.
func (w *world) settle(ctx context.Context, quiet, timeout time.Duration) error {
	last, since := -1, time.Now()
	return w.waitFor(ctx, "the bot to go quiet", timeout, 50*time.Millisecond, func() bool {
		n := len(w.slack.CallLog())
		if n != last {
			last, since = n, time.Now()
			return false
		}
		return time.Since(since) >= quiet
	})
}

func (w *world) measureIdle(ctx context.Context, rep *report) error {
	// Let start-up garbage be collected and the first heartbeat and sweep run.
	if err := w.settle(ctx, time.Second, 30*time.Second); err != nil {
		return err
	}
	m, err := readMemory(w.bot.pid())
	if err != nil {
		return err
	}
	rep.Memory.Idle = m
	rep.Memory.IdleGo = w.goMemory(ctx)
	return resetPeak(w.bot.pid())
}

// phasePeak reads the peak RSS since the last reset and starts the next phase's.
func (w *world) phasePeak() (memory, error) {
	m, err := readMemory(w.bot.pid())
	if err != nil {
		return m, err
	}
	return m, resetPeak(w.bot.pid())
}

// goMemory reads the Go runtime's view from /metrics, to tell heap from the rest of the RSS.
func (w *world) goMemory(ctx context.Context) goMemory {
	_, body, err := httpGet(ctx, w.health+"/metrics")
	if err != nil {
		return goMemory{}
	}
	var g goMemory
	if v, ok := metricValue(body, "go_memstats_heap_inuse_bytes"); ok {
		g.HeapInuseBytes = int64(v)
	}
	if v, ok := metricValue(body, "go_memstats_sys_bytes"); ok {
		g.SysBytes = int64(v)
	}
	if v, ok := metricValue(body, "go_memstats_stack_inuse_bytes"); ok {
		g.StackInuseBytes = int64(v)
	}
	if v, ok := metricValue(body, "go_goroutines"); ok {
		g.Goroutines = int(v)
	}
	return g
}

var mentionRE = regexp.MustCompile(`<@(UTGT\d+|UCYCLE\d+)>`)

// pendingApproval is an approval message that still shows its buttons.
type pendingApproval struct {
	ref     slackfake.MessageRef
	approve slackfake.Button
}

// pendingApprovals maps each target to the oldest approval message for it that can still be
// approved.
func (w *world) pendingApprovals() map[string]pendingApproval {
	out := map[string]pendingApproval{}
	for _, m := range w.slack.Messages(approvalChannel) {
		var approve *slackfake.Button
		for _, b := range m.Buttons() {
			if b.Text == "Approve" {
				approve = &b
			}
		}
		if approve == nil {
			continue
		}
		match := mentionRE.FindStringSubmatch(m.PlainText())
		if match == nil {
			continue
		}
		if _, seen := out[match[1]]; !seen {
			out[match[1]] = pendingApproval{ref: m.Ref(), approve: *approve}
		}
	}
	return out
}

// revealDM returns the recipient's Reveal DM, if it has arrived.
func (w *world) revealDM(user string) (slackfake.Message, slackfake.Button, bool) {
	for _, m := range w.slack.Messages(user) {
		for _, b := range m.Buttons() {
			if b.Text == "Reveal pass" {
				return m, b, true
			}
		}
	}
	return slackfake.Message{}, slackfake.Button{}, false
}

// tsTime is when the fake stamped a message: its ts is the fake's clock at chat.postMessage.
func tsTime(ts string) (time.Time, error) {
	sec, usec, ok := strings.Cut(ts, ".")
	if !ok {
		return time.Time{}, fmt.Errorf("message ts %q", ts)
	}
	s, err1 := strconv.ParseInt(sec, 10, 64)
	u, err2 := strconv.ParseInt(usec, 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return time.Time{}, fmt.Errorf("message ts %q: %w", ts, err)
	}
	return time.Unix(s, u*1000), nil
}
