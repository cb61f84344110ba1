package gate

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/gatehouse-dev/gatehouse/internal/connpolicy"
	"github.com/gatehouse-dev/gatehouse/internal/proxy"
)

// connCache holds the proxy's view of each decision of one connection-policy snapshot, built once per snapshot.
type connCache struct {
	policies *connpolicy.Policies
	conns    map[*connpolicy.Decision]*proxy.Connection
	// sessions are the grants' SessionPolicy of each decision, shared by every grant of it (read-only).
	sessions map[*connpolicy.Decision]*proxy.SessionPolicy
}

// connCacheHolder keeps the cache of the current snapshot; requests read it without a lock.
type connCacheHolder struct {
	mu sync.Mutex // serializes rebuilds
	c  atomic.Pointer[connCache]
}

// connection returns the proxy.Connection of d, a decision of policies.
func (h *connCacheHolder) connection(policies *connpolicy.Policies, d *connpolicy.Decision) *proxy.Connection {
	c := h.c.Load()
	if c == nil || c.policies != policies {
		h.mu.Lock()
		if c = h.c.Load(); c == nil || c.policies != policies {
			c = &connCache{policies: policies, conns: map[*connpolicy.Decision]*proxy.Connection{},
				sessions: map[*connpolicy.Decision]*proxy.SessionPolicy{}}
			for _, x := range policies.Decisions() {
				c.conns[x] = toConnection(x)
				c.sessions[x] = toSessionPolicy(x)
			}
			h.c.Store(c)
		}
		h.mu.Unlock()
	}
	if pc, ok := c.conns[d]; ok {
		return pc
	}
	return toConnection(d)
}

// sessionPolicy returns the SessionPolicy of d, made once per snapshot when d is a decision of the one cached
// (connection builds it for the snapshot the request was admitted under), else made now.
func (h *connCacheHolder) sessionPolicy(d *connpolicy.Decision) *proxy.SessionPolicy {
	if c := h.c.Load(); c != nil {
		if sp, ok := c.sessions[d]; ok {
			return sp
		}
	}
	return toSessionPolicy(d)
}

// toSessionPolicy translates what a connection policy decides about API sessions into the proxy's terms.
func toSessionPolicy(d *connpolicy.Decision) *proxy.SessionPolicy {
	sp := &proxy.SessionPolicy{Name: d.PolicyName, Key: d.PolicyKey, IdleTimeout: d.IdleTimeout, MaxLifetime: d.SessionTimeout,
		BodyLimit: int(d.BodyLimit), RedactHeaders: d.RedactHeaders, NoIndex: !d.Index}
	if d.BodyLimit == 0 {
		sp.BodyLimit = -1
	}
	return sp
}

// toConnection translates what a connection policy decides about transport and routing into the proxy's terms.
func toConnection(d *connpolicy.Decision) *proxy.Connection {
	c := &proxy.Connection{
		Key:                 d.UpstreamKey(),
		ClientTLSMinVersion: d.ClientTLSMinVersion,
		ServerTLSMinVersion: d.ServerTLSMinVersion,
		ClientCerts:         d.Transport.Certs,
		UpstreamPlain:       d.UpstreamPlain(),
		TrustedCAs:          d.Transport.TrustedCAs,
		SourceAddress:       d.SourceAddress,
	}
	switch d.Route.Mode {
	case connpolicy.RouteFix:
		c.Route = proxy.Route{Mode: proxy.RouteFix, Fix: d.Route.Fix}
	case connpolicy.RouteNAT:
		c.Route = proxy.Route{Mode: proxy.RouteNAT, NAT: d.Route.NAT}
	case connpolicy.RouteInband:
		c.Route = proxy.Route{Mode: proxy.RouteResolve, DNSServer: d.Route.DNSServer, DNSSuffixes: d.Route.DNSSuffixes}
	}
	return c
}

// ProxyTLS tells the proxy listener whether a client may reach it over TLS and with which certificate and
// minimum version, from the committed connection policies; every request is still checked against its own policy.
func (g *Gate) ProxyTLS(client netip.Addr) (proxy.ProxyTLSConfig, bool) {
	if g.Connections == nil {
		return proxy.ProxyTLSConfig{}, false
	}
	d, ok := g.Connections().ProxyTLS(client)
	if !ok {
		return proxy.ProxyTLSConfig{}, false
	}
	return proxy.ProxyTLSConfig{Certs: d.WebProxy.Certs, MinVersion: d.ClientTLSMinVersion}, true
}
