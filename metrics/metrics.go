package bot

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the bot's Prometheus series. They count outcomes and time; they never carry a pass,
// a name or a reason.
type Metrics struct {
	Requests      *prometheus.CounterVec
	Reveals       *prometheus.CounterVec
	AckDuration   prometheus.Histogram
	IssueDuration prometheus.Histogram
}

// NewMetrics creates the series and registers them with reg when it is not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapbot_requests_total", Help: "Requests by outcome: submitted, rejected, cancelled, issued, denied, expired, failed.",
		}, []string{"outcome"}),
		Reveals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapbot_reveals_total", Help: "Reveal clicks by outcome: revealed, already_revealed, in_progress, returned, refused, error.",
		}, []string{"outcome"}),
		AckDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tapbot_ack_duration_seconds", Help: "Time to send a socket-mode ack.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		IssueDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tapbot_issue_duration_seconds", Help: "Time from an Approve click to the recipient's DM.",
			Buckets: prometheus.DefBuckets,
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Requests, m.Reveals, m.AckDuration, m.IssueDuration)
	}
	return m
}
