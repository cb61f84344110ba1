// Package server wires Gatehouse together: it opens the store, keys and CA, builds the APIs and the proxy, serves
// them, and shuts them down gracefully.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/approval/hold"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/ca"
	"github.com/gatehouse-dev/gatehouse/internal/cluster"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/configapi"
	"github.com/gatehouse-dev/gatehouse/internal/console"
	"github.com/gatehouse-dev/gatehouse/internal/directory"
	"github.com/gatehouse-dev/gatehouse/internal/extender"
	"github.com/gatehouse-dev/gatehouse/internal/gate"
	"github.com/gatehouse-dev/gatehouse/internal/jit"
	"github.com/gatehouse-dev/gatehouse/internal/limits"
	"github.com/gatehouse-dev/gatehouse/internal/notify"
	"github.com/gatehouse-dev/gatehouse/internal/recording"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/serviceapi"
	"github.com/gatehouse-dev/gatehouse/internal/sessions"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Server is a running Gatehouse.
type Server struct {
	cfg     *config.Config
	log     *slog.Logger
	keys    *secrets.Keyring
	store   *store.Store
	ca      *ca.CA
	api     *serviceapi.API
	cfgapi  *configapi.Service
	apiSrv  *http.Server
	apiLn   net.Listener
	proxyLn net.Listener
	metLn   net.Listener // nil without --metrics-listen
	dp      *dataPlane
	dir     *directory.Directory
	node    *cluster.Node
	shared  *cluster.Counters // limiter counts shared by a cluster's nodes; nil on SQLite
	ext     *extender.Hub
	// jit ends role grants when their windows close; its events (OnEvent) are where notifications attach.
	jit     *jit.Engine
	closers []func(context.Context) error

	approvals *hold.Service
	notifier  *notify.Notifier
}

// Options are what Run needs besides the configuration.
type Options struct {
	Log *slog.Logger
	// Out receives the one-time first-start message (the generated admin password).
	Out io.Writer
	// AdminPassword is GATEHOUSE_ADMIN_PASSWORD, used only when the store is empty.
	AdminPassword string
	// LoginLimiter throttles failed logins of both API dialects; nil means an auth.MemoryLoginLimiter with its
	// defaults.
	LoginLimiter auth.LoginLimiter
}

// New opens everything the configuration names and binds the listeners, but serves nothing yet. A failure is
// returned as a StartError naming the flag at fault, and everything opened so far is closed again.
func New(ctx context.Context, cfg *config.Config, opts Options) (*Server, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log}
	if err := s.open(ctx, opts); err != nil {
		s.Close(context.Background())
		return nil, err
	}
	return s, nil
}

