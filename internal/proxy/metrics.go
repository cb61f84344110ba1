package proxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the proxy's Prometheus collectors. Create them with
// NewMetrics; a nil *Metrics on Server records nothing.
type Metrics struct {
	// Requests counts requests by target, decision and status code.
	Requests *prometheus.CounterVec
	// Duration observes request latency in seconds by target.
	Duration *prometheus.HistogramVec
	// UpstreamErrors counts failures to reach targets by kind (refused, tls,
	// timeout, reset, dns, config, client_gone, session_terminated, other).
	UpstreamErrors *prometheus.CounterVec
	// Bytes counts body and upgraded-stream bytes by target and direction
	// ("in" from clients, "out" to clients).
	Bytes *prometheus.CounterVec
	// LimitHits counts every time a resource limit refused or cut off something, by limit (see the limit*
	// constants and the README's security model).
	LimitHits *prometheus.CounterVec
}

// Names of the limits counted in LimitHits, besides "proxy_" + the limits.Limit* names of the connection caps
// and those the server adds for the API listener and the CA.
const (
	limitAccept        = "accept_error"
	limitChunkedBudget = "chunked_buffer_budget"
	limitHeadBudget    = "head_buffer_budget"
	limitBodyTimeout   = "body_read_timeout"
	limitHandshake     = "tls_handshake_timeout"
	limitH2Resets      = "h2_rapid_reset"
	limitNoTarget      = "connect_no_target"
)

// LimitHit counts one hit of the named limit.
func (m *Metrics) LimitHit(name string) {
	if m != nil && m.LimitHits != nil {
		m.LimitHits.WithLabelValues(name).Inc()
	}
}

// NewMetrics creates the collectors and registers them with reg unless reg
// is nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "proxy", Name: "requests_total",
			Help: "Proxy requests by target, decision and status code.",
		}, []string{"target", "decision", "code"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "gatehouse", Subsystem: "proxy", Name: "request_duration_seconds",
			Help:    "Proxy request latency by target.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}, []string{"target"}),
		UpstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "proxy", Name: "upstream_errors_total",
			Help: "Failures to complete requests to targets, by kind.",
		}, []string{"kind"}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "proxy", Name: "bytes_total",
			Help: "Bytes proxied by target and direction.",
		}, []string{"target", "direction"}),
		LimitHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "proxy", Name: "limit_hits_total",
			Help: "Connections, bodies, handshakes and streams refused or cut off by a resource limit, by limit.",
		}, []string{"limit"}),
	}
	if reg != nil {
		reg.MustRegister(m.Requests, m.Duration, m.UpstreamErrors, m.Bytes, m.LimitHits)
	}
	return m
}

func (m *Metrics) observe(target, decision, code string, d time.Duration, in, out int64) {
	if target == "" {
		target = "none"
	}
	m.Requests.WithLabelValues(target, decision, code).Inc()
	m.Duration.WithLabelValues(target).Observe(d.Seconds())
	m.Bytes.WithLabelValues(target, "in").Add(float64(in))
	m.Bytes.WithLabelValues(target, "out").Add(float64(out))
}
