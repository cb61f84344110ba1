// Package proxy is Gatehouse's data plane: an HTTP proxy that intercepts
// CONNECT tunnels, authenticates and authorizes every request, swaps the
// user's proxy secret for the target's credential, forwards the request and
// records the exchange.
package proxy

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"golang.org/x/net/http2"

	"github.com/gatehouse-dev/gatehouse/internal/limits"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
)

// Server is the proxy listener. Its zero value serves, and denies every
// request: only a configured Authorizer lets anything through. Fields must
// not change after Serve is called.
type Server struct {
	// Authorizer decides every request. Nil denies all requests.
	Authorizer Authorizer
	// Sessions groups requests into API sessions. Nil tracks none.
	Sessions Sessions
	// Approvals holds the requests of sessions that need an authorizer's approval. Nil holds none.
	Approvals Approvals
	// Recorder records exchanges of audited targets. Nil refuses every
	// request to an audited target (fail closed).
	Recorder Recorder
	// Certs mints leaf certificates for intercepted tunnels. Nil refuses TLS
	// inside tunnels; plain HTTP tunnels still work.
	Certs CertSource
	// Logger receives the access log and errors. Nil discards them.
	Logger *slog.Logger
	// Extenders dials targets whose NAT target host is extender:<prefix>[/host:port]. Nil refuses those
	// targets with a 502 naming the prefix.
	Extenders ExtenderDialer
	// Metrics, if not nil, is updated for every request.
	Metrics *Metrics
	// Denied, if set, is told of every request or tunnel the policy refused, with the precise reason, once it
	// has been answered; the server turns it into an audit event. It runs on the request's goroutine and must
	// not block.
	Denied func(DeniedRequest)
	// NormalizePath turns the escaped request path into the path that is
	// authorized and forwarded, or refuses it. Nil means policy.NormalizePath,
	// the normalizer the endpoint rules are written against.
	NormalizePath func(escapedPath string) (string, error)

	// DialTimeout bounds connecting to a target. Zero means 10s.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds TLS handshakes with clients and targets.
	// Zero means 10s.
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for a target's response header.
	// Zero means 30s.
	ResponseHeaderTimeout time.Duration
	// IdleTimeout closes idle client and target connections. Zero means 90s.
	IdleTimeout time.Duration
	// ReadHeaderTimeout bounds reading a request head. Zero means 10s.
	ReadHeaderTimeout time.Duration
	// MaxHeaderBytes bounds a request head. Zero means 64 KiB.
	MaxHeaderBytes int
	// BodyLimit is how much of each body a recording keeps. Zero means
	// 64 KiB.
	BodyLimit int
	// MaxChunkedBody bounds a chunked request body, which is read whole
	// before forwarding. Zero means 10 MiB.
	MaxChunkedBody int64
	// ProxyTLS, if set, lets clients reach the proxy itself over TLS (an
	// HTTPS proxy): a connection whose first byte starts a TLS handshake is
	// terminated with the configuration it returns for the client's address,
	// and refused when ok is false. Nil refuses TLS to the proxy. Whether
	// each request may then use it is the Authorizer's decision
	// (AuthRequest.ProxyTLS).
	ProxyTLS func(client netip.Addr) (cfg ProxyTLSConfig, ok bool)
	// MaxConns caps the client connections of each listener, MaxConnsPerClient those of one client address, and
	// MaxUnauthenticated those that have not yet presented a valid credential. Beyond a cap the oldest
	// unauthenticated connection it counts is closed to make room, and only when there is none is the new one
	// refused, so idle floods cost their senders their own connections. Zero means the default derived from
	// RLIMIT_NOFILE (limits.DefaultsFor); negative means no cap.
	MaxConns, MaxConnsPerClient, MaxUnauthenticated int
	// ChunkedBufferBudget bounds the bytes of chunked request bodies buffered at once across all requests; a body
	// that finds the budget spent is streamed to the target instead. Zero means 64 MiB; negative means no budget.
	ChunkedBufferBudget int64
	// BodyReadTimeout bounds the wait for each read of a request body, so a client that announces a body and
	// goes silent loses its request. Zero means 30s.
	BodyReadTimeout time.Duration
	// TrustedProxyProtocol lists the load balancers whose PROXY protocol
	// (v1 or v2) header gives the client address. A PROXY header from any
	// other source is refused. Empty trusts none.
	TrustedProxyProtocol []netip.Prefix

	chunked      limits.Budget
	heads        limits.Budget // large read buffers for request heads (see h1Conn.growReader)
	initOnce     sync.Once
	rp           *httputil.ReverseProxy
	transports   *transportCache
	h2           *http2.Server //lint:ignore SA1019 see serveH2
	h2base       *http.Server
	closing      atomic.Bool
	recordFailed atomic.Bool
	ids          *requestIDs
	scrubbers    scrubberCache
	now          func() time.Time

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*trackedConn]struct{}
	connWG    sync.WaitGroup
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		if s.now == nil {
			s.now = time.Now
		}
		s.ids = newRequestIDs()
		s.transports = &transportCache{srv: s}
		s.rp = &httputil.ReverseProxy{
			Rewrite:        s.rewrite,
			Transport:      s.transports,
			ModifyResponse: s.modifyResponse,
			ErrorHandler:   s.upstreamError,
			ErrorLog:       slog.NewLogLogger(s.logger().Handler(), slog.LevelWarn),
			// Without a pool every response body copy allocates a fresh 32 KiB buffer, which was half of all
			// allocation under load.
			BufferPool: copyBuffers,
		}
		s.chunked.Max = orDefault(s.ChunkedBufferBudget, 64<<20)
		s.heads.Max = headBuffers * int64(s.readBufferSize())
		//lint:ignore SA1019 see serveH2
		s.h2 = &http2.Server{IdleTimeout: s.idleTimeout(), MaxConcurrentStreams: h2MaxStreams}
		//lint:ignore SA1019 see serveH2
		s.h2.CountError = func(kind string) {
			if kind == "too_many_early_resets" { // x/net's own limit on queued handlers, before the guard's
				s.limitHit(limitH2Resets)
			}
		}
		s.h2base = &http.Server{MaxHeaderBytes: s.maxHeaderBytes(), ErrorLog: s.rp.ErrorLog}
		// Registers the graceful-shutdown hook Shutdown uses for tunnels
		// speaking HTTP/2.
		//lint:ignore SA1019 see serveH2
		_ = http2.ConfigureServer(s.h2base, s.h2)
	})
}