// open does New's work. Each resource registers its closer as soon as it exists, so a failure part-way leaves
// nothing bound or open behind.
func (s *Server) open(ctx context.Context, opts Options) error {
	cfg, log := s.cfg, s.log
	// Listeners first: a taken port then fails the start before anything is created or migrated.
	if err := s.bindListeners(); err != nil {
		return err
	}
	if err := checkDataDir(cfg.DataDir); err != nil {
		return &StartError{Flag: "data-dir", Value: cfg.DataDir, Err: err}
	}
	var master []byte
	var err error
	if cfg.MasterKey != "" {
		master, err = secrets.ParseMasterKey(cfg.MasterKey)
		if err != nil {
			return &StartError{Flag: "master-key", Err: err}
		}
	} else if master, err = secrets.LoadOrCreateMasterKey(cfg.MasterKeyPath()); err != nil {
		return &StartError{Flag: "master-key-file", Value: cfg.MasterKeyPath(), Err: err}
	}
	if s.keys, err = secrets.NewKeyring(master); err != nil {
		return &StartError{Flag: "master-key", Err: err}
	}
	st, err := store.OpenPool(ctx, cfg.DatabaseDSN(), s.keys, log, store.Pool{
		MaxConns: cfg.DBMaxConns, MaxIdleConns: cfg.DBMaxIdleConns, ConnMaxLifetime: cfg.DBConnMaxLifetime})
	if err != nil {
		return &StartError{Flag: "db", Value: cfg.Masked()["database"].(string), Err: err}
	}
	s.store = st
	s.closers = append(s.closers, func(context.Context) error { return st.Close() })
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	if err := s.joinCluster(ctx, opts.AdminPassword, out); err != nil {
		return err
	}
	tlsCert, err := s.apiCertificate()
	if err != nil {
		return err
	}
	if s.dp, err = s.newDataPlane(ctx, log); err != nil {
		return err
	}
	if err := s.startAuditExport(log); err != nil {
		return err
	}
	s.newSearchIndex(log)
	s.api = &serviceapi.API{
		Store:        s.store,
		Tokens:       auth.NewTokenIssuer(s.keys.SigningKey("access-token"), cfg.TokenTTL),
		CA:           s.ca,
		Log:          log,
		ProxyAddress: s.dp.ln.Addr().String(),
		OnChange:     s.changed,
		Sessions:     s.dp.sessions,
		Trails:       s.dp.trails,
		Status: func(ctx context.Context) map[string]any {
			st := s.dp.gate.Stats()
			st["active_sessions"] = len(s.dp.sessions.Active())
			st["recording"] = "ok"
			if err := s.dp.sessions.Healthy(); err != nil {
				st["recording"] = "failed: " + err.Error()
			}
			return st
		},
	}
	s.api.Peers = newPeers(s)
	// Both dialects count the same login failures.
	s.api.Limiter = opts.LoginLimiter
	if s.api.Limiter == nil {
		ml := &auth.MemoryLoginLimiter{}
		if s.shared != nil {
			ml.Shared = s.shared // and for the whole cluster
		}
		s.api.Limiter = ml
	}
	s.cfgapi = &configapi.Service{
		Store: s.store, Principals: s.api, Limiter: s.api.Limiter, Log: log, Terminate: s.dp.sessions.Terminate,
		OnCommit: func() { s.changed(context.Background()) },
	}
	if s.shared != nil {
		s.cfgapi.SharedRates = s.shared
	}
	// X.509 login (aaa/settings) refuses password logins through the service API's token endpoint too.
	s.api.PasswordLoginAllowed = s.cfgapi.PasswordLoginAllowed
	if err := s.cfgapi.Reload(ctx); err != nil {
		return err
	}
	s.dp.gate.Connections = s.cfgapi.Policies
	s.api.AuditTrailDownloads = func(key string) bool { return s.cfgapi.Policies().AuditTrailDownloads(key) }
	s.newApprovals(log)
	s.newRetention(log)
	s.dir = &directory.Directory{Store: s.store, Log: log.With("component", "directory"), OnChange: s.changed}
	s.api.Directory = s.dir
	s.jit = &jit.Engine{Store: s.store, Log: log.With("component", "workflow-engine"), OnChange: s.changed}
	s.jit.OnEvent = func(ctx context.Context, e jit.Event) { _ = s.notifier.Send(ctx, workflowEvent(e)) } // queued, never blocks
	s.api.Workflows = s.jit
	extCA, err := s.loadExtenderCA(ctx)
	if err != nil {
		return err
	}
	s.ext = newExtenderHub(s.store, extCA, log.With("component", "extender"))
	s.ext.Limiter = s.api.Limiter
	ctl := extenderControl{s: s, ca: extCA}
	s.api.Extenders, s.api.ExtenderCA, s.dp.proxy.Extenders = ctl, ctl, s.ext
	mux := http.NewServeMux()
	// Live views (the console's event streams) end when the API listener shuts down, so they never hold it open.
	liveCtx, stopLive := context.WithCancel(context.Background())
	s.closers = append(s.closers, func(context.Context) error { stopLive(); return nil })
	if err := s.routes(mux, log, liveCtx.Done()); err != nil {
		return err
	}
	s.apiSrv = &http.Server{
		Handler: &apiHandler{mux: mux, metrics: newAPIMetrics(s.dp.registry), log: log.With("component", "api")},
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{*tlsCert}, MinVersion: tls.VersionTLS12,
			// Asked for, never required: /api/authentication?type=x509 verifies it against the configured CA.
			ClientAuth: tls.RequestClientCert},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		// A connection serving a request keeps its place; a new or idle one may be evicted by a flood's newer ones.
		ConnState: limits.HTTPConnState,
	}
	s.apiSrv.RegisterOnShutdown(stopLive)
	return nil
}

