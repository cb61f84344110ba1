package connpolicy

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// CertSource supplies the certificate shown to a client; *ca.CA and an uploaded identity satisfy it.
type CertSource interface {
	GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error)
}

// TransportMode is transport_security.selection.
type TransportMode string

// The transport security modes of a connection policy.
const (
	// TransportDisabled is plain HTTP only: no TLS tunnels, so nothing is intercepted.
	TransportDisabled TransportMode = "disabled"
	// TransportClientOnly is TLS with the client and plain HTTP to the target.
	TransportClientOnly TransportMode = "client-only"
	// TransportClientServer is TLS on both sides; AllowPlain also admits plain HTTP requests.
	TransportClientServer TransportMode = "client-server"
)

// Transport is transport_security: end-to-end encryption of the sessions.
type Transport struct {
	Mode TransportMode
	// AllowPlain admits plain HTTP requests in client-server mode.
	AllowPlain bool
	// TrustedCAs, when not nil, is the trusted CA list a target's certificate must also chain to (on top of the
	// target's own verification, which a connection policy never turns off). TrustedCAsPEM is its source.
	TrustedCAs    *x509.CertPool
	TrustedCAsPEM string
	// Certs shows clients the certificate of intercepted tunnels; nil means Gatehouse's own CA.
	Certs CertSource
}

// WebProxy is web_proxy: whether clients may use the proxy at all, and whether they must reach it over TLS.
type WebProxy struct {
	Enabled bool
	// TLS requires the client's connection to the proxy to be TLS (an HTTPS proxy); false requires plain TCP.
	TLS bool
	// Certs shows clients the proxy's certificate; nil means a leaf of Gatehouse's own CA.
	Certs CertSource
}

// RouteMode is server_address.selection.
type RouteMode string

// The routing modes of a connection policy.
const (
	RouteOriginal RouteMode = "original"
	RouteNAT      RouteMode = "nat"
	RouteFix      RouteMode = "fix"
	RouteInband   RouteMode = "inband"
)

// Route is server_address: which address upstream connections go to.
type Route struct {
	Mode RouteMode
	// Fix is host:port for RouteFix.
	Fix string
	// NAT is the network RouteNAT maps a requested address into (keeping its host bits).
	NAT netip.Prefix
	// DNSServer (host:port, "" for the system resolver) and DNSSuffixes resolve targets in RouteInband.
	DNSServer   string
	DNSSuffixes []string
	// Domains and Exceptions limit the targets of RouteInband.
	Domains, Exceptions []DomainPort
}

// DomainPort is one entry of an inband domain list; Port 0 matches every port.
type DomainPort struct {
	Target Target
	Port   int
}

func (d DomainPort) matches(host string, addr netip.Addr, port int) bool {
	return (d.Port == 0 || d.Port == port) && d.Target.Matches(host, addr)
}

// Request is what Check needs to know about a request or a CONNECT.
type Request struct {
	// Connect is true for a CONNECT (a TLS tunnel to be intercepted, or plain HTTP inside one).
	Connect bool
	// Scheme is what the client speaks to the target, "http" or "https"; ignored for a CONNECT.
	Scheme string
	// Host and Port are the requested target.
	Host string
	Port int
	// ProxyTLS reports that the client reached the proxy itself over TLS.
	ProxyTLS bool
}

// Refusal is a request the connection policy does not allow; Reason is safe to show the client.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return r.Reason }

// Check applies the policy's web proxy, transport security and inband routing rules to a request; it returns a
// *Refusal naming the setting that refuses it, or nil.
func (d *Decision) Check(r Request) error {
	refuse := func(format string, args ...any) error {
		return &Refusal{Reason: fmt.Sprintf("connection policy %s: ", d.PolicyName) + fmt.Sprintf(format, args...)}
	}
	switch {
	case !d.WebProxy.Enabled:
		return refuse("web_proxy is disabled")
	case d.WebProxy.TLS && !r.ProxyTLS:
		return refuse("web_proxy.transport_security requires TLS to the proxy (use an https:// proxy URL)")
	case !d.WebProxy.TLS && r.ProxyTLS:
		return refuse("web_proxy.transport_security requires a plain connection to the proxy (use an http:// proxy URL)")
	}
	switch {
	case r.Connect && d.Transport.Mode == TransportDisabled:
		return refuse("transport_security is disabled: TLS tunnels (CONNECT) are refused, send plain http:// requests")
	case !r.Connect && r.Scheme != "https" && d.Transport.Mode == TransportClientOnly:
		return refuse("transport_security client-only requires TLS from the client")
	case !r.Connect && r.Scheme != "https" && d.Transport.Mode == TransportClientServer && !d.Transport.AllowPlain:
		return refuse("transport_security client-server without allow_non_encrypted requires TLS from the client")
	}
	if d.Route.Mode == RouteInband {
		host, addr := normalizeHost(r.Host)
		in := slices.ContainsFunc(d.Route.Domains, func(x DomainPort) bool { return x.matches(host, addr, r.Port) })
		if !in || slices.ContainsFunc(d.Route.Exceptions, func(x DomainPort) bool { return x.matches(host, addr, r.Port) }) {
			return refuse("server_address inband does not allow the target %s:%d", host, r.Port)
		}
	}
	return nil
}

// UpstreamPlain reports whether requests the client sends over TLS go to the target in plain HTTP.
func (d *Decision) UpstreamPlain() bool { return d.Transport.Mode == TransportClientOnly }

// UpstreamKey identifies everything of the decision that shapes upstream connections (TLS version, trusted CAs,
// routing, source address): connections may be pooled between requests whose keys are equal.
func (d *Decision) UpstreamKey() string {
	h := sha256.New()
	fmt.Fprintf(h, "%d\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s", d.ServerTLSMinVersion, d.Transport.TrustedCAsPEM,
		d.Route.Mode, d.Route.Fix, d.Route.NAT, d.Route.DNSServer, strings.Join(d.Route.DNSSuffixes, ","), d.SourceAddress)
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// ProxyTLS reports whether a client at this address may reach the proxy over TLS, and which policy's web proxy
// certificate (WebProxy.Certs, nil for Gatehouse's own CA) and client TLS version apply: the first active policy
// whose clients include it and whose web proxy uses TLS decides. Whether the requests that follow are allowed is still checked per request.
func (p *Policies) ProxyTLS(client netip.Addr) (*Decision, bool) {
	if !p.enabled {
		return nil, false
	}
	client = client.Unmap().WithZone("")
	for i := range p.conns {
		c := &p.conns[i]
		if c.matchesClient(client) && c.Decision.WebProxy.Enabled && c.Decision.WebProxy.TLS {
			return c.Decision, true
		}
	}
	return nil, false
}
