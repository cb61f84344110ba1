package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"

	"github.com/gatehouse-dev/gatehouse/internal/policy"
)

// upstreamConfigError marks a target whose transport cannot be built (bad
// trust anchors, bad client certificate).
type upstreamConfigError struct{ err error }

func (e *upstreamConfigError) Error() string { return "upstream config: " + e.err.Error() }
func (e *upstreamConfigError) Unwrap() error { return e.err }

// transportKey identifies a cached transport. The NAT host is part of it
// because connections are pooled by requested authority: two endpoints of
// one target with different NAT hosts must never share a connection.
type transportKey struct {
	targetID string
	nat      string
	conn     string // Connection.Key
}

type cachedTransport struct {
	version int64
	rt      *http.Transport
}

// transportCache keeps one pooled transport per target, rebuilt when the
// target's Version changes.
type transportCache struct {
	srv *Server
	mu  sync.Mutex
	m   map[transportKey]*cachedTransport
}

// RoundTrip sends the request over the transport of the request's target.
func (c *transportCache) RoundTrip(req *http.Request) (*http.Response, error) {
	rs := stateFrom(req.Context())
	if rs == nil || rs.grant == nil || rs.grant.Target == nil {
		return nil, &upstreamConfigError{errors.New("request has no target")}
	}
	rt, err := c.get(req.Context(), rs.grant.Target, rs.grant.NATTargetHost, rs.grant.Conn)
	if err != nil {
		return nil, err
	}
	return rt.RoundTrip(req)
}

func (c *transportCache) get(ctx context.Context, t *Target, nat string, conn *Connection) (*http.Transport, error) {
	if conn == nil {
		conn = &Connection{}
	}
	key := transportKey{targetID: t.ID, nat: nat, conn: conn.Key}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok && e.version == t.Version {
		return e.rt, nil
	}
	rt, err := c.srv.buildTransport(ctx, t, nat, conn)
	if err != nil {
		return nil, &upstreamConfigError{err}
	}
	if old, ok := c.m[key]; ok {
		old.rt.CloseIdleConnections()
	}
	if c.m == nil {
		c.m = make(map[transportKey]*cachedTransport)
	}
	c.m[key] = &cachedTransport{version: t.Version, rt: rt}
	return rt, nil
}

func (c *transportCache) closeIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.m {
		e.rt.CloseIdleConnections()
	}
}

func (s *Server) buildTransport(ctx context.Context, t *Target, nat string, conn *Connection) (*http.Transport, error) {
	tlsConf := &tls.Config{MinVersion: tlsMin(conn.ServerTLSMinVersion)}
	if conn.TrustedCAs != nil {
		// Runs even when the target turned its own verification off: a connection policy only adds checks.
		tlsConf.VerifyConnection = verifyTrusted(conn.TrustedCAs)
	}
	if t.InsecureSkipVerify {
		tlsConf.InsecureSkipVerify = true
		s.logger().LogAttrs(ctx, levelWarn, "proxy target TLS verification disabled by its configuration",
			attrString("target", t.Name), attrString("target_id", t.ID))
	} else {
		roots, err := x509.SystemCertPool()
		if err != nil {
			roots = x509.NewCertPool()
		}
		if t.TrustAnchorsPEM != "" && !roots.AppendCertsFromPEM([]byte(t.TrustAnchorsPEM)) {
			return nil, fmt.Errorf("build transport for %s: no certificate in trust anchors", t.Name)
		}
		tlsConf.RootCAs = roots
	}
	if t.Credential.Type == CredentialCertificate {
		cert, err := tls.X509KeyPair([]byte(t.Credential.CertificatePEM), []byte(t.Credential.PrivateKeyPEM))
		if err != nil {
			// The key pair error text names no secret material.
			return nil, fmt.Errorf("build transport for %s: client certificate: %w", t.Name, err)
		}
		tlsConf.Certificates = []tls.Certificate{cert}
	}
	dialer := &net.Dialer{Timeout: s.dialTimeout(), KeepAlive: s.idleTimeout()}
	if conn.SourceAddress.IsValid() {
		dialer.LocalAddr = &net.TCPAddr{IP: conn.SourceAddress.AsSlice()}
	}
	route := conn.Route
	if prefix, extAddr, ok, err := policy.ParseExtenderNAT(nat); ok {
		if err != nil {
			return nil, fmt.Errorf("build transport for %s: nat_target_host: %w", t.Name, err)
		}
		// The address is resolved and dialled inside the extender's segment, so the gateway's own routing
		// (connection-policy routes, source address) does not apply to it.
		nat = extAddr
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			return s.dialExtender(ctx, prefix, natAddress(nat, addr))
		}
		return s.newTransport(tlsConf, dial), nil
	}
	return s.newTransport(tlsConf, func(ctx context.Context, network, addr string) (net.Conn, error) {
		addr, err := s.resolveRoute(ctx, route, natAddress(nat, addr))
		if err != nil {
			return nil, err
		}
		return dialer.DialContext(ctx, network, addr)
	}), nil
}

