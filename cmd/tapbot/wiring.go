package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/tapbot/tapbot/approvals"
	"github.com/tapbot/tapbot/bot"
	"github.com/tapbot/tapbot/config"
	"github.com/tapbot/tapbot/graph"
	"github.com/tapbot/tapbot/metrics"
	"github.com/tapbot/tapbot/redisstore"
	"github.com/tapbot/tapbot/slackrate"
)

// startupTimeout bounds each check made before serving: a dependency that does not answer in
// this time makes tapbot exit with a message rather than hang.
const startupTimeout = 30 * time.Second

// Options are the seams end-to-end tests use; production leaves them zero.
type Options struct {
	// Transport carries every outbound HTTPS call (Slack Web API, Entra, Graph); nil is the
	// default transport. Tests pass one that trusts their fakes' certificate.
	Transport http.RoundTripper
	Logger    *slog.Logger
	// Listening, when set, receives the address the health server listens on.
	Listening func(addr string)
	// Now replaces the wall clock of the approval rules (request TTL, pass expiry), so tests can
	// let a day pass.
	Now func() time.Time
	// SweepEvery and HeartbeatTTL shorten the sweeper's rhythm in tests; zero keeps the defaults.
	SweepEvery   time.Duration
	HeartbeatTTL time.Duration
	// Checkpoint, when set, is called at each step of issuing and revealing, so tests can kill
	// the process exactly there.
	Checkpoint func(step string)
	// SlackSpeed runs tapbot's pacing of Slack calls that many times faster, to match a Slack
	// fake that runs Slack's limits in compressed time; 0 or 1 is Slack's real pace.
	SlackSpeed float64
}

// Main is the whole bot, built from a Config, so tests can run it in-process.
type Main struct {
	cfg   config.Config
	opts  Options
	log   *slog.Logger
	store approvals.Store

	closeOnce sync.Once
}

// NewMain returns a Main; Run starts it.
func NewMain(cfg config.Config, opts Options) *Main {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	return &Main{cfg: cfg, opts: opts, log: log}
}

