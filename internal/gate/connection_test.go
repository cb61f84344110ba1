package gate

import (
	"context"
	"crypto/tls"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/connpolicy"
	"github.com/gatehouse-dev/gatehouse/internal/proxy"
)

// TestConnectionPolicyTransport: the gate applies a policy's transport, web proxy and routing rules to every
// request and CONNECT, and hands the proxy what it needs to secure and route the connection, also for a CONNECT
// that carries no credential.
func TestConnectionPolicyTransport(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const secret = "ghp_alice_secret_value"
	all := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
	star, _ := connpolicy.ParseTarget("*")
	policy := func(d connpolicy.Decision) func() *connpolicy.Policies {
		d.PolicyKey, d.PolicyName = "k", "p"
		d.Rules = []connpolicy.Rule{{Channels: []string{"http", "websocket"}}}
		p := connpolicy.New(connpolicy.Config{ServiceEnabled: true, Policies: []connpolicy.Policy{
			{Key: "k", Name: "p", Clients: all, Targets: []connpolicy.Target{star}, Decision: &d}}}, nil)
		return func() *connpolicy.Policies { return p }
	}
	on := connpolicy.WebProxy{Enabled: true}
	src := netip.MustParseAddr("127.0.0.2")
	tests := []struct {
		name   string
		d      connpolicy.Decision
		req    *proxy.AuthRequest
		denied string
		check  func(t *testing.T, g *proxy.Grant)
	}{
		{name: "client-only forwards in plain HTTP", d: connpolicy.Decision{WebProxy: on, Transport: connpolicy.Transport{Mode: connpolicy.TransportClientOnly},
			ServerTLSMinVersion: tls.VersionTLS13, SourceAddress: src},
			req: req(secret, "GET", "a.example.com", "/api/pods"),
			check: func(t *testing.T, g *proxy.Grant) {
				if g.Conn == nil || !g.Conn.UpstreamPlain || g.Conn.ServerTLSMinVersion != tls.VersionTLS13 || g.Conn.SourceAddress != src || g.Conn.Key == "" {
					t.Fatalf("connection = %+v", g.Conn)
				}
			}},
		{name: "anonymous CONNECT carries the connection", d: connpolicy.Decision{WebProxy: on, Transport: connpolicy.Transport{Mode: connpolicy.TransportClientServer},
			ClientTLSMinVersion: tls.VersionTLS13},
			req: req("", "CONNECT", "a.example.com:443", ""),
			check: func(t *testing.T, g *proxy.Grant) {
				if g == nil || g.Target != nil || g.Conn == nil || g.Conn.ClientTLSMinVersion != tls.VersionTLS13 {
					t.Fatalf("grant = %+v", g)
				}
			}},
		{name: "routes translate", d: connpolicy.Decision{WebProxy: on, Transport: connpolicy.Transport{Mode: connpolicy.TransportClientServer},
			Route: connpolicy.Route{Mode: connpolicy.RouteInband, DNSServer: "127.0.0.53:53", DNSSuffixes: []string{"corp"},
				Domains: []connpolicy.DomainPort{{Target: star}}}},
			req: req(secret, "GET", "a.example.com", "/api/pods"),
			check: func(t *testing.T, g *proxy.Grant) {
				if r := g.Conn.Route; r.Mode != proxy.RouteResolve || r.DNSServer != "127.0.0.53:53" || len(r.DNSSuffixes) != 1 {
					t.Fatalf("route = %+v", r)
				}
			}},
		{name: "disabled refuses CONNECT", d: connpolicy.Decision{WebProxy: on, Transport: connpolicy.Transport{Mode: connpolicy.TransportDisabled}},
			req: req(secret, "CONNECT", "a.example.com:443", ""), denied: "CONNECT"},
		{name: "web proxy off", d: connpolicy.Decision{Transport: connpolicy.Transport{Mode: connpolicy.TransportClientServer}},
			req: req(secret, "GET", "a.example.com", "/api/pods"), denied: "web_proxy is disabled"},
		{name: "TLS proxy required", d: connpolicy.Decision{WebProxy: connpolicy.WebProxy{Enabled: true, TLS: true}, Transport: connpolicy.Transport{Mode: connpolicy.TransportClientServer}},
			req: req(secret, "GET", "a.example.com", "/api/pods"), denied: "requires TLS to the proxy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.g.Connections = policy(tt.d)
			g, err := f.g.Authorize(ctx, tt.req)
			if tt.denied != "" {
				var de *proxy.DeniedError
				if !errors.As(err, &de) || !strings.Contains(de.Reason, tt.denied) {
					t.Fatalf("err = %v, want denial %q", err, tt.denied)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, g)
		})
	}
	f.g.Connections = policy(connpolicy.Decision{WebProxy: connpolicy.WebProxy{Enabled: true, TLS: true}, ClientTLSMinVersion: tls.VersionTLS13})
	if cfg, ok := f.g.ProxyTLS(netip.MustParseAddr("10.0.0.1")); !ok || cfg.MinVersion != tls.VersionTLS13 {
		t.Fatalf("ProxyTLS = %+v, %v", cfg, ok)
	}
	f.g.Connections = policy(connpolicy.Decision{WebProxy: on})
	if _, ok := f.g.ProxyTLS(netip.MustParseAddr("10.0.0.1")); ok {
		t.Fatal("ProxyTLS offered with no TLS web proxy policy")
	}
}

