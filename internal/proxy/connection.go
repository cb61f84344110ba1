package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Connection is what a connection policy says about how a connection is
// secured and routed. Its zero value is the default: TLS 1.2 or later on
// both sides, intercepted tunnels shown leaves of Server.Certs, the target
// verified with its own settings only, and the requested address dialled
// from an address the system picks.
type Connection struct {
	// Key identifies the upstream settings below (TLS version, trusted CAs,
	// route, source address); pooled target connections are shared only
	// between requests with equal keys.
	Key string
	// ClientTLSMinVersion and ServerTLSMinVersion are the lowest TLS
	// versions accepted from the client and spoken to the target; below
	// TLS 1.2 (or zero) means TLS 1.2.
	ClientTLSMinVersion, ServerTLSMinVersion uint16
	// ClientCerts shows clients the certificate of intercepted tunnels; nil
	// means Server.Certs.
	ClientCerts CertSource
	// UpstreamPlain sends requests the client made over TLS to the target in
	// plain HTTP, to the same host and port.
	UpstreamPlain bool
	// TrustedCAs, if set, is a CA list the target's certificate must chain
	// to as well: in addition to, never instead of, the target's own check.
	TrustedCAs *x509.CertPool
	// Route decides the address to dial.
	Route Route
	// SourceAddress, if valid, is the local address to connect from.
	SourceAddress netip.Addr
}

// RouteMode selects how Route picks the address to dial.
type RouteMode string

// The route modes; the zero value dials the requested address.
const (
	RouteOriginal RouteMode = ""
	// RouteNAT maps the requested address into Route.NAT.
	RouteNAT RouteMode = "nat"
	// RouteFix always dials Route.Fix.
	RouteFix RouteMode = "fix"
	// RouteResolve resolves the requested name with Route.DNSServer and
	// Route.DNSSuffixes.
	RouteResolve RouteMode = "resolve"
)

// Route is where upstream connections go. Host header and TLS server name
// always stay as the client asked.
type Route struct {
	Mode RouteMode
	// Fix is host:port for RouteFix.
	Fix string
	// NAT is the network for RouteNAT; the requested address keeps its host
	// bits.
	NAT netip.Prefix
	// DNSServer is host:port of the DNS server for RouteResolve; "" uses the
	// system resolver.
	DNSServer string
	// DNSSuffixes are appended in order to a requested name without a dot;
	// the first that resolves is used.
	DNSSuffixes []string
}

func tlsMin(v uint16) uint16 { return max(v, tls.VersionTLS12) }

// ProxyTLSConfig is how the proxy listener terminates TLS from a client that
// uses it as an HTTPS proxy.
type ProxyTLSConfig struct {
	// Certs shows the client the proxy's certificate; nil means Server.Certs.
	Certs CertSource
	// MinVersion is the lowest TLS version accepted; zero means TLS 1.2.
	MinVersion uint16
}

// resolveRoute maps the address the transport would dial (host:port) to the
// one the connection policy says to dial.
func (s *Server) resolveRoute(ctx context.Context, r Route, addr string) (string, error) {
	if r.Mode == RouteOriginal {
		return addr, nil
	}
	if r.Mode == RouteFix {
		return r.Fix, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("route %s: %w", addr, err)
	}
	resolver := net.DefaultResolver
	if r.DNSServer != "" {
		d := &net.Dialer{Timeout: s.dialTimeout()}
		server := r.DNSServer
		resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, server)
		}}
	}
	ip, err := resolveHost(ctx, resolver, host, r.DNSSuffixes)
	if err != nil {
		return "", err
	}
	if r.Mode == RouteNAT {
		if ip, err = natTranslate(r.NAT, ip); err != nil {
			return "", err
		}
	}
	return net.JoinHostPort(ip.String(), port), nil
}

// resolveHost returns host's address: an IP literal as it is, else the first
// address of the first candidate name that resolves. A name without a dot
// tries each suffix first, then itself.
func resolveHost(ctx context.Context, res *net.Resolver, host string, suffixes []string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return ip.Unmap(), nil
	}
	var names []string
	if !strings.Contains(strings.TrimSuffix(host, "."), ".") {
		for _, s := range suffixes {
			names = append(names, host+"."+strings.Trim(s, "."))
		}
	}
	names = append(names, host)
	var errs []error
	for _, n := range names {
		ips, err := res.LookupNetIP(ctx, "ip", n)
		if err == nil && len(ips) > 0 {
			return ips[0].Unmap(), nil
		}
		if err == nil {
			err = &net.DNSError{Err: "no addresses", Name: n, IsNotFound: true}
		}
		errs = append(errs, err)
	}
	// The first error keeps its type (a *net.DNSError maps to 502 "target host not found").
	return netip.Addr{}, fmt.Errorf("resolve %s: %w", host, errors.Join(errs...))
}

// natTranslate maps addr into n keeping the bits below n's prefix length.
func natTranslate(n netip.Prefix, addr netip.Addr) (netip.Addr, error) {
	if addr.BitLen() != n.Addr().BitLen() {
		return netip.Addr{}, &net.AddrError{Err: "nat network and target are of different address families", Addr: addr.String()}
	}
	a, b := addr.AsSlice(), n.Masked().Addr().AsSlice()
	for i := range a {
		keep := min(max(n.Bits()-8*i, 0), 8) // bits of this byte taken from the network
		mask := byte(uint16(0xff00) >> keep)
		a[i] = b[i]&mask | a[i]&^mask
	}
	out, _ := netip.AddrFromSlice(a)
	return out, nil
}

// verifyTrusted checks a target's chain against a connection policy's
// trusted CA list, for tls.Config.VerifyConnection.
func verifyTrusted(pool *x509.CertPool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("target sent no certificate")
		}
		opts := x509.VerifyOptions{Roots: pool, DNSName: cs.ServerName, Intermediates: x509.NewCertPool(), CurrentTime: time.Now()}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
			return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates,
				Err: fmt.Errorf("not trusted by the connection policy's trusted CA list: %w", err)}
		}
		return nil
	}
}
