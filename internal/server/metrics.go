package server

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// apiMetrics are the management API's collectors: what an operator alerts on besides the proxy's own.
type apiMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	logins   *prometheus.CounterVec
}

func newAPIMetrics(reg prometheus.Registerer) *apiMetrics {
	m := &apiMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "api", Name: "requests_total",
			Help: "Management API requests by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "gatehouse", Subsystem: "api", Name: "request_duration_seconds",
			Help: "Management API latency by route pattern.", Buckets: prometheus.ExponentialBuckets(0.002, 3, 9),
		}, []string{"route"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "api", Name: "logins_total",
			Help: "Logins by API (service: the token endpoint, config: /api/authentication) and outcome (success, failure, rate_limited).",
		}, []string{"api", "outcome"}),
	}
	reg.MustRegister(m.requests, m.duration, m.logins)
	return m
}

// observe counts one answered request. route is the matched pattern, so the label set stays as small as the
// route table ("unmatched" for the rest).
func (m *apiMetrics) observe(r *http.Request, route string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
	if api := loginAPI(r, route); api != "" {
		outcome := "failure"
		switch {
		case status < 300:
			outcome = "success"
		case status == http.StatusTooManyRequests:
			outcome = "rate_limited"
		}
		m.logins.WithLabelValues(api, outcome).Inc()
	}
}

// loginAPI names the dialect when the request is a login: a token request of the service API (refresh grants
// included, they renew a login), or a configuration API login (not its logout or its type list).
func loginAPI(r *http.Request, route string) string {
	switch {
	case strings.HasSuffix(route, "/auth/api/v1/oauth/token"):
		return "service"
	case route == "/api/authentication" && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		return "config"
	}
	return ""
}

// statusWriter records the status a handler answered with. It passes Flush and Unwrap through so streaming
// answers (trail/stream) keep working.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// registerDataPlaneMetrics adds the session, recording and policy collectors.
func (s *Server) registerDataPlaneMetrics(dp *dataPlane) {
	closed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "sessions", Name: "closed_total",
		Help: "API sessions closed, by target and final status (TERMINATED counts terminations by an admin).",
	}, []string{"target", "status"})
	recFailures := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "recording", Name: "failures_total",
		Help: "Failed trail writes or trail creations; audited targets are closed while recording fails.",
	})
	open := prometheus.NewDesc("gatehouse_sessions_open", "Open API sessions by target.", []string{"target"}, nil)
	dp.registry.MustRegister(closed, recFailures,
		collectorFunc{desc: open, collect: func(ch chan<- prometheus.Metric) {
			for target, n := range dp.sessions.OpenByTarget() {
				ch <- prometheus.MustNewConstMetric(open, prometheus.GaugeValue, float64(n), target)
			}
		}},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "gatehouse", Subsystem: "policy", Name: "snapshot_age_seconds",
			Help: "Seconds since the policy snapshot in force was built; it is rebuilt on every change and every reauthorization_interval, so a growing age means reloads fail.",
		}, func() float64 { return time.Since(dp.gate.Built()).Seconds() }),
	)
	registerPoolMetrics(dp.registry, s.store)
	dp.sessions.OnClose = func(target, status string) { closed.WithLabelValues(target, status).Inc() }
	dp.sessions.OnRecordingFailure = recFailures.Inc
}

// collectorFunc is a collector of one metric family computed at scrape time.
type collectorFunc struct {
	desc    *prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
