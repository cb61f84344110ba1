package connpolicy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	on := WebProxy{Enabled: true}
	tlsProxy := WebProxy{Enabled: true, TLS: true}
	cs := Transport{Mode: TransportClientServer, AllowPlain: true}
	strict := Transport{Mode: TransportClientServer}
	inband := Route{Mode: RouteInband,
		Domains:    []DomainPort{{Target: mustTarget(t, "*.corp.example"), Port: 443}, {Target: mustTarget(t, "10.0.0.0/8")}},
		Exceptions: []DomainPort{{Target: mustTarget(t, "vault.corp.example")}, {Target: mustTarget(t, "10.9.0.0/16"), Port: 22}}}
	plainReq := Request{Scheme: "http", Host: "a.example", Port: 80}
	tlsReq := Request{Scheme: "https", Host: "a.example", Port: 443}
	connect := Request{Connect: true, Host: "a.example", Port: 443}
	tests := []struct {
		name    string
		d       Decision
		r       Request
		refused string // a word of the reason, "" when allowed
	}{
		{"defaults allow plain", Decision{WebProxy: on, Transport: cs}, plainReq, ""},
		{"defaults allow CONNECT", Decision{WebProxy: on, Transport: cs}, connect, ""},
		{"web proxy disabled", Decision{WebProxy: WebProxy{}, Transport: cs}, tlsReq, "web_proxy is disabled"},
		{"TLS proxy required", Decision{WebProxy: tlsProxy, Transport: cs}, tlsReq, "requires TLS to the proxy"},
		{"TLS proxy satisfied", Decision{WebProxy: tlsProxy, Transport: cs}, Request{Scheme: "https", Host: "a", Port: 1, ProxyTLS: true}, ""},
		{"plain proxy required", Decision{WebProxy: on, Transport: cs}, Request{Scheme: "http", Host: "a", Port: 1, ProxyTLS: true}, "plain connection to the proxy"},
		{"disabled refuses CONNECT", Decision{WebProxy: on, Transport: Transport{Mode: TransportDisabled}}, connect, "CONNECT"},
		{"disabled allows plain", Decision{WebProxy: on, Transport: Transport{Mode: TransportDisabled}}, plainReq, ""},
		{"client-only refuses plain", Decision{WebProxy: on, Transport: Transport{Mode: TransportClientOnly}}, plainReq, "client-only"},
		{"client-only allows TLS", Decision{WebProxy: on, Transport: Transport{Mode: TransportClientOnly}}, tlsReq, ""},
		{"client-server strict refuses plain", Decision{WebProxy: on, Transport: strict}, plainReq, "allow_non_encrypted"},
		{"client-server strict allows TLS", Decision{WebProxy: on, Transport: strict}, tlsReq, ""},
		{"inband domain and port", Decision{WebProxy: on, Transport: cs, Route: inband}, Request{Scheme: "https", Host: "api.corp.example", Port: 443}, ""},
		{"inband wrong port", Decision{WebProxy: on, Transport: cs, Route: inband}, Request{Scheme: "https", Host: "api.corp.example", Port: 8443}, "inband"},
		{"inband exception", Decision{WebProxy: on, Transport: cs, Route: inband}, Request{Scheme: "https", Host: "VAULT.corp.example.", Port: 443}, "inband"},
		{"inband address, any port", Decision{WebProxy: on, Transport: cs, Route: inband}, Request{Scheme: "http", Host: "10.1.1.1", Port: 8080}, ""},
		{"inband address exception on its port", Decision{WebProxy: on, Transport: cs, Route: inband}, Request{Connect: true, Host: "10.9.1.1", Port: 22}, "inband"},
		{"inband address exception other port", Decision{WebProxy: on, Transport: cs, Route: inband}, Request{Connect: true, Host: "10.9.1.1", Port: 23}, ""},
		{"inband outside", Decision{WebProxy: on, Transport: cs, Route: inband}, Request{Scheme: "http", Host: "example.org", Port: 80}, "inband"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.d.PolicyName = "p"
			err := tc.d.Check(tc.r)
			if tc.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ref *Refusal
			if !errors.As(err, &ref) || !strings.Contains(ref.Reason, tc.refused) || !strings.Contains(ref.Reason, "connection policy p") {
				t.Fatalf("got %v, want a refusal mentioning %q", err, tc.refused)
			}
		})
	}
}

func TestProxyTLSAndUpstreamKey(t *testing.T) {
	plain := policy(t, "plain", pfx("10.0.0.0/8"), []string{"*"})
	plain.Decision = &Decision{WebProxy: WebProxy{Enabled: true}}
	secure := policy(t, "secure", pfx("10.0.0.0/8", "192.168.0.0/16"), []string{"*"})
	secure.Decision = &Decision{WebProxy: WebProxy{Enabled: true, TLS: true}}
	p := New(Config{ServiceEnabled: true, Policies: []Policy{plain, secure}}, nil)
	if _, ok := p.ProxyTLS(netip.MustParseAddr("10.1.1.1")); !ok {
		t.Error("10.1.1.1 matches a TLS policy after a plain one: TLS must be possible")
	}
	if _, ok := p.ProxyTLS(netip.MustParseAddr("172.16.0.1")); ok {
		t.Error("172.16.0.1 matches no TLS policy")
	}
	a := Decision{ServerTLSMinVersion: 0x0303}
	b := a
	b.Route = Route{Mode: RouteFix, Fix: "127.0.0.1:1"}
	c := a
	c.Transport.TrustedCAsPEM = "x"
	d := a
	d.SourceAddress = netip.MustParseAddr("127.0.0.2")
	keys := map[string]bool{a.UpstreamKey(): true, b.UpstreamKey(): true, c.UpstreamKey(): true, d.UpstreamKey(): true}
	if len(keys) != 4 {
		t.Errorf("upstream keys collide: %v", keys)
	}
	if a.UpstreamKey() != (&Decision{ServerTLSMinVersion: 0x0303, PolicyName: "other"}).UpstreamKey() {
		t.Error("the key depends on more than upstream settings")
	}
}