// TestConnectionPolicyChannels: every request needs the connection policy's channel rules to admit it, alice's
// (who holds role "a") and an anonymous one through an endpoint that allows unauthenticated access alike. An
// anonymous request has no user and no roles, so a rule that names roles or lists the users it admits does not
// admit it.
func TestConnectionPolicyChannels(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	all := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
	star, _ := connpolicy.ParseTarget("*")
	for _, tc := range []struct {
		name             string
		rules            []connpolicy.Rule
		alice, anonymous bool
	}{
		{"a rule for everyone", []connpolicy.Rule{{Channels: []string{"http"}}}, true, true},
		{"websocket only", []connpolicy.Rule{{Channels: []string{"websocket"}}}, false, false},
		{"a rule for alice's role", []connpolicy.Rule{{Channels: []string{"http"}, Roles: []string{"a"}}}, true, false},
		{"a rule for another role", []connpolicy.Rule{{Channels: []string{"http"}, Roles: []string{"ops"}}}, false, false},
		{"a whitelist of alice", []connpolicy.Rule{{Channels: []string{"http"}, Userlists: []*connpolicy.Userlist{{Except: []string{"alice"}}}}}, true, false},
		{"a blacklist of alice", []connpolicy.Rule{{Channels: []string{"http"}, Userlists: []*connpolicy.Userlist{{AllowAll: true, Except: []string{"alice"}}}}}, false, true},
		{"no rules", nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := connpolicy.Decision{PolicyKey: "k", PolicyName: "p", WebProxy: connpolicy.WebProxy{Enabled: true},
				Transport: connpolicy.Transport{Mode: connpolicy.TransportClientServer, AllowPlain: true}, Rules: tc.rules}
			p := connpolicy.New(connpolicy.Config{ServiceEnabled: true, Policies: []connpolicy.Policy{
				{Key: "k", Name: "p", Clients: all, Targets: []connpolicy.Target{star}, Decision: &d}}}, nil)
			f.g.Connections = func() *connpolicy.Policies { return p }
			for _, who := range []struct {
				secret, path string
				admit        bool
			}{{f.credA.Secret, "/api/pods", tc.alice}, {"", "/public/readme", tc.anonymous}} {
				g, err := f.g.Authorize(ctx, req(who.secret, "GET", "a.example.com", who.path))
				if who.admit {
					if err != nil || g == nil || g.Target == nil {
						t.Fatalf("%s: Authorize = %+v, %v; want a grant", who.path, g, err)
					}
					continue
				}
				var de *proxy.DeniedError
				if !errors.As(err, &de) || !strings.Contains(de.Reason, "channel policy") {
					t.Fatalf("%s: Authorize = %+v, %v; want a channel policy denial", who.path, g, err)
				}
			}
		})
	}
}
