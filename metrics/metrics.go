// Package metrics holds tapbot's Prometheus series in one place, so every adapter reports into
// the same registry and the names stay consistent.
package metrics

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapbot/tapbot/approvals"
)

// Metrics are the bot's Prometheus series. They count outcomes and time; they never carry a pass,
// a name or a reason.
type Metrics struct {
	Requests         *prometheus.CounterVec
	Reveals          *prometheus.CounterVec
	AckDuration      prometheus.Histogram
	IssueDuration    prometheus.Histogram
	GraphRequests    *prometheus.CounterVec
	StoreErrors      prometheus.Counter
	SocketReconnects prometheus.Counter
	// SlackRequests and SlackWait show Slack's rate limits at work: every Web API attempt by
	// method and outcome (ratelimited is a 429), and how long calls waited for their turn.
	SlackRequests *prometheus.CounterVec
	SlackWait     *prometheus.HistogramVec
	// BuildInfo is always 1, labelled with the version and revision of the running binary, so a
	// dashboard shows what each replica runs.
	BuildInfo *prometheus.GaugeVec
}

// New creates the series and registers them with reg when it is not nil.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapbot_requests_total", Help: "Requests by outcome: submitted, rejected, cancelled, issued, denied, expired, failed.",
		}, []string{"outcome"}),
		Reveals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapbot_reveals_total", Help: "Reveal clicks by outcome: revealed, already_revealed, in_progress, returned, refused, throttled (Slack held the window past the click's trigger; the pass stays sealed), in_doubt (shown after another replica took the reveal over; the pass was deleted), error.",
		}, []string{"outcome"}),
		AckDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tapbot_ack_duration_seconds", Help: "Time to send a socket-mode ack.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		IssueDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tapbot_issue_duration_seconds", Help: "Time from an Approve click to the recipient's DM.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		GraphRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapbot_graph_requests_total", Help: "Microsoft Graph HTTP attempts by operation and status (0: no answer).",
		}, []string{"operation", "status"}),
		StoreErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tapbot_store_errors_total", Help: "Store operations that failed (Redis unreachable, timeouts).",
		}),
		SocketReconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tapbot_socket_reconnects_total", Help: "Socket-mode connections made after the first.",
		}),
		SlackRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapbot_slack_requests_total",
			Help: "Slack Web API attempts by method and outcome: ok, error (Slack said ok:false), ratelimited (429, sent again after Retry-After), failed (no answer), gave_up (not sent: its caller could not wait that long).",
		}, []string{"method", "outcome"}),
		SlackWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tapbot_slack_wait_seconds", Help: "Time a Slack Web API call waited for Slack's rate limits before it was sent, by priority (interactive, normal, bulk).",
			Buckets: []float64{.001, .01, .1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900},
		}, []string{"priority"}),
		BuildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tapbot_build_info", Help: "Always 1; the labels are the version and revision (commit) of the running tapbot.",
		}, []string{"version", "revision"}),
	}
	if reg != nil {
		reg.MustRegister(m.Requests, m.Reveals, m.AckDuration, m.IssueDuration, m.GraphRequests, m.StoreErrors, m.SocketReconnects,
			m.SlackRequests, m.SlackWait, m.BuildInfo)
	}
	return m
}

// SetBuild records the running binary's version and revision in tapbot_build_info.
func (m *Metrics) SetBuild(version, revision string) {
	m.BuildInfo.Reset()
	m.BuildInfo.WithLabelValues(version, revision).Set(1)
}

// ObserveGraph counts one Graph HTTP attempt; it fits graph.Options.Observe.
func (m *Metrics) ObserveGraph(operation string, status int) {
	m.GraphRequests.WithLabelValues(operation, strconv.Itoa(status)).Inc()
}

// ObserveSlack counts one Slack Web API attempt; it fits slackrate.Options.Observe.
func (m *Metrics) ObserveSlack(method, outcome string) {
	m.SlackRequests.WithLabelValues(method, outcome).Inc()
}

// ObserveSlackWait records a call's wait for Slack's limits; it fits slackrate.Options.ObserveWait.
func (m *Metrics) ObserveSlackWait(priority string, waited time.Duration) {
	m.SlackWait.WithLabelValues(priority).Observe(waited.Seconds())
}

// WatchSlackQueue exports, as tapbot_slack_calls_waiting{method}, how many Slack calls wait for
// Slack's limits now; waiting is slackrate.Client.WaitingByMethod.
func (m *Metrics) WatchSlackQueue(reg prometheus.Registerer, waiting func() map[string]int) {
	if reg != nil {
		reg.MustRegister(slackQueue{waiting})
	}
}

var slackQueueDesc = prometheus.NewDesc("tapbot_slack_calls_waiting",
	"Slack Web API calls waiting for Slack's rate limits on this replica, by method.", []string{"method"}, nil)

type slackQueue struct{ waiting func() map[string]int }

func (q slackQueue) Describe(ch chan<- *prometheus.Desc) { ch <- slackQueueDesc }
func (q slackQueue) Collect(ch chan<- prometheus.Metric) {
	for method, n := range q.waiting() {
		ch <- prometheus.MustNewConstMetric(slackQueueDesc, prometheus.GaugeValue, float64(n), method)
	}
}

// CountErrors wraps a store so its failures are counted. Not-found and conflict answers are
// normal outcomes, not failures.
func (m *Metrics) CountErrors(s approvals.Store) approvals.Store {
	return countingStore{s, m.StoreErrors}
}

