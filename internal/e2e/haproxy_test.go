package e2e_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
	proxyproto "github.com/pires/go-proxyproto"
)

// startHAProxy runs Debian's haproxy in TCP mode on a loopback port, forwarding to backend with a PROXY v2
// header, and returns its address once it accepts connections.
func startHAProxy(t *testing.T, backend string) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/haproxy"); serr != nil {
			t.Fatalf("haproxy is required (scripts/test.sh installs it): %v", err)
		}
		bin = "/usr/sbin/haproxy"
	}
	// Take a free port; haproxy binds it a moment later.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf(`global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend lb
    bind %s
    default_backend gatehouse
backend gatehouse
    server gh %s send-proxy-v2
`, addr, backend)
	dir := t.TempDir()
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd := exec.Command(bin, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("haproxy exited: %s", out.String())
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not listen on %s: %s", addr, out.String())
		}
	}
}

// dialerFrom binds outgoing connections to a loopback source address, so a client can be 127.0.0.2 or 127.0.0.3.
func dialerFrom(ip string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
}

// TestHAProxyProxyProtocol puts a real haproxy with send-proxy-v2 in front of a Gatehouse that trusts it: the
// client's own address (127.0.0.2) is what source_address rules and the connection list see. A PROXY header from
// a source that is not trusted is refused, so a client cannot claim an address it does not have.
func TestHAProxyProxyProtocol(t *testing.T) {
	f := newFixture(t, testserver.Options{Configure: func(c *config.Config) {
		c.ProxyProtocolTrusted = []string{"127.0.0.1/32"}
	}})
	lb := startHAProxy(t, f.gh.Server.ProxyAddr())
	from2 := f.credential(f.alpha, "from-127.0.0.2", map[string]any{"source_address": []string{"127.0.0.2/32"}})
	from3 := f.credential(f.alpha, "from-127.0.0.3", map[string]any{"source_address": []string{"127.0.0.3/32"}})

	viaLB := func(ip string) *http.Client {
		tr := &http.Transport{
			Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: lb}),
			DialContext:     dialerFrom(ip).DialContext,
			TLSClientConfig: &tls.Config{RootCAs: f.proxyPool},
		}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 20 * time.Second}
	}
	for _, tt := range []struct {
		name string
		c    cred
		o    *origin
		url  string
		want int
	}{
		{"https admitted", from2, f.https, f.https.URL + "/api/items", 200},
		{"http admitted", from2, f.http, f.http.URL + "/api/items", 200},
		{"https other address refused", from3, f.https, f.https.URL + "/api/items", 403},
		{"http other address refused", from3, f.http, f.http.URL + "/api/items", 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := f.in(t)
			tt.o.Reset()
			if st, body := f.do(viaLB("127.0.0.2"), "GET", tt.url, tt.c.Secret, ""); st != tt.want {
				t.Fatalf("status %d, want %d: %s", st, tt.want, body)
			}
			if tt.want != 200 {
				if got := tt.o.Requests(); len(got) != 0 {
					t.Errorf("a refused request reached the origin: %+v", got)
				}
				return
			}
			checkInjected(t, only(t, tt.o), alphaToken, tt.c.Secret)
		})
	}
	cn := f.waitConnection(from2.ID, func(c connection) bool { return c.Status == "CONNECTED" })
	if cn.ClientAddress != "127.0.0.2" {
		t.Errorf("connection list shows client %q, want 127.0.0.2 from the PROXY header", cn.ClientAddress)
	}

	// Directly, without a header, 127.0.0.2 is itself: admitted. With a forged header claiming 127.0.0.2 from
	// 127.0.0.3 (not a trusted load balancer), the connection is refused and nothing reaches the origin.
	for _, tt := range []struct {
		name, from string
		forge      bool
		want       bool // admitted
	}{
		{"direct, no header", "127.0.0.2", false, true},
		{"forged header from an untrusted source", "127.0.0.3", true, false},
		{"forged header from the claimed address itself", "127.0.0.2", true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f.http.Reset()
			status, err := rawAbsoluteForm(f, tt.from, tt.forge, from2.Secret)
			if tt.want {
				if err != nil || status != 200 {
					t.Fatalf("direct request: %d %v", status, err)
				}
				checkInjected(t, only(t, f.http), alphaToken, from2.Secret)
				return
			}
			if err == nil && status == 200 {
				t.Errorf("a forged PROXY header was honoured (status %d)", status)
			}
			if got := f.http.Requests(); len(got) != 0 {
				t.Errorf("a request with a forged PROXY header reached the origin: %+v", got)
			}
		})
	}
}

// rawAbsoluteForm connects to the proxy from the source address, optionally writes a PROXY v2 header claiming
// 127.0.0.2, and sends an absolute-form request to the HTTP origin; it returns the status, or the error when the
// proxy closed the connection instead of answering.
func rawAbsoluteForm(f *fixture, from string, forge bool, secret string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := dialerFrom(from).DialContext(ctx, "tcp", f.gh.Server.ProxyAddr())
	if err != nil {
		f.t.Fatalf("dial from %s: %v", from, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if forge {
		dst := netip.MustParseAddrPort(f.gh.Server.ProxyAddr())
		h := &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.TCPv4,
			SourceAddr:      &net.TCPAddr{IP: net.ParseIP("127.0.0.2"), Port: 40000},
			DestinationAddr: &net.TCPAddr{IP: dst.Addr().AsSlice(), Port: int(dst.Port())}}
		if _, err := h.WriteTo(conn); err != nil {
			return 0, err
		}
	}
	req := "GET " + f.http.URL + "/api/items HTTP/1.1\r\nHost: " + f.http.HostPort + "\r\nProxy-Authorization: Bearer " + secret +
		"\r\nConnection: close\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
