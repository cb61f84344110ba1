package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/net/http2"

	"github.com/gatehouse-dev/gatehouse/internal/httpauth"
)

// tunnel is what a CONNECT established: every request inside must be for
// the same authority.
type tunnel struct {
	// scheme is "https" when the proxy intercepts TLS, "http" otherwise.
	scheme string
	// authority is the canonical CONNECT authority (lower-case host:port).
	authority string
	// host is the CONNECT host without port, the fallback TLS server name.
	host string
	// secret and credentialID come from Proxy-Authorization on the CONNECT
	// and authenticate requests that carry no credential of their own.
	secret       string
	credentialID string
	// conn is what the connection policy that admitted the CONNECT says;
	// nil for the defaults.
	conn *Connection
}

// handleConnect authorizes a CONNECT, answers 200 and serves the tunnel until
// it closes.
func (s *Server) handleConnect(ctx context.Context, c *h1Conn, req *http.Request, hi headInfo) {
	start := time.Now()
	rs := &requestState{id: s.ids.next(), start: start, client: c.client, method: http.MethodConnect, host: req.RequestURI}
	authority, err := canonicalAuthority(req.RequestURI, "")
	if err == nil && hi.host != "" {
		// The Host of a CONNECT, when sent, names the same authority.
		if h, herr := canonicalAuthority(hi.host, "https"); herr != nil || h != authority {
			err = errors.New("the Host header disagrees with the CONNECT authority")
		}
	}
	if err == nil && (hi.contentLength > 0 || hi.chunked) {
		err = errors.New("CONNECT with a body")
	}
	if err != nil {
		c.refuse(ctx, badRequest("invalid CONNECT: "+err.Error(), err))
		return
	}
	tun := &tunnel{authority: authority, host: hostOnly(authority)}
	ar := &AuthRequest{Client: c.client, Host: req.RequestURI, Method: http.MethodConnect, ProxyTLS: proxyTLSFrom(ctx)}
	if v, err := singleHeader(req.Header, "Proxy-Authorization"); err != nil {
		c.refuse(ctx, badRequest(err.Error(), err))
		return
	} else if v != "" {
		if tun.secret, tun.credentialID, err = parseProxyAuthorization(v); err != nil {
			c.refuse(ctx, authFailure(fmt.Errorf("connect: %w: %w", ErrUnauthenticated, err), levelProxy))
			return
		}
		ar.Secret, ar.CredentialID = tun.secret, tun.credentialID
	}
	g, err := s.authorize(ctx, ar)
	if err != nil {
		if errors.Is(err, ErrNoTarget) {
			s.limitHit(limitNoTarget)
		}
		e := authFailure(err, levelProxy)
		var denied *DeniedError
		if errors.As(err, &denied) && denied.Grant != nil {
			// Answered and accounted here rather than by refuse, so the log and audit event say who was refused.
			rs.grant, rs.status, rs.decision, rs.reason, rs.err = denied.Grant, e.code, e.decision, e.logReason(), e.err
			w := &h1Writer{c: c, req: &http.Request{Method: http.MethodGet, ProtoMajor: 1, ProtoMinor: 1, Close: true, Header: http.Header{}},
				header: http.Header{}, closeAfter: true}
			writeError(w, e, rs.id)
			w.finish()
			s.logAccess(ctx, rs, 0, 0)
			return
		}
		c.refuse(ctx, e)
		return
	}
	if ar.Secret != "" && g != nil {
		c.track.authenticated() // the CONNECT carried a valid credential
	}
	rs.grant = g
	if g != nil {
		tun.conn = g.Conn
	}
	rs.decision, rs.status = decisionAllow, http.StatusOK
	s.logAccess(ctx, rs, 0, 0)
	if _, err := c.bw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	if err := c.bw.Flush(); err != nil {
		return
	}
	s.serveTunnel(ctx, c, tun)
}

