// Package resilience_test runs Gatehouse under sustained, bounded load while faults are injected, and checks what
// must survive: no leaked goroutines or descriptors, memory back near its baseline, an intact store, verifiable
// trails, interrupted sessions marked, and no request at the origin that was not authorized.
//
// The short variant runs by default (about a minute). GATEHOUSE_RESILIENCE_LONG=1 runs the long one: minutes of load
// and several kill-and-restart cycles.
package resilience_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite" // PRAGMA integrity_check on the store file
)

// long reports whether the long variant was asked for.
func long() bool { return os.Getenv("GATEHOUSE_RESILIENCE_LONG") == "1" }

// pick returns short or, in the long variant, long.
func pick[T any](short, long_ T) T {
	if long() {
		return long_
	}
	return short
}

// targetToken is the target's credential; the origin counts any other Authorization as a leak.
const targetToken = "resilience-upstream-token-42"

// idHeader carries the test's own id for each request, so the origin's log can be matched to what was sent.
const idHeader = "X-Resilience-Id"

// ledger remembers every request the test sent and whether it expected Gatehouse to let it through: one byte a
// request, so a long run does not grow the test's own memory much.
type ledger struct {
	mu      sync.Mutex
	allowed []bool // index = id
}

func newLedger() *ledger { return &ledger{} }

// id registers a request before it is sent, so the origin can look it up the moment it arrives.
func (l *ledger) id(allowed bool) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.allowed = append(l.allowed, allowed)
	return "r" + strconv.Itoa(len(l.allowed)-1)
}

// lookup says whether the id was sent, and whether it was expected through.
func (l *ledger) lookup(id string) (allowed, known bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(id, "r"))
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil || !strings.HasPrefix(id, "r") || n < 0 || n >= len(l.allowed) {
		return false, false
	}
	return l.allowed[n], true
}

// origin serves plain HTTP and HTTPS with the same handler and logs every request it receives.
//
//	/ok        small JSON          /big     4 MiB, streamed in pieces
//	/upload    reads the body      /reset   head and part of a body, then a TCP reset
//	/stall     answers nothing until the request ends (bounded)
type origin struct {
	plain, tls *httptest.Server
	caPEM      string
	ledger     *ledger

	received atomic.Int64
	mu       sync.Mutex
	bad      []string // requests that should never have arrived, checked as they come
}

func startOrigin(t *testing.T, l *ledger) *origin {
	t.Helper()
	o := &origin{ledger: l}
	h := http.HandlerFunc(o.serve)
	o.plain = httptest.NewServer(h)
	o.tls = httptest.NewTLSServer(h)
	t.Cleanup(o.plain.Close)
	t.Cleanup(o.tls.Close)
	o.caPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: o.tls.Certificate().Raw}))
	return o
}

func (o *origin) serve(w http.ResponseWriter, r *http.Request) {
	o.received.Add(1)
	id, auth := r.Header.Get(idHeader), strings.Join(r.Header.Values("Authorization"), ",")
	var problem string
	switch allowed, known := o.ledger.lookup(id); {
	case !known:
		problem = fmt.Sprintf("a request the test never sent: id %q path %s", id, r.URL.Path)
	case !allowed:
		problem = fmt.Sprintf("request %s to %s, which Gatehouse should have refused", id, r.URL.Path)
	case auth != "Bearer "+targetToken:
		problem = fmt.Sprintf("request %s with Authorization %q, not the target credential", id, auth)
	}
	if problem != "" {
		o.mu.Lock()
		if len(o.bad) < 20 {
			o.bad = append(o.bad, problem)
		}
		o.mu.Unlock()
	}
	piece := []byte(strings.Repeat("x", 32<<10))
	switch r.URL.Path {
	case "/ok":
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	case "/big":
		w.Header().Set("Content-Length", fmt.Sprint(128*len(piece)))
		for range 128 {
			if _, err := w.Write(piece); err != nil {
				return
			}
		}
	case "/upload":
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, `{"received":%d}`, n)
	case "/reset":
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + strings.Repeat("r", 1000))
		brw.Flush()
		time.Sleep(10 * time.Millisecond)
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // close sends RST
		}
		conn.Close()
	case "/stall":
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
}

// check fails the test for every request the origin received that the test did not send expecting it through,
// or that arrived without exactly the target's credential.
func (o *origin) check(t *testing.T) (received int64) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range o.bad {
		t.Errorf("origin received %s", p)
	}
	return o.received.Load()
}

// proxyClient uses Gatehouse at proxyAddr from the local address src, trusting only its CA.
func proxyClient(proxyAddr, src string, pool *x509.CertPool, timeout time.Duration) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext:         d.DialContext,
		Proxy:               http.ProxyURL(&url.URL{Scheme: "http", Host: proxyAddr}),
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		MaxIdleConnsPerHost: 8,
	}}
}

// send issues one request and reports the status (0 and the error when none came back) after reading the body.
func send(ctx context.Context, c *http.Client, method, rawURL, secret, id string, body io.Reader, n int64) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, rawURL, body)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.ContentLength = n
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set(idHeader, id)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// abortUpload sends the head and a part of a Content-Length body through an absolute-form request, then closes
// the connection: a client that goes away mid-upload.
func abortUpload(proxyAddr, originHostPort, secret, id string) error {
	c, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	w := bufio.NewWriter(c)
	fmt.Fprintf(w, "POST http://%s/upload HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n%s: %s\r\nContent-Length: %d\r\n\r\n",
		originHostPort, originHostPort, secret, idHeader, id, 4<<20)
	w.Write(make([]byte, 256<<10))
	return w.Flush()
}

// abortDownload reads the start of /big and hangs up.
func abortDownload(ctx context.Context, c *http.Client, rawURL, secret, id string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", rawURL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set(idHeader, id)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, err = io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close() // unread body: the transport drops the connection
	return err
}

// integrityCheck runs PRAGMA integrity_check on the SQLite store file.
func integrityCheck(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil {
		t.Fatalf("integrity_check: %v", err)
	}
	if res != "ok" {
		t.Errorf("store integrity_check: %s", res)
	}
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// unwritable makes dir refuse new files, even to root (chattr +i; root ignores mode bits), and returns the undo.
func unwritable(t *testing.T, dir string) (undo func(), ok bool) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		return func() { os.Chmod(dir, 0o700) }, true
	}
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		t.Logf("cannot make the recordings dir unwritable as root (chattr +i: %v %s); that fault is skipped", err, out)
		return func() {}, false
	}
	var once sync.Once
	undo = func() {
		once.Do(func() {
			if out, err := exec.Command("chattr", "-i", dir).CombinedOutput(); err != nil {
				t.Errorf("chattr -i: %v %s", err, out)
			}
		})
	}
	t.Cleanup(undo)
	return undo, true
}

// waitFor polls cond until it holds or the bound passes.
func waitFor(t *testing.T, what string, bound time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(bound); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
