package e2e_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testbinary"
)

// flood opens n TCP connections to addr from the loopback address src and keeps them idle until the test (or
// the returned stop) closes them. Connections the server closes are simply gone.
func flood(t *testing.T, src, addr string, n int) (stop func()) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			break // the backlog is full: the point is made
		}
		conns = append(conns, c)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		for _, c := range conns {
			c.Close()
		}
	}
	t.Cleanup(stop)
	return stop
}

// proxyAnswers sends one absolute-form request without credential to the proxy and returns the status, 0 when
// no answer came.
func proxyAnswers(addr string) int {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return 0
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	io.WriteString(c, "GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// apiHealthy reports whether /healthz answers 200.
func apiHealthy(p *testbinary.Proc) bool {
	resp, err := p.API.Get("https://" + p.APIAddr + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// eventually polls ok, bounded in count, and reports whether it ever held.
func eventually(ok func() bool) bool {
	for range 100 {
		if ok() {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// TestDescriptorExhaustionDoesNotStopTheServer pins issue 9's anonymous crash on the real binary: with the
// connection caps lifted, a few hundred idle connections exhaust a low RLIMIT_NOFILE, accept fails with EMFILE,
// and the server used to return from Serve and shut down, management API included. Now it backs off, and
// answers on both listeners once the flood is gone.
func TestDescriptorExhaustionDoesNotStopTheServer(t *testing.T) {
	bin := fxBuild(t)
	p := testbinary.ServeLimited(t, bin, t.TempDir(), 256, "--log-level", "debug",
		"--proxy-max-conns=-1", "--proxy-max-conns-per-client=-1", "--proxy-max-unauthenticated=-1",
		"--api-max-conns=-1", "--api-max-conns-per-client=-1")
	stopProxy := flood(t, "127.0.0.2", p.ProxyAddr, 400)
	stopAPI := flood(t, "127.0.0.3", p.APIAddr, 300)
	if !eventually(func() bool { return strings.Contains(p.Logs(), "accept failed; retrying") }) {
		t.Fatalf("the flood never exhausted the descriptors; logs:\n%s", tail(p.Logs()))
	}
	stopProxy()
	stopAPI()
	if !eventually(func() bool { return !p.Exited() && apiHealthy(p) }) {
		t.Fatalf("the API did not answer after the flood (exited: %v); logs:\n%s", p.Exited(), tail(p.Logs()))
	}
	if !eventually(func() bool { return proxyAnswers(p.ProxyAddr) == http.StatusProxyAuthRequired }) {
		t.Fatalf("the proxy did not answer after the flood; logs:\n%s", tail(p.Logs()))
	}
	if p.Exited() {
		t.Fatal("the server exited")
	}
}

// TestDefaultLimitsKeepBothListenersServing runs the same floods against the defaults derived from the low
// RLIMIT_NOFILE: the caps hold the floods below the descriptor limit, and the API and the proxy answer a client
// of another address while the floods are still open.
func TestDefaultLimitsKeepBothListenersServing(t *testing.T) {
	bin := fxBuild(t)
	p := testbinary.ServeLimited(t, bin, t.TempDir(), 256, "--log-level", "debug")
	flood(t, "127.0.0.2", p.ProxyAddr, 400)
	flood(t, "127.0.0.3", p.APIAddr, 300)
	if !eventually(func() bool { return apiHealthy(p) }) {
		t.Fatalf("the API did not answer during the flood; logs:\n%s", tail(p.Logs()))
	}
	p.Token = p.Login("admin", testbinary.AdminPassword) // a real management call, not only the health check
	if !eventually(func() bool { return proxyAnswers(p.ProxyAddr) == http.StatusProxyAuthRequired }) {
		t.Fatalf("the proxy did not answer during the flood; logs:\n%s", tail(p.Logs()))
	}
	if strings.Contains(p.Logs(), "accept failed") {
		t.Errorf("the caps let the flood reach the descriptor limit:\n%s", tail(p.Logs()))
	}
}

// tail is the end of a long log, for failure messages.
func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}