// serveTunnel looks at the first byte the client sends through the tunnel:
// a TLS handshake record (0x16) is intercepted, anything else is served as
// plain HTTP.
func (s *Server) serveTunnel(ctx context.Context, c *h1Conn, tun *tunnel) {
	c.track.setIdle(true) // Shutdown may close a tunnel nothing was sent through
	// Clients send their first bytes right after the 200; a tunnel that stays silent is holding a descriptor.
	_ = c.conn.SetReadDeadline(time.Now().Add(s.readHeaderTimeout()))
	b, err := c.br.Peek(1)
	if err != nil {
		return
	}
	c.track.setIdle(false)
	if b[0] != 0x16 {
		tun.scheme = "http"
		inner := *c
		inner.tun = tun
		inner.serve(ctx)
		return
	}
	tun.scheme = "https"
	tc := tls.Server(&bufConn{Conn: c.conn, r: c.br}, s.interceptConfig(tun))
	hsCtx, cancel := context.WithTimeout(ctx, s.tlsHandshakeTimeout())
	err = tc.HandshakeContext(hsCtx)
	cancel()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			s.limitHit(limitHandshake)
		}
		s.logger().LogAttrs(ctx, levelDebug, "proxy tunnel handshake failed",
			attrString("client", c.client.String()), attrString("authority", tun.authority), attrErr(err))
		return
	}
	_ = c.conn.SetReadDeadline(time.Time{})
	if tc.ConnectionState().NegotiatedProtocol == http2.NextProtoTLS {
		c.track.setIdle(false)
		s.serveH2(ctx, tc, tun, c.client, c.track)
		return
	}
	// The CONNECT's writer is flushed and idle from here on: the tunnel's
	// requests reuse it instead of holding a second buffer.
	c.bw.Reset(tc)
	inner := &h1Conn{srv: s, conn: tc, br: bufio.NewReaderSize(tc, smallReadBuffer),
		bw: c.bw, tun: tun, client: c.client, track: c.track}
	inner.serve(ctx)
}

// interceptConfig is the TLS server side of an intercepted tunnel.
func (s *Server) interceptConfig(tun *tunnel) *tls.Config {
	conn := tun.conn
	if conn == nil {
		conn = &Connection{}
	}
	certs := s.Certs
	if conn.ClientCerts != nil {
		certs = conn.ClientCerts
	}
	return &tls.Config{
		MinVersion: tlsMin(conn.ClientTLSMinVersion),
		NextProtos: []string{http2.NextProtoTLS, "http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if certs == nil {
				return nil, errors.New("intercept: no certificate source configured")
			}
			// A server name other than the CONNECT host would let a client
			// tunnel to one host while presenting another (domain fronting).
			if hello.ServerName != "" && !strings.EqualFold(strings.TrimSuffix(hello.ServerName, "."), tun.host) {
				return nil, fmt.Errorf("intercept: server name %q disagrees with CONNECT host %q", hello.ServerName, tun.host)
			}
			h := *hello
			h.ServerName = tun.host
			return certs.GetCertificate(&h)
		},
	}
}

func (s *Server) serveH2(ctx context.Context, tc *tls.Conn, tun *tunnel, client netip.AddrPort, track *trackedConn) {
	// net/http's own HTTP/2 server only serves listeners; x/net/http2 is the one API that serves a single
	// connection we already accepted and terminated ourselves. The guard watches the frames for rapid reset.
	guard := newH2Guard(tc, s)
	clientStr := client.String() // once per connection, not per stream
	//lint:ignore SA1019 see above
	s.h2.ServeConn(guard, &http2.ServeConnOpts{ //nolint:staticcheck
		Context:    ctx,
		BaseConfig: s.h2base,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.RemoteAddr = clientStr
			if r.Body != nil && r.Body != http.NoBody {
				b := &h2Body{rc: r.Body, srv: s}
				b.rc2 = *http.NewResponseController(w) // held by value: one allocation per stream fewer
				r.Body = b
			}
			s.serveHTTP(w, r, tun, client, r.Host, track)
		}),
	})
	guard.linger()
}

// h2Body bounds the wait for each read of an HTTP/2 request body, as h1Body does for HTTP/1: the stream's read
// deadline resets the stream when it passes.
type h2Body struct {
	rc  io.ReadCloser
	rc2 http.ResponseController
	srv *Server
	eof bool
}

func (b *h2Body) Read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	_ = b.rc2.SetReadDeadline(time.Now().Add(b.srv.bodyReadTimeout()))
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
		_ = b.rc2.SetReadDeadline(time.Time{})
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		b.srv.limitHit(limitBodyTimeout)
		err = fmt.Errorf("%w: %w", errBodyReadTimeout, err)
	}
	return n, err
}

func (b *h2Body) Close() error { return b.rc.Close() }

// parseProxyAuthorization reads "Basic base64(id:secret)" or
// "Bearer secret".
func parseProxyAuthorization(v string) (secret, credentialID string, err error) {
	if tok, ok := httpauth.Credentials(v, "Bearer"); ok {
		return tok, "", nil
	}
	if enc, ok := httpauth.Credentials(v, "Basic"); ok {
		raw, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return "", "", errors.New("proxy authorization: invalid base64")
		}
		id, secret, ok := strings.Cut(string(raw), ":")
		if !ok {
			return "", "", errors.New("proxy authorization: missing secret")
		}
		return secret, id, nil
	}
	return "", "", errors.New("proxy authorization: unsupported scheme")
}

// singleHeader returns the one value of a header, refusing repeats: two
// credentials are ambiguous.
func singleHeader(h http.Header, name string) (string, error) {
	vs := h.Values(name)
	if len(vs) > 1 {
		return "", fmt.Errorf("repeated %s header", name)
	}
	if len(vs) == 0 {
		return "", nil
	}
	return vs[0], nil
}