// Run connects to everything, checks it answers, and serves until ctx ends.
func (m *Main) Run(ctx context.Context) error {
	cfg := m.cfg
	httpClient := &http.Client{Transport: m.opts.Transport, Timeout: 30 * time.Second}
	if httpClient.Transport == nil {
		httpClient.Transport = http.DefaultTransport
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mets := metrics.New(reg)
	build := readBuildInfo()
	mets.SetBuild(build.Version, build.Revision)

	store, sealer, err := m.openStore(ctx)
	if err != nil {
		return err
	}
	m.store = store
	store = mets.CountErrors(store)

	cred, err := graph.NewCredential(m.opts.Transport)
	if err != nil {
		return fmt.Errorf("AZURE_*: %w", err)
	}
	dir, err := graph.New(cred, graph.Options{
		BaseURL: cfg.GraphBaseURL, Transport: m.opts.Transport,
		Concurrency: cfg.GraphConcurrency, AttemptTimeout: cfg.GraphTimeout, Observe: mets.ObserveGraph,
	})
	if err != nil {
		return fmt.Errorf("GRAPH_BASE_URL: %w", err)
	}
	if err := dir.CheckSignIn(ctx); err != nil {
		return signInFailure(err)
	}

	// Every Web API call goes through one pacer, whose buckets the replicas share through Redis
	// (or keep in-process with the embedded store): Slack's limits are per app, not per process.
	var shared slackrate.Shared = slackrate.NewLocal()
	if s, ok := m.store.(slackrate.Shared); ok {
		shared = s
	}
	limits := slackrate.Published().Scaled(m.opts.SlackSpeed)
	limits.Off = !cfg.SlackPacing
	pacer := slackrate.New(slackrate.Options{HTTP: httpClient, Shared: shared, Limits: &limits, Logger: m.log,
		Observe: mets.ObserveSlack, ObserveWait: mets.ObserveSlackWait})
	mets.WatchSlackQueue(reg, pacer.WaitingByMethod)
	api := slack.New(cfg.SlackBotToken, slack.OptionAppLevelToken(cfg.SlackAppToken),
		slack.OptionAPIURL(cfg.SlackAPIURL), slack.OptionHTTPClient(pacer))
	authCtx, cancel := context.WithTimeout(ctx, startupTimeout)
	auth, err := api.AuthTestContext(authCtx)
	cancel()
	if err != nil {
		return fmt.Errorf("SLACK_BOT_TOKEN: Slack did not accept the bot token at %s: %w", cfg.SlackAPIURL, err)
	}
	m.log.Info("Slack bot token accepted", "team", auth.Team, "bot_user", auth.UserID)
	// The app-level token is checked by the socket's first connection (Run below), not by an
	// extra apps.connections.open: that method allows about one call a minute, and a rolling
	// restart of three replicas must not spend two each.

	profiles := bot.NewProfiles(api)
	memo, _ := m.store.(bot.Memo)
	instance := approvals.NewID()
	log := m.log.With("replica", instance)
	svcOpts := []approvals.Option{approvals.WithLogger(log)}
	if m.opts.Now != nil {
		svcOpts = append(svcOpts, approvals.WithClock(m.opts.Now))
	}
	if m.opts.Checkpoint != nil {
		svcOpts = append(svcOpts, approvals.WithCheckpoints(m.opts.Checkpoint))
	}
	// The tenant watcher reads Entra ID's audit log through the same Graph client, and knows
	// tapbot's own passes by the app ID its token names (a system-assigned managed identity has
	// no AZURE_CLIENT_ID) as well as by their pass IDs.
	svcOpts = append(svcOpts, approvals.WithAuditLog(dir))
	ownApps := ownAppIDs(cfg)
	if id, err := dir.AppID(ctx); err != nil {
		log.Warn("tenant watch: could not read tapbot's app ID from its token; its passes are known by their IDs alone", "err", err)
	} else {
		ownApps = appendApp(ownApps, id)
	}
	svcOpts = append(svcOpts, approvals.WithHires(dir))
	var b *bot.Bot // the audit sink posts through the bot, which needs the service first
	svcOpts = append(svcOpts, approvals.WithAuditSink(func(ctx context.Context, e approvals.Event, r *approvals.Request) {
		b.OnAudit(ctx, e, r)
	}))
	svc := approvals.NewService(approvals.Config{
		Approvers: cfg.Approvers, Requesters: cfg.Requesters,
		DefaultLifetime: cfg.DefaultLifetime, MaxLifetime: cfg.MaxLifetime, RequestTTL: cfg.RequestTTL,
		Instance: instance, GroupCacheTTL: cfg.GroupCacheTTL,
		AllowSelfRequest: cfg.AllowSelfRequest, RouteToManager: cfg.RouteToManager,
		ProtectedGroups: cfg.ProtectedGroups, ProtectedApprovers: cfg.ProtectedApprovers,
		RatePerRequester: cfg.RatePerRequester, AuditRetention: cfg.AuditRetention,
		RemindAfter: cfg.RemindAfter, WatchInterval: cfg.WatchInterval, RevokeAfterRegistration: cfg.RevokeAfterRegistration,
		TenantWatchInterval: cfg.TenantWatchInterval, AuditLogRetention: cfg.AuditLogRetention, OwnAppIDs: ownApps,
		Onboarding: cfg.Onboarding, OnboardingNotice: cfg.OnboardingNotice, OnboardingStart: cfg.OnboardingStart,
		// From an Approve click, Graph gets one and a half attempts in all (45 s with the default
		// TAP_GRAPH_TIMEOUT of 30 s): the create, its retries and Retry-After waits, and the check
		// after a create that timed out. The approver then hears within a minute of the click.
		IssueTimeout: cfg.GraphTimeout * 3 / 2,
		// A replica may take more than that, plus Slack's part, before another replica takes its
		// approval over.
		IssueLease: 2*cfg.GraphTimeout + 30*time.Second,
	}, store, dir, bot.People{API: api, Profiles: profiles}, sealer, svcOpts...)

	b = bot.New(bot.Config{
		API: api, Socket: socketmode.New(api), Service: svc, ApprovalChannel: cfg.ApprovalChannel,
		Logger: log, HTTPClient: httpClient, Metrics: mets,
		ShutdownTimeout: cfg.ShutdownTimeout, SweepEvery: m.opts.SweepEvery, HeartbeatTTL: m.opts.HeartbeatTTL,
		AuditChannel: cfg.AuditChannel, Pacer: pacer, Memo: memo, Profiles: profiles,
	})

	srv, err := m.serveHTTP(b, reg)
	if err != nil {
		return err
	}
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()

	m.log.Info("tapbot started", "version", build.Version, "revision", build.Revision, "build_date", build.Date,
		"approval_channel", cfg.ApprovalChannel, "store", storeKind(cfg), "graph", cfg.GraphBaseURL)
	err = b.Run(ctx)
	m.log.Info("tapbot stopped")
	if errors.Is(err, bot.ErrAppTokenRefused) {
		return fmt.Errorf("SLACK_APP_TOKEN: Slack did not open a socket-mode connection with the app-level token: %w", err)
	}
	return err
}

// signInFailure is the start-up line of a failed Graph sign-in: the variable to fix (none when
// Entra ID could not be reached), what went wrong and what to do.
func signInFailure(err error) error {
	var se *graph.SignInError
	switch {
	case !errors.As(err, &se):
		return fmt.Errorf("AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET: %w", err)
	case se.Var == "":
		return fmt.Errorf("%w; %s", se, se.Fix)
	default:
		return fmt.Errorf("%s: %w; %s", se.Var, se, se.Fix)
	}
}

// ownAppIDs is the app tapbot acts as in Entra ID, whose passes in the audit log are its own.
func ownAppIDs(cfg config.Config) []string {
	if cfg.OwnAppID == "" {
		return nil
	}
	return []string{cfg.OwnAppID}
}

// appendApp adds an app ID once.
func appendApp(ids []string, id string) []string {
	for _, have := range ids {
		if strings.EqualFold(have, id) {
			return ids
		}
	}
	return append(ids, id)
}

func storeKind(cfg config.Config) string {
	if cfg.RedisURL == "" {
		return "embedded"
	}
	return "redis"
}

func (m *Main) openStore(ctx context.Context) (approvals.Store, *approvals.Sealer, error) {
	if m.cfg.RedisURL == "" {
		m.log.Warn("REDIS_URL is not set: using the embedded store. Requests and unrevealed passes are lost when tapbot stops, and only one replica may run.")
		return approvals.NewMemoryStore(nil), approvals.NewRandomSealer(), nil
	}
	sealer, err := approvals.NewSealer(m.cfg.EncryptionKeys...)
	if err != nil {
		return nil, nil, fmt.Errorf("TAP_ENCRYPTION_KEY: %w", err)
	}
	redisstore.LogTo(m.log)
	openCtx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	store, err := redisstore.Open(openCtx, m.cfg.RedisURL, redisstore.WithReplicas(m.cfg.RedisReplicas))
	if err != nil {
		return nil, nil, fmt.Errorf("REDIS_URL: cannot reach Redis: %w", err)
	}
	return store, sealer, nil
}

// serveHTTP starts /healthz, /readyz and /metrics. Ready means the socket is connected and the
// store answers.
func (m *Main) serveHTTP(b *bot.Bot, reg *prometheus.Registry) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if !b.Healthy() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "Slack socket mode has been disconnected for over a minute")
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		var problems []string
		if !b.Connected() {
			problems = append(problems, "Slack socket mode is not connected")
		}
		if err := m.store.Ping(ctx); err != nil {
			problems = append(problems, "store unreachable")
		}
		if len(problems) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, strings.Join(problems, "; "))
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", m.cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("TAP_HTTP_ADDR: cannot listen on %s: %w", m.cfg.HTTPAddr, err)
	}
	if m.opts.Listening != nil {
		m.opts.Listening(ln.Addr().String())
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("health server stopped", "err", err)
		}
	}()
	return srv, nil
}

// Close releases the store. It is safe to call more than once.
func (m *Main) Close() error {
	var err error
	m.closeOnce.Do(func() {
		if m.store != nil {
			err = m.store.Close()
		}
	})
	return err
}
