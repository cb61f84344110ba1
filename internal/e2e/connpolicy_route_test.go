package e2e_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// peerOrigin is a plain HTTP origin on ip that logs the peer address and Host of every request.
type peerOrigin struct {
	HostPort string
	mu       sync.Mutex
	peers    []string // "peer-ip Host"
}

func startPeerOrigin(t *testing.T, ip string) *peerOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	o := &peerOrigin{HostPort: ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		o.mu.Lock()
		o.peers = append(o.peers, host+" "+r.Host)
		o.mu.Unlock()
		w.Write([]byte("routed"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return o
}

func (o *peerOrigin) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.peers
	o.peers = nil
	return p
}

// dnsServer is a small authoritative DNS server on loopback answering A queries from a fixed table, and logging
// every name it is asked.
type dnsServer struct {
	Addr  string
	mu    sync.Mutex
	asked []string
}

func startDNS(t *testing.T, ip string, table map[string]string) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	d := &dnsServer{Addr: pc.LocalAddr().String()}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		for _, q := range req.Question {
			name := strings.TrimSuffix(strings.ToLower(q.Name), ".")
			d.mu.Lock()
			d.asked = append(d.asked, name)
			d.mu.Unlock()
			a, ok := table[name]
			switch {
			case !ok:
				m.Rcode = dns.RcodeNameError
			case q.Qtype == dns.TypeA:
				rr, err := dns.NewRR(fmt.Sprintf("%s 60 IN A %s", q.Name, a))
				if err == nil {
					m.Answer = append(m.Answer, rr)
				}
			}
		}
		w.WriteMsg(m)
	})
	srv := &dns.Server{PacketConn: pc, Handler: h}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return d
}

func (d *dnsServer) names() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.asked, ",")
}

