package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"time"
)

type proxyTLSKey struct{}

// proxyTLSFrom reports whether the client's connection to the proxy itself is TLS (an HTTPS proxy).
func proxyTLSFrom(ctx context.Context) bool {
	v, _ := ctx.Value(proxyTLSKey{}).(bool)
	return v
}

// firstByteTLS reports whether a connection's first byte starts a TLS handshake record. Proxy clients speak
// HTTP/1.x, whose requests start with a method token, never 0x16.
func firstByteTLS(b byte) bool { return b == 0x16 }

// acceptProxyTLS terminates TLS from a client that uses the proxy as an HTTPS proxy, with the certificate the
// connection policies choose for its address. ok is false when no policy lets this client use TLS, or the
// handshake failed; the caller then closes the connection.
func (s *Server) acceptProxyTLS(ctx context.Context, conn net.Conn, br *bufio.Reader, client netip.AddrPort) (*tls.Conn, bool) {
	if s.ProxyTLS == nil {
		s.logger().LogAttrs(ctx, levelDebug, "proxy refused TLS to the proxy: not configured", attrString("client", client.String()))
		return nil, false
	}
	pc, ok := s.ProxyTLS(client.Addr())
	certs := pc.Certs
	if certs == nil {
		certs = s.Certs
	}
	if !ok || certs == nil {
		s.logger().LogAttrs(ctx, levelInfo, "proxy refused TLS to the proxy: no connection policy of this client uses web_proxy TLS",
			attrString("client", client.String()))
		return nil, false
	}
	local := addrPort(conn.LocalAddr()).Addr().String()
	tc := tls.Server(&bufConn{Conn: conn, r: br}, &tls.Config{
		MinVersion: tlsMin(pc.MinVersion),
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if hello.ServerName == "" {
				// Clients send no SNI when they were told the proxy's IP address.
				h := *hello
				h.ServerName = local
				return certs.GetCertificate(&h)
			}
			return certs.GetCertificate(hello)
		},
	})
	hsCtx, cancel := context.WithTimeout(ctx, s.tlsHandshakeTimeout())
	defer cancel()
	if err := tc.HandshakeContext(hsCtx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			s.limitHit(limitHandshake)
		}
		s.logger().LogAttrs(ctx, levelDebug, "proxy TLS handshake failed", attrString("client", client.String()), attrErr(err))
		return nil, false
	}
	return tc, true
}

// startConn looks at the first byte of a client connection and, for a TLS handshake, terminates TLS: it returns
// the connection and reader to serve HTTP on and the context marking TLS to the proxy.
func (s *Server) startConn(ctx context.Context, tc *trackedConn, client netip.AddrPort) (context.Context, net.Conn, *bufio.Reader, error) {
	// tc rather than tc.Conn: its deadlines skip the PROXY protocol wrapper (see serveConn).
	br := bufio.NewReaderSize(tc, smallReadBuffer)
	tc.setIdle(true)
	// A connection that sends nothing has ReadHeaderTimeout, not the keep-alive idle timeout (see h1Conn.serve).
	_ = tc.SetReadDeadline(time.Now().Add(s.readHeaderTimeout()))
	b, err := br.Peek(1)
	tc.setIdle(false)
	if err != nil {
		return ctx, nil, nil, err
	}
	if !firstByteTLS(b[0]) {
		return ctx, tc, br, nil
	}
	tlsConn, ok := s.acceptProxyTLS(ctx, tc, br, client)
	if !ok {
		return ctx, nil, nil, errors.New("TLS to the proxy refused")
	}
	_ = tc.SetReadDeadline(time.Time{})
	return context.WithValue(ctx, proxyTLSKey{}, true), tlsConn, bufio.NewReaderSize(tlsConn, smallReadBuffer), nil
}