// countingStore lists every Store method rather than embedding the interface, so a method added
// to Store cannot bypass the count: the build fails until it is added here.
type countingStore struct {
	s    approvals.Store
	errs prometheus.Counter
}

func (c countingStore) count(err error) error {
	if err != nil && !errors.Is(err, approvals.ErrNotFound) && !errors.Is(err, approvals.ErrConflict) &&
		!errors.Is(err, context.Canceled) {
		var e *approvals.Error
		if !errors.As(err, &e) { // a change function's own refusal is not a store failure
			c.errs.Inc()
		}
	}
	return err
}

func (c countingStore) Create(ctx context.Context, r *approvals.Request) error {
	return c.count(c.s.Create(ctx, r))
}
func (c countingStore) Get(ctx context.Context, id string) (*approvals.Request, error) {
	r, err := c.s.Get(ctx, id)
	return r, c.count(err)
}
func (c countingStore) Update(ctx context.Context, id string, change func(*approvals.Request) error) (*approvals.Request, error) {
	r, err := c.s.Update(ctx, id, change)
	return r, c.count(err)
}
func (c countingStore) RecentByRequester(ctx context.Context, requester string, limit int) ([]*approvals.Request, error) {
	rs, err := c.s.RecentByRequester(ctx, requester, limit)
	return rs, c.count(err)
}
func (c countingStore) PutSecret(ctx context.Context, id string, sealed []byte, ttl time.Duration) error {
	return c.count(c.s.PutSecret(ctx, id, sealed, ttl))
}
func (c countingStore) TakeSecret(ctx context.Context, id, owner, token string, hold time.Duration) ([]byte, error) {
	b, err := c.s.TakeSecret(ctx, id, owner, token, hold)
	if errors.Is(err, approvals.ErrClaimedElsewhere) || errors.Is(err, approvals.ErrStaleReveal) {
		return b, err // an answer about the pass, not a failure of the store
	}
	return b, c.count(err)
}
func (c countingStore) ReturnSecret(ctx context.Context, id, owner, token string, sealed []byte, ttl time.Duration) error {
	err := c.s.ReturnSecret(ctx, id, owner, token, sealed, ttl)
	if errors.Is(err, approvals.ErrStaleReveal) {
		return err // an answer about the request, not a failure of the store
	}
	return c.count(err)
}
func (c countingStore) HasSealedCopy(ctx context.Context, id string) (bool, error) {
	ok, err := c.s.HasSealedCopy(ctx, id)
	return ok, c.count(err)
}
func (c countingStore) HasSecret(ctx context.Context, id string) (bool, error) {
	ok, err := c.s.HasSecret(ctx, id)
	return ok, c.count(err)
}
func (c countingStore) DeleteSecret(ctx context.Context, id string) error {
	return c.count(c.s.DeleteSecret(ctx, id))
}
func (c countingStore) OpenRequests(ctx context.Context) ([]string, error) {
	ids, err := c.s.OpenRequests(ctx)
	return ids, c.count(err)
}
func (c countingStore) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ok, err := c.s.Claim(ctx, key, ttl)
	return ok, c.count(err)
}
func (c countingStore) Touch(ctx context.Context, key string, ttl time.Duration) error {
	return c.count(c.s.Touch(ctx, key, ttl))
}
func (c countingStore) Alive(ctx context.Context, key string) (bool, error) {
	ok, err := c.s.Alive(ctx, key)
	return ok, c.count(err)
}
func (c countingStore) Release(ctx context.Context, key string) error {
	return c.count(c.s.Release(ctx, key))
}
func (c countingStore) Hit(ctx context.Context, key string, window time.Duration) (int, time.Time, error) {
	n, end, err := c.s.Hit(ctx, key, window)
	return n, end, c.count(err)
}
func (c countingStore) AppendAudit(ctx context.Context, e approvals.Event, retention time.Duration) error {
	return c.count(c.s.AppendAudit(ctx, e, retention))
}
func (c countingStore) ReadAudit(ctx context.Context, since time.Time) ([]approvals.Event, error) {
	es, err := c.s.ReadAudit(ctx, since)
	return es, c.count(err)
}
func (c countingStore) Ping(ctx context.Context) error { return c.count(c.s.Ping(ctx)) }
func (c countingStore) AddWatch(ctx context.Context, id string) error {
	return c.count(c.s.AddWatch(ctx, id))
}
func (c countingStore) RemoveWatch(ctx context.Context, id string) error {
	return c.count(c.s.RemoveWatch(ctx, id))
}
func (c countingStore) Watched(ctx context.Context) ([]string, error) {
	ids, err := c.s.Watched(ctx)
	return ids, c.count(err)
}
func (c countingStore) CompareAndSwap(ctx context.Context, key, old, next string, ttl time.Duration) (bool, error) {
	ok, err := c.s.CompareAndSwap(ctx, key, old, next, ttl)
	return ok, c.count(err)
}
func (c countingStore) Value(ctx context.Context, key string) (string, error) {
	v, err := c.s.Value(ctx, key)
	return v, c.count(err)
}
func (c countingStore) Recall(ctx context.Context, key string) (string, error) {
	v, err := c.s.Recall(ctx, key)
	return v, c.count(err)
}
func (c countingStore) Remember(ctx context.Context, key, value string, ttl time.Duration) error {
	return c.count(c.s.Remember(ctx, key, value, ttl))
}
func (c countingStore) Close() error { return c.s.Close() }