// TestServerAddressRouting: fix dials one address whatever the client asked, nat maps the requested address into
// another network, inband resolves the requested name with the policy's DNS server and suffixes within its
// domains, and source_address fix makes upstream connections from that address. Host stays as the client asked.
func TestServerAddressRouting(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	a := newCfgAdmin(t, f.gh)
	fixed := startPeerOrigin(t, "127.0.0.1")
	natted := startPeerOrigin(t, "127.9.9.5")
	svc := startPeerOrigin(t, "127.0.0.3")
	_, svcPort, _ := net.SplitHostPort(svc.HostPort)
	_, natPort, _ := net.SplitHostPort(natted.HostPort)
	resolver := startDNS(t, "127.0.0.53", map[string]string{"svc.corp.test": "127.0.0.3", "api.corp.test": "127.0.0.3", "vault.corp.test": "127.0.0.3"})

	hosts := []string{"127.0.0.9:9", "10.9.9.5:" + natPort, "svc:" + svcPort, "api.corp.test:" + svcPort, "vault.corp.test:" + svcPort}
	var eps []map[string]any
	for _, h := range hosts {
		eps = append(eps, map[string]any{"host": h, "protocols": []string{"http"}, "methods": []string{"GET"}, "paths": []string{"/**"}})
	}
	routed := f.gh.Create(proxyAPI+"/api-targets", f.adm, map[string]any{"name": "routed", "roles": []map[string]string{{"id": f.roleID}},
		"authorized_endpoints": eps, "target_credential": map[string]any{"type": "token", "bearer_token": "routed-token"}})
	c := f.credential(routed, "routed", nil)
	route := func(sa map[string]any) { a.editDefault(func(b map[string]any) { b["server_address"] = sa }) }
	get := func(t *testing.T, hostPort string) int {
		t.Helper()
		return plainGet(t, f, "", "http://"+hostPort+"/x", c.Secret)
	}
	want := func(t *testing.T, o *peerOrigin, peers ...string) {
		t.Helper()
		if got := strings.Join(o.take(), ";"); got != strings.Join(peers, ";") {
			t.Fatalf("origin %s saw %q, want %q", o.HostPort, got, strings.Join(peers, ";"))
		}
	}

	t.Run("original dials what the client asked", func(t *testing.T) {
		if st := get(t, "127.0.0.9:9"); st != http.StatusBadGateway && st != http.StatusGatewayTimeout {
			t.Fatalf("nothing listens on the original address: %d, want 502", st)
		}
		want(t, fixed)
	})
	t.Run("fix", func(t *testing.T) {
		host, port, _ := net.SplitHostPort(fixed.HostPort)
		var p int
		fmt.Sscan(port, &p)
		route(map[string]any{"selection": "fix", "address": host, "port": p})
		if st := get(t, "127.0.0.9:9"); st != http.StatusOK {
			t.Fatalf("fix: %d", st)
		}
		want(t, fixed, "127.0.0.1 127.0.0.9:9")
	})
	t.Run("nat", func(t *testing.T) {
		route(map[string]any{"selection": "nat", "network": "127.0.0.0/8"})
		if st := get(t, "10.9.9.5:"+natPort); st != http.StatusOK {
			t.Fatalf("nat: %d", st)
		}
		want(t, natted, "127.0.0.1 10.9.9.5:"+natPort)
	})
	t.Run("inband with dns_server and dns_suffixes", func(t *testing.T) {
		route(map[string]any{"selection": "inband", "dns_server": resolver.Addr, "dns_suffixes": []string{"corp.test"},
			"domains": []map[string]any{
				{"domain": map[string]any{"selection": "domain", "value": "*.corp.test"}, "port": 0},
				{"domain": map[string]any{"selection": "domain", "value": "svc"}, "port": 0},
			},
			"exception_domains": []map[string]any{{"domain": map[string]any{"selection": "domain", "value": "vault.corp.test"}, "port": 0}}})
		if st := get(t, "api.corp.test:"+svcPort); st != http.StatusOK {
			t.Fatalf("inband name: %d", st)
		}
		if st := get(t, "svc:"+svcPort); st != http.StatusOK {
			t.Fatalf("inband short name: %d", st)
		}
		want(t, svc, "127.0.0.1 api.corp.test:"+svcPort, "127.0.0.1 svc:"+svcPort)
		if names := resolver.names(); !strings.Contains(names, "api.corp.test") || !strings.Contains(names, "svc.corp.test") {
			t.Fatalf("the policy's DNS server was asked %q", names)
		}
		if st := get(t, "vault.corp.test:"+svcPort); st != http.StatusForbidden {
			t.Fatalf("exception domain: %d, want 403", st)
		}
		if st := get(t, "127.0.0.9:9"); st != http.StatusForbidden {
			t.Fatalf("outside the domains: %d, want 403", st)
		}
		want(t, svc)
		if names := resolver.names(); strings.Contains(names, "vault") {
			t.Fatalf("an excepted name was resolved: %q", names)
		}
	})
	t.Run("source_address fix", func(t *testing.T) {
		a.editDefault(func(b map[string]any) {
			b["source_address"] = map[string]any{"selection": "fix", "address": "127.0.0.2"}
		})
		route(map[string]any{"selection": "nat", "network": "127.0.0.0/8"})
		if st := get(t, "10.9.9.5:"+natPort); st != http.StatusOK {
			t.Fatalf("nat from 127.0.0.2: %d", st)
		}
		want(t, natted, "127.0.0.2 10.9.9.5:"+natPort)
	})
	t.Run("refused values", func(t *testing.T) {
		body := func(extra map[string]any) map[string]any {
			b := map[string]any{"name": "default", "active": true, "network": map[string]any{"clients": []string{"0.0.0.0/0"}, "targets": []string{"*"}}}
			for k, v := range extra {
				b[k] = v
			}
			return b
		}
		a.refused("PUT", cfgDefaultConn, body(map[string]any{"source_address": map[string]any{"selection": "original"}}), "NOT_SUPPORTED", "source_address.selection")
		a.refused("PUT", cfgDefaultConn, body(map[string]any{"server_address": map[string]any{"selection": "original", "custom_dns": "x"}}), "NOT_SUPPORTED", "server_address.custom_dns")
		a.refused("PUT", cfgDefaultConn, body(map[string]any{"server_address": map[string]any{"selection": "original", "address": "127.0.0.1"}}), "SemanticError", "server_address.address")
		a.refused("PUT", cfgDefaultConn, body(map[string]any{"server_address": map[string]any{"selection": "nat", "dns_suffixes": []string{"x.test"}, "network": "10.0.0.0/8"}}), "SemanticError", "server_address.dns_suffixes")
		a.refused("PUT", cfgDefaultConn, body(map[string]any{"server_address": map[string]any{"selection": "inband", "dns_server": "dns.example",
			"domains": []map[string]any{{"domain": map[string]any{"selection": "domain", "value": "*"}, "port": 0}}}}), "SemanticError", "server_address.dns_server")
		a.refused("PUT", cfgDefaultConn, body(map[string]any{"server_address": map[string]any{"selection": "inband",
			"domains": []map[string]any{{"domain": map[string]any{"selection": "address", "value": "a.example"}, "port": 0}}}}), "SemanticError", "server_address.domains[0].domain.value")
		a.refused("PUT", cfgDefaultConn, body(map[string]any{"source_address": map[string]any{"selection": "box_address", "address": "127.0.0.2"}}), "SemanticError", "source_address.address")
	})
}