// Serve accepts connections on ln until Shutdown is called, then returns
// http.ErrServerClosed. It closes ln.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	// Temporary accept errors (a full descriptor table) are retried with a backoff under the PROXY protocol,
	// never returned. A connection from a trusted load balancer is counted against the client its PROXY header
	// names, once serveConn has read it; any other against its own address at once.
	ll := &limits.Listener{Listener: ln, Conns: s.newConns(), OnTemporary: s.acceptFailed, Defer: s.fromTrustedLB}
	pl := &proxyproto.Listener{Listener: ll, ConnPolicy: s.proxyProtocolPolicy, ReadHeaderTimeout: s.readHeaderTimeout()}
	if !s.trackListener(pl, true) {
		_ = ll.Close()
		return http.ErrServerClosed
	}
	defer s.trackListener(pl, false)
	defer pl.Close()
	var delay time.Duration
	for {
		c, err := pl.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			if errors.Is(err, proxyproto.ErrInvalidUpstream) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		tc := &trackedConn{Conn: c}
		if !s.trackConn(tc, true) {
			_ = c.Close()
			return http.ErrServerClosed
		}
		go s.serveConn(tc)
	}
}

// proxyProtocolPolicy honours PROXY headers from trusted load balancers and
// refuses connections from anyone else that send one; a header is optional
// either way (health checks may connect directly).
func (s *Server) proxyProtocolPolicy(opts proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
	if s.fromTrustedLB(opts.Upstream) {
		return proxyproto.USE, nil
	}
	return proxyproto.REJECT, nil
}

func (s *Server) fromTrustedLB(a net.Addr) bool {
	ap := addrPort(a)
	for _, p := range s.TrustedProxyProtocol {
		if p.Contains(ap.Addr()) {
			return true
		}
	}
	return false
}