// bindListeners binds the API, proxy and (when configured) metrics listeners; Close releases them if the start
// fails later.
func (s *Server) bindListeners() error {
	for _, l := range []struct {
		flag, addr string
		ln         *net.Listener
	}{{"api-listen", s.cfg.APIListen, &s.apiLn}, {"proxy-listen", s.cfg.ProxyListen, &s.proxyLn}, {"metrics-listen", s.cfg.MetricsListen, &s.metLn}} {
		if l.addr == "" {
			continue
		}
		ln, err := listen(l.flag, l.addr)
		if err != nil {
			return err
		}
		*l.ln = ln
		// Closing a listener that Serve's shutdown already closed is harmless.
		s.closers = append(s.closers, func(context.Context) error { ln.Close(); return nil })
	}
	return nil
}

// apiCertificate loads --api-cert/--api-key, or has the CA issue one for the listen address.
func (s *Server) apiCertificate() (*tls.Certificate, error) {
	if s.cfg.APICert != "" {
		c, err := tls.LoadX509KeyPair(s.cfg.APICert, s.cfg.APIKey)
		if err != nil {
			return nil, fmt.Errorf("--api-cert/--api-key: %w", err)
		}
		return &c, nil
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, _, err := net.SplitHostPort(s.cfg.APIListen); err == nil && h != "" && h != "0.0.0.0" && h != "::" {
		hosts = append(hosts, h)
	}
	if name, err := os.Hostname(); err == nil && name != "" {
		hosts = append(hosts, name)
	}
	c, err := s.ca.ServerCertificate(hosts)
	if err != nil {
		return nil, fmt.Errorf("api certificate: %w", err)
	}
	return c, nil
}

// routes mounts every HTTP surface of the API listener.
func (s *Server) routes(mux *http.ServeMux, log *slog.Logger, live <-chan struct{}) error {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.store.Ping(r.Context()); err != nil {
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	s.api.Routes(mux)
	mux.Handle("GET "+extender.ConnectPath, s.ext)
	s.clusterExtenders(mux)
	s.cfgapi.Routes(mux)
	// The web console at /, reading and writing through the service API above; its OIDC sign-in is one more
	// registered callback of the API's OIDC login.
	s.api.OIDCRedirect.Paths = append(s.api.OIDCRedirect.Paths, console.OIDCCallbackPath)
	con := &console.Console{Service: s.api, Backend: mux, Store: s.store, CSRFKey: s.keys.SigningKey("console-csrf"),
		Log: log.With("component", "console"), Done: live}
	return con.Routes(mux)
}

// apiListener is the API listener with budgets of its own, apart from the proxy's, so a flood of the proxy never
// starves the management API; temporary accept errors are retried with a backoff.
func (s *Server) apiListener() net.Listener {
	d := limits.DefaultsFor(limits.NoFile())
	hit := func(l string) { s.dp.proxy.Metrics.LimitHit("api_" + l) }
	return s.behindBalancer(&limits.Listener{Listener: s.apiLn,
		Conns: &limits.Conns{Max: limits.Cap(s.cfg.APIMaxConns, d.APIConns), MaxPerClient: limits.Cap(s.cfg.APIMaxConnsPerClient, d.APIConnsPerClient),
			OnLimit: hit},
		OnTemporary: func(err error) {
			hit("accept_error")
			s.log.Warn("api accept failed; retrying", "err", err)
		},
		Defer: s.fromBalancer,
	})
}

// APIAddr is the address the API listener is bound to.
func (s *Server) APIAddr() string { return s.apiLn.Addr().String() }

// ProxyAddr is the address the proxy listener is bound to.
func (s *Server) ProxyAddr() string { return s.dp.ln.Addr().String() }

// MetricsAddr is the address of the metrics listener, "" when disabled.
func (s *Server) MetricsAddr() string {
	if s.dp.metLn == nil {
		return ""
	}
	return s.dp.metLn.Addr().String()
}

// Sessions returns the API session manager.
func (s *Server) Sessions() *sessions.Manager { return s.dp.sessions }

// Trails returns the recording store.
func (s *Server) Trails() *recording.Store { return s.dp.trails }

// CloseIdleUpstreamConnections closes the proxy's idle pooled connections to targets.
func (s *Server) CloseIdleUpstreamConnections() { s.dp.proxy.CloseIdleConnections() }

// Gate returns the policy decision point.
func (s *Server) Gate() *gate.Gate { return s.dp.gate }

// ConfigAPI returns the configuration API, whose Policies the data plane enforces.
func (s *Server) ConfigAPI() *configapi.Service { return s.cfgapi }

// Directory returns the user-source syncer, whose Authenticate the configuration API's login also uses.
func (s *Server) Directory() *directory.Directory { return s.dir }

// Store returns the store, for tests and the CLI.
func (s *Server) Store() *store.Store { return s.store }

// CA returns the proxy CA.
func (s *Server) CA() *ca.CA { return s.ca }

// Serve serves until ctx is done, then drains: the listeners stop accepting, requests in flight get up to
// --shutdown-grace to finish (new requests on connections still open are answered 503 with Retry-After), every
// session is closed so its trail is sealed, and everything is released.
func (s *Server) Serve(ctx context.Context, ready func(*Server)) error {
	errc := make(chan error, 4)
	go func() { errc <- s.apiSrv.ServeTLS(s.apiListener(), "", "") }()
	// Housekeeping outlives ctx: the session manager closes every session when its context ends, which would
	// abort the requests the drain is waiting for.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	s.dp.serve(runCtx, errc)
	dirDone := make(chan struct{})
	// The node's jobs include the directory syncs, which run on the cluster's leader only.
	go func() { s.runNode(runCtx); close(dirDone) }()
	go s.reloadConfigPeriodically(runCtx)
	go s.runApprovals(runCtx)
	s.log.Info("gatehouse started", "api", s.APIAddr(), "proxy", s.ProxyAddr(), "metrics", s.MetricsAddr(),
		"database", s.store.Dialect(), "data_dir", s.cfg.DataDir, "node", s.node.ID)
	if ready != nil {
		ready(s)
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
	}
	grace := s.cfg.ShutdownGrace
	if grace <= 0 {
		grace = 15 * time.Second // a Config built by hand, without the flag's default
	}
	s.log.Info("shutting down: draining requests in flight", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	apiDone := make(chan error, 1)
	go func() { apiDone <- s.apiSrv.Shutdown(sctx) }()
	s.ext.Close() // hijacked extender sessions are not the HTTP server's to close
	if serr := s.dp.shutdown(sctx); serr != nil && err == nil {
		if errors.Is(serr, context.DeadlineExceeded) {
			s.log.Warn("shutdown: requests still in flight after the grace period were cut off", "grace", grace.String())
		} else {
			err = serr
		}
	}
	if serr := <-apiDone; serr != nil && err == nil && !errors.Is(serr, context.DeadlineExceeded) {
		err = serr
	}
	stopRun()
	<-dirDone // no sync may write to the store once it closes
	s.dp.index.wait()
	// Sealing and storing what the drain closed gets its own bound: the grace period may be used up.
	cctx, ccancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer ccancel()
	if cerr := s.Close(cctx); cerr != nil && err == nil {
		err = cerr
	}
	s.log.Info("gatehouse stopped")
	return err
}

// Close releases everything New opened, in reverse order.
func (s *Server) Close(ctx context.Context) error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i](ctx))
	}
	s.closers = nil
	return errors.Join(errs...)
}

// reloadConfigPeriodically picks up configuration commits made by other nodes sharing a PostgreSQL database.
func (s *Server) reloadConfigPeriodically(ctx context.Context) {
	interval := func() time.Duration {
		return time.Duration(max(s.dp.settings.Load().ReauthorizationInterval, 1)) * time.Second
	}
	last := time.Now()
	for {
		// Wake every second to read the interval again, so shortening reauthorization_interval applies at once.
		t := time.NewTimer(min(interval(), time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if time.Since(last) < interval() {
			continue
		}
		last = time.Now()
		// Under the change feed, the net that catches what it missed: settings too.
		if err := s.dp.loadSettings(ctx, s); err != nil && ctx.Err() == nil {
			s.log.Error("reloading settings failed", "err", err)
		}
		if err := s.cfgapi.Reload(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("reloading connection policies failed; keeping the previous ones", "err", err)
		}
	}
}
