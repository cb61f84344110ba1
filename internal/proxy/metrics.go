package proxy

import (
	"sync"
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

	// children keeps the collectors observe updates for each target, decision and code: looking them up in the
	// vectors (label hashing and checks, four lookups) cost more than the rest of a request's accounting. The
	// vectors are never reset, so their children stay the ones exported.
	mu       sync.RWMutex
	children map[requestLabels]*requestMetrics
}

type requestLabels struct{ target, decision, code string }

type requestMetrics struct {
	requests prometheus.Counter
	duration prometheus.Observer
	in, out  prometheus.Counter
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
	c := m.childrenFor(requestLabels{target, decision, code})
	c.requests.Inc()
	c.duration.Observe(d.Seconds())
	c.in.Add(float64(in))
	c.out.Add(float64(out))
}

func (m *Metrics) childrenFor(l requestLabels) *requestMetrics {
	m.mu.RLock()
	c := m.children[l]
	m.mu.RUnlock()
	if c != nil {
		return c
	}
	c = &requestMetrics{requests: m.Requests.WithLabelValues(l.target, l.decision, l.code),
		duration: m.Duration.WithLabelValues(l.target), in: m.Bytes.WithLabelValues(l.target, "in"),
		out: m.Bytes.WithLabelValues(l.target, "out")}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.children == nil {
		m.children = map[requestLabels]*requestMetrics{}
	}
	if old := m.children[l]; old != nil {
		return old
	}
	m.children[l] = c
	return c
}
