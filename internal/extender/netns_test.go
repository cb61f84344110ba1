package extender_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testca"
	"github.com/gatehouse-dev/gatehouse/internal/testnet"
	"golang.org/x/sys/unix"
)

// netns is a network namespace made for one test: only loopback and one end of a veth pair whose /30 exists
// between it and this host, so nothing it does leaves the machine and the host cannot reach its loopback.
type netns struct {
	name   string
	hostIP string // this host's end of the veth pair
	nsIP   string
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// usedIDs are the namespace numbers taken in this test binary; tests run one at a time under testnet.Exclusive.
var usedIDs = map[int]bool{}

// locked are the tests holding the network lock; the tests that make namespaces do not run in parallel.
var locked = map[*testing.T]bool{}

func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the extender namespace tests create network namespaces and must run as root (as they do in CI)")
	}
	if !locked[t] { // the lock is a flock per open file: a second take by the same test would wait for itself
		testnet.Exclusive(t) // a new veth pair disturbs other tests' browsers (ERR_NETWORK_CHANGED)
		locked[t] = true
		t.Cleanup(func() { delete(locked, t) })
	}
	id := mrand.IntN(250) + 1
	for usedIDs[id] { // a test may make two; their /30s must differ
		id = mrand.IntN(250) + 1
	}
	usedIDs[id] = true
	n := &netns{name: fmt.Sprintf("ghx-%d-%d", os.Getpid(), id), hostIP: fmt.Sprintf("10.77.%d.1", id), nsIP: fmt.Sprintf("10.77.%d.2", id)}
	hostVeth, nsVeth := fmt.Sprintf("ghxh%d", id), fmt.Sprintf("ghxn%d", id)
	run(t, "ip", "netns", "add", n.name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.name).Run() })
	run(t, "ip", "link", "add", hostVeth, "type", "veth", "peer", "name", nsVeth)
	t.Cleanup(func() { exec.Command("ip", "link", "del", hostVeth).Run() })
	run(t, "ip", "link", "set", nsVeth, "netns", n.name)
	run(t, "ip", "addr", "add", n.hostIP+"/30", "dev", hostVeth)
	run(t, "ip", "link", "set", hostVeth, "up")
	run(t, "ip", "netns", "exec", n.name, "ip", "addr", "add", n.nsIP+"/30", "dev", nsVeth)
	run(t, "ip", "netns", "exec", n.name, "ip", "link", "set", nsVeth, "up")
	run(t, "ip", "netns", "exec", n.name, "ip", "link", "set", "lo", "up")
	return n
}

// routeTo lets the namespace reach one more address of this host (another namespace's host end) over its veth.
func (n *netns) routeTo(t *testing.T, ip string) {
	t.Helper()
	run(t, "ip", "netns", "exec", n.name, "ip", "route", "add", ip+"/32", "via", n.hostIP)
}

// listenAt opens a TCP listener on addr inside the namespace. A socket belongs to the namespace it was made
// in, so one OS thread enters the namespace just for the socket call; if it cannot return, the thread is left
// locked and Go retires it with its goroutine.
func (n *netns) listenAt(t *testing.T, addr string) net.Listener {
	t.Helper()
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer orig.Close()
		target, err := os.Open("/var/run/netns/" + n.name)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: err}
			return
		}
		ln, err := net.Listen("tcp", addr)
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{ln, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("listen in %s: %v", n.name, r.err)
	}
	t.Cleanup(func() { r.ln.Close() })
	return r.ln
}

// privateOrigin is an HTTPS API on 127.0.0.1 inside the namespace; it counts requests and keeps the last
// Authorization header it got.
type privateOrigin struct {
	addr  string
	hits  atomic.Int64
	auth  atomic.Value
	caPEM string
}

func startPrivateOrigin(t *testing.T, n *netns, names ...string) *privateOrigin {
	t.Helper()
	return startPrivateOriginAt(t, n, "127.0.0.1:0", false, names...)
}

// startPrivateOriginAt starts the origin on addr inside n; closeEach makes it close every connection after one
// answer, so each request needs a new dial through an extender.
func startPrivateOriginAt(t *testing.T, n *netns, addr string, closeEach bool, names ...string) *privateOrigin {
	t.Helper()
	ca := testca.New(t, "private origin CA")
	leaf := ca.Server(t, append([]string{"127.0.0.1"}, names...)...)
	o := &privateOrigin{caPEM: string(ca.PEM)}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		o.auth.Store(r.Header.Get("Authorization"))
		if closeEach {
			w.Header().Set("Connection", "close")
		}
		fmt.Fprintf(w, `{"private":true,"path":%q}`, r.URL.Path)
	}))
	srv.Listener.Close()
	srv.Listener = n.listenAt(t, addr)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLS}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	o.addr = srv.Listener.Addr().String()
	return o
}

// agent is `gatehouse extender` running inside the namespace.
type agent struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

func startAgent(t *testing.T, bin string, n *netns, gateway, caFile, token string, extra ...string) *agent {
	t.Helper()
	args := append([]string{"netns", "exec", n.name, bin, "extender", "--gateway", gateway, "--ca", caFile}, extra...)
	a := &agent{cmd: exec.Command("ip", args...), out: &bytes.Buffer{}, done: make(chan struct{})}
	a.cmd.Env = os.Environ()
	if token != "" {
		a.cmd.Env = append(a.cmd.Env, "GATEHOUSE_EXTENDER_TOKEN="+token)
	}
	a.cmd.Stdout, a.cmd.Stderr = a.out, a.out
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.cmd.Wait(); close(a.done) }()
	t.Cleanup(a.kill)
	return a
}

// kill ends the agent the way a crash or a lost host would: SIGKILL, no goodbye.
func (a *agent) kill() {
	a.cmd.Process.Kill()
	<-a.done
}

// exited waits a bounded time for the agent to end on its own and reports whether it did.
func (a *agent) exited(within time.Duration) bool {
	select {
	case <-a.done:
		return true
	case <-time.After(within):
		return false
	}
}

func proxyClient(t *testing.T, proxyAddr, proxyCAPEM string) *http.Client {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(proxyCAPEM)) {
		t.Fatal("no proxy CA")
	}
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: proxyAddr}),
		TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

func get(t *testing.T, c *http.Client, rawURL, secret string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", rawURL, nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func writeFile(t *testing.T, name, content string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
