package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/cluster"
	"github.com/gatehouse-dev/gatehouse/internal/gate"
	"github.com/gatehouse-dev/gatehouse/internal/limits"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/proxy"
	"github.com/gatehouse-dev/gatehouse/internal/recording"
	"github.com/gatehouse-dev/gatehouse/internal/retention"
	"github.com/gatehouse-dev/gatehouse/internal/sessions"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// dataPlane is the proxy and what it decides and records with.
type dataPlane struct {
	gate      *gate.Gate
	sessions  *sessions.Manager
	trails    *recording.Store
	proxy     *proxy.Server
	ln        net.Listener
	settings  atomic.Pointer[model.Settings]
	registry  *prometheus.Registry
	metrics   *http.Server
	metLn     net.Listener
	denials   *denialAuditor
	index     searchIndex
	retention *retention.Job
	sweep     *retention.Sweep // this node's local trail files of sessions retention deleted
}

// newDataPlane builds the proxy over the store and binds its listener.
func (s *Server) newDataPlane(ctx context.Context, log *slog.Logger) (*dataPlane, error) {
	dp := &dataPlane{registry: prometheus.NewRegistry()}
	dp.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := dp.loadSettings(ctx, s); err != nil {
		return nil, err
	}
	var err error
	if dp.trails, err = recording.Open(filepath.Join(s.cfg.DataDir, "recordings"), s.keys.SigningKey("trail-chain"), log); err != nil {
		return nil, &StartError{Flag: "data-dir", Value: s.cfg.DataDir, Err: err}
	}
	dp.trails.Archive = s.archivedTrail
	trails := dp.trails
	s.closers = append(s.closers, func(context.Context) error { return trails.Close() })
	dp.trails.BodyLimit = dp.settings.Load().RecordingBodyLimit
	if dp.trails.BodyLimit == 0 {
		dp.trails.BodyLimit = -1 // a limit of 0 in the settings means "record no bodies"
	}
	dp.sessions = sessions.New(s.store, dp.trails, log)
	dp.sessions.Settings = func() model.Settings { return *dp.settings.Load() }
	dp.sessions.NodeID, dp.sessions.Notify = s.node.ID, s.node.Publish
	if err := dp.sessions.Start(ctx); err != nil {
		return nil, err
	}
	if dp.gate, err = gate.New(ctx, s.store, log); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	dp.gate.OnReload = dp.sessions.Recheck
	if s.shared != nil {
		dp.gate.Shared = s.shared
	}
	dp.proxy = &proxy.Server{
		Authorizer:           dp.gate,
		Sessions:             dp.sessions,
		Recorder:             dp.sessions,
		Certs:                s.ca,
		Logger:               log.With("component", "proxy"),
		Metrics:              proxy.NewMetrics(dp.registry),
		NormalizePath:        policy.NormalizePath,
		BodyLimit:            max(dp.settings.Load().RecordingBodyLimit, 1),
		TrustedProxyProtocol: s.cfg.TrustedPrefixes(),
		ProxyTLS:             dp.gate.ProxyTLS, // connection policies with web_proxy TLS (HTTPS proxy)
		MaxConns:             s.cfg.ProxyMaxConns,
		MaxConnsPerClient:    s.cfg.ProxyMaxConnsPerClient,
		MaxUnauthenticated:   s.cfg.ProxyMaxUnauthenticated,
		ChunkedBufferBudget:  s.cfg.ChunkedBufferBudget,
		BodyReadTimeout:      s.cfg.BodyReadTimeout,
		TLSHandshakeTimeout:  s.cfg.TLSHandshakeTimeout,
	}
	if rate := s.cfg.LeafMintsPerSecond; rate > 0 {
		s.ca.MintLimit = &limits.Bucket{Rate: rate, Burst: 2 * rate}
	}
	s.ca.OnMintLimited = func() { dp.proxy.Metrics.LimitHit("leaf_mint_rate") }
	dp.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "ca", Name: "leaves_minted_total", Help: "Leaf certificates minted for intercepted hosts (cache hits excluded).",
	}, func() float64 { return float64(s.ca.Minted()) }))
	dp.denials = newDenialAuditor(s.store, log)
	dp.proxy.Denied = dp.denials.enqueue
	dp.sessions.Audit = dp.denials.enqueueEvent
	s.registerDataPlaneMetrics(dp)
	dp.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "gatehouse", Subsystem: "proxy", Name: "active_sessions", Help: "Open API sessions.",
	}, func() float64 { return float64(len(dp.sessions.Active())) }))
	dp.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "gatehouse", Subsystem: "recording", Name: "healthy", Help: "1 when trails can be written, 0 when audited targets are closed.",
	}, func() float64 {
		if dp.sessions.Healthy() != nil {
			return 0
		}
		return 1
	}))
	dp.ln, dp.metLn = s.proxyLn, s.metLn
	if dp.metLn != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(dp.registry, promhttp.HandlerOpts{}))
		dp.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	}
	return dp, nil
}

func (dp *dataPlane) loadSettings(ctx context.Context, s *Server) error {
	set, err := s.store.Settings(ctx)
	if err != nil {
		return err
	}
	dp.settings.Store(&set)
	return nil
}

// changed runs after every management write: the proxy sees the new policy on its very next request.
func (s *Server) changed(ctx context.Context) {
	dp := s.dp
	if err := dp.loadSettings(ctx, s); err != nil {
		s.log.Error("reloading settings failed", "err", err)
	}
	if err := dp.gate.Reload(ctx); err != nil {
		s.log.Error("rebuilding the policy snapshot failed; the previous one stays in force", "err", err)
	}
	s.node.Publish(ctx, cluster.TopicChange)
}

// serve starts the proxy and metrics listeners and the housekeeping loops.
func (dp *dataPlane) serve(ctx context.Context, errc chan<- error) {
	go func() { errc <- dp.proxy.Serve(dp.ln) }()
	if dp.metrics != nil {
		go func() { errc <- dp.metrics.Serve(&limits.Listener{Listener: dp.metLn}) }()
	}
	go dp.sessions.Run(ctx, time.Second)
	go dp.denials.run(ctx)
	dp.index.run(ctx)
	go dp.gate.Run(ctx, func() time.Duration {
		return time.Duration(max(dp.settings.Load().ReauthorizationInterval, 1)) * time.Second
	})
}

// shutdown stops accepting and lets requests finish until ctx ends; then, whether they finished or were cut off,
// it closes every session so trails are sealed.
func (dp *dataPlane) shutdown(ctx context.Context) error {
	err := dp.proxy.Shutdown(ctx)
	if dp.metrics != nil {
		dp.metrics.Shutdown(ctx)
	}
	cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	dp.sessions.CloseAll(cctx, "gatehouse shut down")
	dp.gate.Flush(cctx)
	return err
}
