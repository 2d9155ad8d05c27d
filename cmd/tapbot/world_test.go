package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tapbot/tapbot/config"
	"github.com/tapbot/tapbot/internal/graphfake"
	"github.com/tapbot/tapbot/internal/redistest"
	"github.com/tapbot/tapbot/internal/slackfake"
)

// The people of the fake workspace and tenant.
const (
	manager         = "UMANAGER"
	ada             = "UADA"
	approver        = "UAPPROVER"
	groupie         = "UGROUPIE" // an approver through the SAPPROVERS user group
	outsider        = "UOUTSIDER"
	approvalChannel = "CAPPROVALS"
	general         = "CGENERAL"

	adaEntraID      = "00000000-0000-0000-0000-00000000000a"
	approverEntraID = "00000000-0000-0000-0000-0000000000ab"
	extEntraID      = "00000000-0000-0000-0000-00000000000e"
)

// world is a fake Slack workspace, a fake Entra tenant and optionally a real redis-server, with
// tapbot started against them exactly as cmd/tapbot wires it.
type world struct {
	t     *testing.T
	slack *slackfake.Server
	graph *graphfake.Server
	redis *redistest.Server
	// proxy, with withRedisProxy, stands between tapbot and redis and loses replies on demand;
	// replica, with withRedisReplica, replicates redis.
	proxy   *redistest.Proxy
	replica *redistest.Server
	env     map[string]string
	logs    *syncBuffer

	clockMu sync.Mutex
	now     time.Time

	cancel   context.CancelFunc
	done     chan error
	main     *Main
	httpAddr string
	noStart  bool

	sweepEvery time.Duration
	// slackSpeed runs Slack's rate limits (the fake's and tapbot's pacing) that many times
	// faster; 0 is Slack's real pace, the default.
	slackSpeed float64
	// routes send the requests for a host through a transport of the test's, as the fakes' own
	// hosts are; any other host is reached for real.
	routes map[string]http.RoundTripper
	// extra are more replicas started with startReplica, stopped at cleanup.
	extra []*Main
	stops []func()
}

type worldOption func(*world)

// withoutStart builds the world but leaves starting tapbot to the test.
func withoutStart(w *world) { w.noStart = true }

// withFastSweep makes the sweeper run every 100ms instead of only at start, for tests of what
// it does without anyone clicking.
func withFastSweep(w *world) { w.sweepEvery = 100 * time.Millisecond }

// withRedis runs the bot on a real redis-server instead of the embedded store.
func withRedis(w *world) {
	w.redis = redistest.Start(w.t)
	w.env["REDIS_URL"] = w.redis.URL()
	w.env["TAP_ENCRYPTION_KEY"] = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
}

// withRedisProxy is withRedis with tapbot reaching Redis through a proxy that can lose a reply
// after Redis ran the command, or a command before it reaches Redis (see redistest.Proxy).
func withRedisProxy(w *world) {
	withRedis(w)
	w.proxy = redistest.StartProxy(w.t, w.redis)
	w.env["REDIS_URL"] = w.proxy.URL()
}

// withRedisReplica is withRedis on a Redis with a replica, as Sentinel deployments run, and
// TAP_REDIS_REPLICAS=1 so a reveal waits for it.
func withRedisReplica(w *world) {
	w.env["TAP_ENCRYPTION_KEY"] = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
	w.redis = redistest.StartTCP(w.t)
	w.replica = redistest.StartReplica(w.t, w.redis)
	w.env["REDIS_URL"] = w.redis.URL()
	w.env["TAP_REDIS_REPLICAS"] = "1"
}

// withSlackSpeed runs Slack's published rate limits speed times faster, in the fake and in
// tapbot's pacing alike, for tests that make more calls than Slack's bursts allow (reconnects
// and restarts spend apps.connections.open, which allows one a minute) or that run a burst.
func withSlackSpeed(speed float64) worldOption { return withSlackSpeeds(speed, speed) }