func (s *Server) serveConn(tc *trackedConn) {
	defer s.trackConn(tc, false)
	defer tc.Close()
	defer func() { s.heads.Return(tc.bigHeads.Load()) }() // what its readers did not shrink back
	// RemoteAddr reads a PROXY protocol header, bounded by ReadHeaderTimeout, here in the connection's own
	// goroutine; Bind then counts the connection against that client.
	client := addrPort(tc.Conn.RemoteAddr())
	raw := tc.Conn
	if pc, ok := raw.(*proxyproto.Conn); ok {
		raw = pc.Raw()
		// The PROXY header has been read (RemoteAddr reads it): from here deadlines go straight to the
		// connection under the wrapper, which would store each one in an atomic.Value (an allocation per call,
		// several per request) only to use it while reading that header.
		tc.deadlines = raw
	}
	if lc, ok := raw.(*limits.Conn); ok {
		if !lc.BindTo(client.Addr()) {
			return
		}
		tc.prot = lc
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx, conn, br, err := s.startConn(ctx, tc, client)
	if err != nil {
		return
	}
	c := &h1Conn{
		srv:    s,
		conn:   conn,
		br:     br,
		bw:     bufio.NewWriter(conn),
		client: client,
		track:  tc,
	}
	c.serve(ctx)
}

// newConns is the connection accounting of one listener, with the caps of the fields or their defaults.
func (s *Server) newConns() *limits.Conns {
	d := limits.DefaultsFor(limits.NoFile())
	return &limits.Conns{
		Max:                limits.Cap(s.MaxConns, d.ProxyConns),
		MaxPerClient:       limits.Cap(s.MaxConnsPerClient, d.ProxyConnsPerClient),
		MaxUnauthenticated: limits.Cap(s.MaxUnauthenticated, d.ProxyUnauthenticated),
		OnLimit:            func(l string) { s.limitHit("proxy_" + l) },
	}
}

// acceptFailed notes a temporary accept error; the listener backs off and retries.
func (s *Server) acceptFailed(err error) {
	s.limitHit(limitAccept)
	s.logger().LogAttrs(context.Background(), levelWarn, "proxy accept failed; retrying", attrErr(err))
}

// limitHit counts a limit that refused or cut something off.
func (s *Server) limitHit(name string) {
	if m := s.Metrics; m != nil {
		m.LimitHit(name)
	}
}

// Shutdown stops accepting, lets requests in flight finish and closes idle
// connections; when ctx ends first it closes the remaining connections and
// returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.closing.Store(true)
	s.mu.Lock()
	for ln := range s.listeners {
		_ = ln.Close()
	}
	s.mu.Unlock()
	_ = s.h2base.Shutdown(ctx) // sends GOAWAY on HTTP/2 tunnels
	done := make(chan struct{})
	go func() {
		s.connWG.Wait()
		close(done)
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		// Idle connections stay open while any request is in flight, so a client that sends another request on
		// one is told to retry (503, Retry-After) rather than finding the connection reset.
		if !s.anyBusy() {
			s.closeConns(true)
		}
		select {
		case <-done:
			s.transports.closeIdle()
			return nil
		case <-ctx.Done():
			s.closeConns(false)
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// anyBusy reports whether a connection is in the middle of a request.
func (s *Server) anyBusy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tc := range s.conns {
		if !tc.idle.Load() {
			return true
		}
	}
	return false
}

func (s *Server) closeConns(onlyIdle bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tc := range s.conns {
		if !onlyIdle || tc.idle.Load() {
			_ = tc.Close()
		}
	}
}

func (s *Server) trackListener(ln net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closing.Load() {
			return false
		}
		if s.listeners == nil {
			s.listeners = make(map[net.Listener]struct{})
		}
		s.listeners[ln] = struct{}{}
	} else {
		delete(s.listeners, ln)
	}
	return true
}

func (s *Server) trackConn(tc *trackedConn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closing.Load() {
			return false
		}
		if s.conns == nil {
			s.conns = make(map[*trackedConn]struct{})
		}
		s.conns[tc] = struct{}{}
		s.connWG.Add(1)
	} else {
		delete(s.conns, tc)
		s.connWG.Done()
	}
	return true
}