func (s *Server) newTransport(tlsConf *tls.Config, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
	return &http.Transport{
		DialContext:           dial,
		TLSClientConfig:       tlsConf,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   s.tlsHandshakeTimeout(),
		ResponseHeaderTimeout: s.responseHeaderTimeout(),
		IdleConnTimeout:       s.idleTimeout(),
		// A busy target takes many concurrent requests; a small idle pool would redial (and redo TLS) for most
		// of them once more than that many are in flight.
		MaxIdleConnsPerHost: 512,
		// The proxy's own environment must not reroute target traffic.
		Proxy: nil,
	}
}

// natAddress is the address to dial: the NAT host when set, keeping the
// requested port if the NAT host names none.
func natAddress(nat, addr string) string {
	if nat == "" {
		return addr
	}
	if _, _, err := net.SplitHostPort(nat); err == nil {
		return nat
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nat
	}
	return net.JoinHostPort(hostOnly(nat), port)
}

// upstreamError is the ReverseProxy ErrorHandler: the one place where
// failures to reach the target become responses.
func (s *Server) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	rs := stateFrom(r.Context())
	var clientCtx context.Context = r.Context()
	if rs != nil && rs.clientCtx != nil {
		clientCtx = rs.clientCtx
	}
	e, kind := classifyUpstreamError(clientCtx, r.Context(), err)
	if rs != nil && rs.overrideHit.Load() {
		// The decision stays allow: part of the body reached the target, so the exchange belongs in the trail.
		e, kind = badRequest("method override in the request body refused", err), "refused_request"
	}
	id := ""
	if rs != nil {
		id = rs.id
		rs.upstream, rs.reason, rs.err = kind, e.msg, err
		if e.code == statusClientClosed {
			rs.status = statusClientClosed
		}
	}
	if m := s.Metrics; m != nil {
		m.UpstreamErrors.WithLabelValues(kind).Inc()
	}
	writeError(w, e, id)
}

// classifyUpstreamError maps a round-trip failure to the client's status:
// 502 when the target could not be reached or spoke bad TLS, 504 when it was
// too slow, 499 (logged only) when the client went away, 403 when the
// session was terminated mid-request.
func classifyUpstreamError(clientCtx, reqCtx context.Context, err error) (*httpError, string) {
	upstream := func(code int, errCode, kind, msg string) (*httpError, string) {
		return &httpError{code: code, errCode: errCode, msg: msg, decision: decisionAllow, err: err}, kind
	}
	var (
		cfgErr    *upstreamConfigError
		refused   *refusedResponseError
		dnsErr    *net.DNSError
		netErr    net.Error
		verifErr  *tls.CertificateVerificationError
		recErr    tls.RecordHeaderError
		alertErr  tls.AlertError
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		extErr    extenderFailure
	)
	switch {
	case clientCtx.Err() != nil:
		return upstream(statusClientClosed, "CLIENT_CLOSED", "client_gone", "client closed the request")
	case reqCtx.Err() != nil && !errors.Is(reqCtx.Err(), context.DeadlineExceeded):
		return &httpError{code: http.StatusForbidden, errCode: "SESSION_TERMINATED", msg: "session terminated",
			decision: decisionDeny, err: err}, "session_terminated"
	case errors.Is(err, errBodyReadTimeout):
		return bodyTimeout(err), "body_timeout"
	case errors.Is(err, errChunkedTooLarge):
		return bodyTooLarge(err), "body_too_large"
	case errors.As(err, &refused):
		return upstream(http.StatusBadGateway, "UPSTREAM_REFUSED", "refused_response", "target response refused")
	case errors.As(err, &extErr):
		code, msg := extErr.ExtenderFailure()
		return upstream(http.StatusBadGateway, code, "extender", msg)
	case errors.As(err, &cfgErr):
		return upstream(http.StatusBadGateway, "UPSTREAM_CONFIG", "config", "target transport misconfigured")
	case errors.As(err, &verifErr), errors.As(err, &recErr), errors.As(err, &alertErr),
		errors.As(err, &unknownCA), errors.As(err, &hostErr):
		return upstream(http.StatusBadGateway, "UPSTREAM_TLS", "tls", "target TLS handshake failed")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return upstream(http.StatusGatewayTimeout, "UPSTREAM_TIMEOUT", "timeout", "target timed out")
	case errors.Is(err, syscall.ECONNREFUSED):
		return upstream(http.StatusBadGateway, "UPSTREAM_UNREACHABLE", "refused", "target refused the connection")
	case errors.As(err, &dnsErr):
		return upstream(http.StatusBadGateway, "UPSTREAM_UNREACHABLE", "dns", "target host not found")
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF):
		return upstream(http.StatusBadGateway, "UPSTREAM_RESET", "reset", "target closed the connection")
	default:
		return upstream(http.StatusBadGateway, "UPSTREAM_ERROR", "other", "target request failed")
	}
}