// withSlackSpeeds runs the fake's limits at slack times and tapbot's pacing at tapbot times
// Slack's real pace: a fake slower than tapbot believes is a Slack stricter than it publishes.
func withSlackSpeeds(slack, tapbot float64) worldOption {
	return func(w *world) {
		l := slackfake.PublishedRateLimits()
		l.Speed = slack
		w.slack.SetRateLimits(l)
		w.slackSpeed = tapbot
	}
}

func withEnv(k, v string) worldOption { return func(w *world) { w.env[k] = v } }

func newWorld(t *testing.T, opts ...worldOption) *world {
	t.Helper()
	w := &world{t: t, logs: &syncBuffer{}, now: time.Now(), sweepEvery: time.Hour}
	w.slack = slackfake.New(slackfake.Options{BotToken: "xoxb-test-token", AppToken: "xapp-test-token"})
	t.Cleanup(w.slack.Close)
	for _, u := range []slackfake.User{
		{ID: manager, Name: "manager", Email: "manager@example.com", TZ: "Europe/Berlin"},
		{ID: ada, Name: "ada", Email: "ada@example.com", TZ: "Europe/London"},
		{ID: approver, Name: "approver", Email: "approver@example.com"},
		{ID: groupie, Name: "groupie", Email: "groupie@example.com"},
		{ID: outsider, Name: "outsider", Email: "outsider@example.com"},
	} {
		w.slack.AddUser(u)
	}
	w.slack.AddGroup("SAPPROVERS", groupie)
	w.slack.AddChannel(approvalChannel, manager, approver, groupie, outsider, ada)
	w.slack.AddChannel(general, manager, ada, approver, groupie, outsider)

	g, err := graphfake.New(graphfake.Options{})
	if err != nil {
		t.Fatalf("graphfake: %v", err)
	}
	t.Cleanup(g.Close)
	w.graph = g
	g.AddUser(graphfake.User{ID: adaEntraID, UPN: "ada@example.com", Mail: "ada@example.com", DisplayName: "Ada Lovelace"})
	g.AddUser(graphfake.User{ID: "00000000-0000-0000-0000-0000000000aa", UPN: "manager@example.com", Mail: "manager@example.com", DisplayName: "Manager"})
	g.AddUser(graphfake.User{ID: extEntraID, UPN: "ext@example.com", Mail: "ext@example.com", DisplayName: "Contractor"})
	// Requesters and approvers need Entra ID accounts too: four eyes compares those. The
	// outsider has none (a Slack-only account).
	g.AddUser(graphfake.User{ID: approverEntraID, UPN: "approver@example.com", Mail: "approver@example.com", DisplayName: "Approver"})
	g.AddUser(graphfake.User{UPN: "groupie@example.com", Mail: "groupie@example.com", DisplayName: "Groupie"})

	w.env = map[string]string{
		"SLACK_APP_TOKEN":      "xapp-test-token",
		"SLACK_BOT_TOKEN":      "xoxb-test-token",
		"SLACK_API_URL":        w.slack.APIURL(),
		"AZURE_TENANT_ID":      g.TenantID(),
		"AZURE_CLIENT_ID":      g.ClientID(),
		"AZURE_CLIENT_SECRET":  g.ClientSecret(),
		"AZURE_AUTHORITY_HOST": g.AuthorityHost(),
		"GRAPH_BASE_URL":       g.GraphURL(),
		"TAP_APPROVAL_CHANNEL": approvalChannel,
		"TAP_APPROVERS":        approver + ",SAPPROVERS",
		"TAP_HTTP_ADDR":        "127.0.0.1:0",
		"REDIS_URL":            "",
		"TAP_ENCRYPTION_KEY":   "",
	}
	for _, o := range opts {
		o(w)
	}
	if !w.noStart {
		w.start()
	}
	t.Cleanup(func() {
		w.stop()
		if v := w.slack.Violations(); len(v) > 0 {
			t.Errorf("tapbot did things Slack would reject:\n%s", strings.Join(v, "\n"))
		}
		if v := w.graph.Violations(); len(v) > 0 {
			t.Errorf("tapbot did things Graph would reject:\n%s", strings.Join(v, "\n"))
		}
		w.assertNoPassLeaked()
	})
	return w
}