// trackedConn is a client connection known to Shutdown, which closes it at
// once while it waits between requests.
type trackedConn struct {
	net.Conn
	idle atomic.Bool
	// prot moves the connection out of the evictable (unauthenticated) set; nil when the listener counts none.
	prot   limits.Protector
	authed atomic.Bool
	// bigHeads is what the connection holds of the head budget, returned when it closes.
	bigHeads atomic.Int64
	// deadlines, when set, takes the deadlines instead of Conn (see serveConn).
	deadlines net.Conn
}

// SetDeadline, SetReadDeadline and SetWriteDeadline skip the PROXY protocol wrapper once its header is read.
func (tc *trackedConn) SetDeadline(t time.Time) error {
	if tc.deadlines != nil {
		return tc.deadlines.SetDeadline(t)
	}
	return tc.Conn.SetDeadline(t)
}

func (tc *trackedConn) SetReadDeadline(t time.Time) error {
	if tc.deadlines != nil {
		return tc.deadlines.SetReadDeadline(t)
	}
	return tc.Conn.SetReadDeadline(t)
}

func (tc *trackedConn) SetWriteDeadline(t time.Time) error {
	if tc.deadlines != nil {
		return tc.deadlines.SetWriteDeadline(t)
	}
	return tc.Conn.SetWriteDeadline(t)
}

// holdHeads accounts n bytes of the head budget to the connection (negative: given back).
func (tc *trackedConn) holdHeads(n int64) {
	if tc != nil {
		tc.bigHeads.Add(n)
	}
}

// authenticated notes that a valid credential was presented on the connection, which then keeps its place
// when unauthenticated connections are evicted.
func (tc *trackedConn) authenticated() {
	if tc == nil || tc.authed.Load() {
		return
	}
	if !tc.authed.Swap(true) && tc.prot != nil {
		tc.prot.Protect()
	}
}

func (tc *trackedConn) setIdle(idle bool) {
	if tc != nil {
		tc.idle.Store(idle)
	}
}

// addrPort converts a listener address, unmapping IPv4-in-IPv6.
func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Server) normalizePath() func(string) (string, error) {
	if s.NormalizePath == nil {
		return policy.NormalizePath
	}
	return s.NormalizePath
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func (s *Server) dialTimeout() time.Duration { return orDefault(s.DialTimeout, 10*time.Second) }
func (s *Server) tlsHandshakeTimeout() time.Duration {
	return orDefault(s.TLSHandshakeTimeout, 10*time.Second)
}
func (s *Server) responseHeaderTimeout() time.Duration {
	return orDefault(s.ResponseHeaderTimeout, 30*time.Second)
}
func (s *Server) idleTimeout() time.Duration { return orDefault(s.IdleTimeout, 90*time.Second) }
func (s *Server) readHeaderTimeout() time.Duration {
	return orDefault(s.ReadHeaderTimeout, 10*time.Second)
}
func (s *Server) bodyReadTimeout() time.Duration {
	return orDefault(s.BodyReadTimeout, 30*time.Second)
}
func (s *Server) maxHeaderBytes() int   { return orDefault(s.MaxHeaderBytes, 64<<10) }
func (s *Server) bodyLimit() int        { return orDefault(s.BodyLimit, 64<<10) }
func (s *Server) maxChunkedBody() int64 { return orDefault(s.MaxChunkedBody, 10<<20) }

// headBuffers is how many connections may hold a large head buffer at once.
const headBuffers = 1000

// readBufferSize is the large read buffer (see h1Conn.growReader): room for
// a whole request head, which peekHead must see at once.
func (s *Server) readBufferSize() int { return s.maxHeaderBytes() + 4096 }

// CloseIdleConnections closes the idle pooled connections to every target. Pools refill on demand; use it after a
// burst, or in tests that count connections.
func (s *Server) CloseIdleConnections() {
	s.init()
	s.transports.closeIdle()
}