func (w *world) clock() time.Time { w.clockMu.Lock(); defer w.clockMu.Unlock(); return w.now }

// advance lets time pass for tapbot's rules (request TTL, pass expiry).
func (w *world) advance(d time.Duration) {
	w.clockMu.Lock()
	w.now = w.now.Add(d)
	w.clockMu.Unlock()
}

// newMain builds tapbot from the world's environment, as cmd/tapbot does from the real one.
func (w *world) newMain(listening func(string)) *Main {
	w.t.Helper()
	for k, v := range w.env {
		w.t.Setenv(k, v)
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		w.t.Fatalf("config: %v", err)
	}
	transport := hostRouter{w.graph.Addr(): w.graph.Transport()}
	for host, rt := range w.routes {
		transport[host] = rt
	}
	return NewMain(cfg, Options{
		Transport:    transport,
		Logger:       slog.New(slog.NewJSONHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Listening:    listening,
		Now:          w.clock,
		SweepEvery:   w.sweepEvery,
		HeartbeatTTL: time.Second,
		SlackSpeed:   w.slackSpeed,
	})
}

// run starts tapbot and returns what Run returned, for start-ups that must fail.
func (w *world) run() error {
	w.t.Helper()
	m := w.newMain(nil)
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return m.Run(ctx)
}

// start runs tapbot in-process with the world's environment and waits until it is connected.
func (w *world) start() {
	w.t.Helper()
	addr := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	w.main = w.newMain(func(a string) { addr <- a })
	w.cancel, w.done = cancel, make(chan error, 1)
	before := w.slack.TotalConnections()
	go func() { w.done <- w.main.Run(ctx) }()
	select {
	case w.httpAddr = <-addr:
	case err := <-w.done:
		w.t.Fatalf("tapbot stopped at start: %v\nlogs:\n%s", err, w.logs)
	case <-time.After(60 * time.Second):
		w.t.Fatalf("tapbot did not start within 60s\nlogs:\n%s", w.logs)
	}
	w.waitFor("socket-mode connection", func() bool { return w.slack.TotalConnections() > before && w.ready() })
}

func (w *world) ready() bool {
	resp, err := http.Get("http://" + w.httpAddr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stop ends tapbot as SIGTERM would and waits for it.
func (w *world) stop() {
	for _, stop := range w.stops {
		stop()
	}
	w.stops = nil
	if w.cancel == nil {
		return
	}
	w.cancel()
	select {
	case err := <-w.done:
		if err != nil {
			w.t.Errorf("tapbot Run returned %v", err)
		}
	case <-time.After(30 * time.Second):
		w.t.Errorf("tapbot did not stop within 30s")
	}
	_ = w.main.Close()
	w.cancel = nil
}

// startReplica starts one more in-process replica on the same environment (share Redis for
// this to mean anything); Slack spreads envelopes over all connections.
func (w *world) startReplica() {
	w.t.Helper()
	before := w.slack.TotalConnections()
	m := w.newMain(nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	w.extra = append(w.extra, m)
	w.stops = append(w.stops, func() {
		cancel()
		<-done
		_ = m.Close()
	})
	w.waitFor("second replica connected", func() bool { return w.slack.TotalConnections() > before })
}

// spawn runs tapbot as a separate process (this test binary in replica mode) that kills itself
// with SIGKILL at the named step; it returns a channel that closes when the process is gone.
func (w *world) spawn(crashAt string) <-chan struct{} {
	w.t.Helper()
	caPath := filepath.Join(w.t.TempDir(), "ca.pem")
	if err := os.WriteFile(caPath, w.graph.CACertPEM(), 0o600); err != nil {
		w.t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Dir = w.t.TempDir()
	cmd.Env = []string{"TAPBOT_TEST_RUN_MAIN=1", "TAPBOT_TEST_CRASH_AT=" + crashAt, "TAPBOT_TEST_CA=" + caPath,
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range w.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = w.logs, w.logs
	before := w.slack.TotalConnections()
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	gone := make(chan struct{})
	go func() { _ = cmd.Wait(); close(gone) }()
	w.t.Cleanup(func() { _ = cmd.Process.Kill(); <-gone })
	w.waitFor("the spawned replica connected", func() bool { return w.slack.TotalConnections() > before })
	return gone
}

// restart stops tapbot and starts a fresh process on the same store.
func (w *world) restart() {
	w.t.Helper()
	w.stop()
	w.start()
}

func (w *world) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	w.t.Cleanup(cancel)
	return ctx
}

// waitFor waits for cond with a deadline; no sleeps.
func (w *world) waitFor(what string, cond func() bool) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.slack.WaitFor(ctx, cond); err != nil {
		w.t.Fatalf("waiting for %s: %v\nlogs:\n%s", what, err, w.logs)
	}
}

// tap runs /tap as user in #general and returns the ack.
func (w *world) tap(user, text string) slackfake.Ack {
	w.t.Helper()
	ack, err := w.slack.SlashCommand(w.ctx(), user, general, "/tap", text)
	if err != nil {
		w.t.Fatalf("/tap %s: %v", text, err)
	}
	return ack
}

// approvalMessage waits for the n-th approval message (1-based) and returns it.
func (w *world) approvalMessage(n int) slackfake.Message {
	w.t.Helper()
	w.waitFor(fmt.Sprintf("approval message %d", n), func() bool { return len(w.slack.Messages(approvalChannel)) >= n })
	return w.slack.Messages(approvalChannel)[n-1]
}

func (w *world) message(ref slackfake.MessageRef) slackfake.Message {
	w.t.Helper()
	m, ok := w.slack.Message(ref)
	if !ok {
		w.t.Fatalf("no message %v", ref)
	}
	return m
}

// button returns the value of the button labelled label, failing when it is not shown.
func button(t *testing.T, m slackfake.Message, label string) slackfake.Button {
	t.Helper()
	for _, b := range m.Buttons() {
		if b.Text == label {
			return b
		}
	}
	t.Fatalf("message shows no %q button; buttons: %+v\ntext: %s", label, m.Buttons(), m.PlainText())
	return slackfake.Button{}
}

func (w *world) click(user string, m slackfake.Message, label string) {
	w.t.Helper()
	b := button(w.t, m, label)
	if _, err := w.slack.ClickButton(w.ctx(), user, m.Ref(), b.ActionID, b.Value); err != nil {
		w.t.Fatalf("%s clicks %s: %v", user, label, err)
	}
}

// ephemeralsContaining waits for an ephemeral message to user that contains text.
func (w *world) ephemeral(user, text string) slackfake.Ephemeral {
	w.t.Helper()
	var found slackfake.Ephemeral
	w.waitFor(fmt.Sprintf("an ephemeral to %s with %q", user, text), func() bool {
		for _, e := range w.slack.Ephemerals(user) {
			if strings.Contains(e.PlainText(), text) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// dm waits for a DM to user that contains text and returns it.
func (w *world) dm(user, text string) slackfake.Message {
	w.t.Helper()
	var found slackfake.Message
	w.waitFor(fmt.Sprintf("a DM to %s with %q", user, text), func() bool {
		for _, m := range w.slack.Messages(w.slack.DMChannel(user)) {
			if strings.Contains(m.PlainText(), text) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// view waits for a modal shown to user that contains text.
func (w *world) view(user, text string) slackfake.View {
	w.t.Helper()
	var found slackfake.View
	w.waitFor(fmt.Sprintf("a modal for %s with %q", user, text), func() bool {
		for _, v := range w.slack.Views(user) {
			if strings.Contains(v.PlainText(), text) {
				found = v
				return true
			}
		}
		return false
	})
	return found
}

// codes returns every pass Entra created for the user.
func (w *world) codes(entraID string) []string {
	var out []string
	for _, p := range w.graph.Passes(entraID) {
		out = append(out, p.Code)
	}
	return out
}

// assertNoPassLeaked checks every place a pass must never be: Slack history, logs, metrics and
// Redis.
func (w *world) assertNoPassLeaked() {
	w.t.Helper()
	var codes []string
	for _, id := range []string{adaEntraID, extEntraID} {
		codes = append(codes, w.codes(id)...)
	}
	if len(codes) == 0 {
		return
	}
	persisted := w.slack.AllPersistedText()
	logs := w.logs.String()
	redisDump := w.redisDump()
	for _, code := range codes {
		if strings.Contains(persisted, code) {
			w.t.Errorf("a pass is in Slack history")
		}
		if strings.Contains(logs, code) {
			w.t.Errorf("a pass is in tapbot's logs")
		}
		if strings.Contains(redisDump, code) {
			w.t.Errorf("a pass is in Redis in plaintext")
		}
		for _, e := range w.slack.Ephemerals(manager) {
			if strings.Contains(e.PlainText(), code) {
				w.t.Errorf("a pass was sent to the requester in an ephemeral message")
			}
		}
	}
}

// redisDump is every key and string value in Redis, while it runs.
func (w *world) redisDump() string {
	if w.redis == nil {
		return ""
	}
	rdb := w.redisAdmin()
	defer rdb.Close()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		w.t.Errorf("read Redis to look for plaintext passes: %v", err)
		return ""
	}
	var b strings.Builder
	for _, k := range keys {
		var v any
		var err error
		switch typ, _ := rdb.Type(ctx, k).Result(); typ {
		case "set":
			v, err = rdb.SMembers(ctx, k).Result()
		case "stream":
			v, err = rdb.XRange(ctx, k, "-", "+").Result()
		case "zset":
			v, err = rdb.ZRange(ctx, k, 0, -1).Result()
		case "hash":
			v, err = rdb.HGetAll(ctx, k).Result()
		default:
			v, err = rdb.Get(ctx, k).Result()
		}
		if err != nil && err != redis.Nil {
			w.t.Errorf("read Redis key %s: %v", k, err)
		}
		fmt.Fprintf(&b, "%s=%v\n", k, v)
	}
	return b.String()
}

// redisAdmin is a client that reaches the world's Redis directly, never through the proxy.
func (w *world) redisAdmin() *redis.Client {
	if w.redis.Socket() == "" {
		return redis.NewClient(&redis.Options{Addr: w.redis.Addr()})
	}
	return redis.NewClient(&redis.Options{Network: "unix", Addr: w.redis.Socket()})
}

func (w *world) get(path string) (int, string) {
	w.t.Helper()
	resp, err := http.Get("http://" + w.httpAddr + path)
	if err != nil {
		w.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func ackText(a slackfake.Ack) string {
	var p struct {
		Text string `json:"text"`
	}
	_ = json.Unmarshal(a.Payload, &p)
	return p.Text
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// modalsShowing counts the modals tapbot showed user (opened or updated) that contain text.
func (w *world) modalsShowing(user, text string) int {
	n := 0
	for _, v := range w.slack.Views(user) {
		if (v.Event == "open" || v.Event == "update") && strings.Contains(v.PlainText(), text) {
			n++
		}
	}
	return n
}

// revealOutcomes reads tapbot_reveals_total from /metrics, by outcome.
func (w *world) revealOutcomes() map[string]int {
	w.t.Helper()
	_, body := w.get("/metrics")
	out := map[string]int{}
	for _, line := range strings.Split(body, "\n") {
		var outcome string
		var n int
		if _, err := fmt.Sscanf(line, "tapbot_reveals_total{outcome=%q} %d", &outcome, &n); err == nil {
			out[outcome] = n
		}
	}
	return out
}

// labels lists the labels of a message's buttons, comma-separated.
func labels(m slackfake.Message) string {
	var out []string
	for _, b := range m.Buttons() {
		out = append(out, b.Text)
	}
	return strings.Join(out, ",")
}
