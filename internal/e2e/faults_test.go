package e2e_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// fxResetOrigin answers every request with the head and first bytes of a long body, then resets the connection.
func fxResetOrigin(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("r", 1000))
				time.Sleep(20 * time.Millisecond) // let the head reach Gatehouse before the reset
				c.(*net.TCPConn).SetLinger(0)     // close sends RST instead of FIN
			}()
		}
	}()
	return ln.Addr().String()
}

// fxStreamOrigin holds /stall open and streams /stream without end, and reports on done when either sees its
// request context end (Gatehouse cancelled the upstream request).
func fxStreamOrigin(t *testing.T) (hostPort string, done <-chan string) {
	t.Helper()
	ch := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bound := time.After(30 * time.Second)
		switch r.URL.Path {
		case "/stall":
			select {
			case <-r.Context().Done():
				ch <- "stall"
			case <-bound:
			}
		case "/stream":
			w.Header().Set("Content-Type", "application/octet-stream")
			chunk := []byte(strings.Repeat("s", 32<<10))
			for {
				if _, err := w.Write(chunk); err != nil {
					ch <- "stream"
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					ch <- "stream"
					return
				case <-bound:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), ch
}

// fxWaitDone waits (bounded) for the origin to report that its request named what ended.
func fxWaitDone(t *testing.T, done <-chan string, what string) {
	t.Helper()
	select {
	case got := <-done:
		if got != what {
			t.Errorf("origin reported %q, want %q", got, what)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("origin never saw its %s request cancelled", what)
	}
}

// fxError decodes the proxy's JSON error body.
func fxError(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Code string `json:"error_code"`
		Msg  string `json:"error_message"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Code == "" || e.Msg == "" {
		t.Errorf("not a JSON error body: %q", body)
	}
	return e.Code
}

// fxUnwritable makes dir refuse new files, even to root (the immutable attribute; root ignores mode bits), and
// returns the function that undoes it. It skips the test where neither works.
func fxUnwritable(t *testing.T, dir string) func() {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		return func() { os.Chmod(dir, 0o700) }
	}
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot make the recordings dir unwritable as root (chattr +i: %v %s)", err, out)
	}
	restored := false
	undo := func() {
		if !restored {
			restored = true
			if out, err := exec.Command("chattr", "-i", dir).CombinedOutput(); err != nil {
				t.Errorf("chattr -i: %v %s", err, out)
			}
		}
	}
	t.Cleanup(undo) // else TempDir cleanup cannot remove it
	return undo
}

// TestFaults checks what clients get and what survives when origins misbehave, clients go away and recording
// breaks, and that none of it leaks goroutines in the server.
func TestFaults(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	live := startOrigin(t, nil)
	dead := fxFreeAddr(t) // nothing listens there: connections are refused
	reset := fxResetOrigin(t)
	stream, streamDone := fxStreamOrigin(t)
	endpoint := func(host string) map[string]any {
		return map[string]any{"host": host, "protocols": []string{"http"}, "methods": []string{"GET"}, "paths": []string{"/**"}}
	}
	faulty := f.gh.Create(proxyAPI+"/api-targets", f.adm, map[string]any{
		"name": "faulty", "roles": []map[string]string{{"id": f.roleID}}, "audit_enabled": true,
		"authorized_endpoints": []map[string]any{endpoint(live.HostPort), endpoint(dead), endpoint(reset), endpoint(stream)},
		"target_credential":    map[string]any{"type": "token", "bearer_token": alphaToken},
	})
	c := f.credential(faulty, "faults", nil)
	client := f.client(false)
	get := func(t *testing.T, hostPort, path string) (int, string) {
		return f.in(t).do(client, "GET", "http://"+hostPort+path, c.Secret, "")
	}
	if st, body := get(t, live.HostPort, "/ok"); st != http.StatusOK {
		t.Fatalf("warm-up: %d %s", st, body)
	}
	session := f.session(c.ID)
	// The recording case below uses alpha and beta; reaching them once here puts their upstream pools in the
	// baseline.
	first := f.credential(f.alpha, "before-failure", nil)
	beta := f.credential(f.beta, "unaudited", nil)
	audited := "https://" + f.https.HostPort + "/api/items/1"
	unaudited := "https://" + f.other.HostPort + "/anything"
	for _, r := range []struct{ url, secret string }{{audited, first.Secret}, {unaudited, beta.Secret}} {
		if st, body := f.do(client, "GET", r.url, r.secret, ""); st != http.StatusOK {
			t.Fatalf("warm-up %s: %d %s", r.url, st, body)
		}
	}
	// Baseline after the server, origins and pools are up; each fault below runs several times, so a leak of even
	// one goroutine per request stands out from the slack.
	runtime.GC()
	baseline := runtime.NumGoroutine()
	const rounds = 5

	stillThere := func(t *testing.T) {
		t.Helper()
		if st, body := get(t, live.HostPort, "/ok"); st != http.StatusOK {
			t.Fatalf("request after the fault: %d %s", st, body)
		}
		if id := f.in(t).session(c.ID); id != session {
			t.Errorf("the fault replaced session %s with %s", session, id)
		}
	}

	t.Run("origin refuses connections", func(t *testing.T) {
		for range rounds {
			st, body := get(t, dead, "/x")
			if st != http.StatusBadGateway || fxError(t, body) != "UPSTREAM_UNREACHABLE" {
				t.Errorf("refused origin: %d %s; want 502 UPSTREAM_UNREACHABLE", st, body)
			}
		}
		stillThere(t)
	})

	t.Run("origin resets mid-body", func(t *testing.T) {
		for range rounds {
			req, _ := http.NewRequest("GET", "http://"+reset+"/big", nil)
			req.Header.Set("Authorization", "Bearer "+c.Secret)
			resp, err := client.Do(req)
			if err != nil {
				continue // also acceptable: the proxy dropped the connection before the head
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil {
				t.Errorf("client read a complete body of %d bytes from a reset origin (status %d)", n, resp.StatusCode)
			}
		}
		stillThere(t)
	})

	t.Run("client timeout cancels the upstream request", func(t *testing.T) {
		// Gatehouse's own response-header timeout (30s) is not configurable, so the client gives up first.
		impatient := f.client(false)
		impatient.Timeout = 300 * time.Millisecond
		for range rounds {
			req, _ := http.NewRequest("GET", "http://"+stream+"/stall", nil)
			req.Header.Set("Authorization", "Bearer "+c.Secret)
			if resp, err := impatient.Do(req); err == nil {
				resp.Body.Close()
				t.Fatalf("stalled request answered %d", resp.StatusCode)
			}
			fxWaitDone(t, streamDone, "stall")
		}
		stillThere(t)
	})

	t.Run("client disconnect mid-download cancels the upstream request", func(t *testing.T) {
		for range rounds {
			req, _ := http.NewRequest("GET", "http://"+stream+"/stream", nil)
			req.Header.Set("Authorization", "Bearer "+c.Secret)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.CopyN(io.Discard, resp.Body, 256<<10); err != nil {
				t.Fatalf("download: %v", err)
			}
			resp.Body.Close() // unread body: the transport closes the connection
			fxWaitDone(t, streamDone, "stream")
		}
		stillThere(t)
	})

	t.Run("recording dir unwritable", func(t *testing.T) {
		f := f.in(t)
		undo := fxUnwritable(t, filepath.Join(f.gh.Cfg.DataDir, "recordings"))

		// A new session cannot get a trail; from then on every audited request is refused, open sessions too.
		second := f.credential(f.alpha, "during-failure", nil)
		f.https.Reset()
		for _, cr := range []cred{second, first, second} {
			st, body := f.do(client, "GET", audited, cr.Secret, "")
			if st != http.StatusServiceUnavailable || fxError(t, body) != "RECORDING_UNAVAILABLE" {
				t.Errorf("audited request while recording is broken: %d %s; want 503 RECORDING_UNAVAILABLE", st, body)
			}
		}
		if n := len(f.https.Requests()); n != 0 {
			t.Errorf("the audited origin got %d requests while recording was broken", n)
		}
		if st, body := f.do(client, "GET", unaudited, first.Secret, ""); st != http.StatusForbidden {
			// alpha's credential is not beta's: refused as a policy decision, not because of recording.
			t.Errorf("alpha credential on beta: %d %s", st, body)
		}
		if st, body := f.do(client, "GET", unaudited, beta.Secret, ""); st != http.StatusOK {
			t.Errorf("unaudited target while recording is broken: %d %s", st, body)
		}
		status := func() string {
			var s map[string]any
			f.gh.JSON("GET", proxyAPI+"/status", f.adm, nil, http.StatusOK, &s)
			r, _ := s["recording"].(string)
			return r
		}
		if s := status(); !strings.HasPrefix(s, "failed") {
			t.Errorf("status recording = %q while broken, want failed: ...", s)
		}
		if !strings.Contains(f.gh.Logs.String(), "recording failed") {
			t.Errorf("no log line says recording failed")
		}

		// The manager probes every second; once a probe succeeds the audited targets open again.
		undo()
		fxWait(t, "recording healthy in status", func() bool { return status() == "ok" })
		for _, cr := range []cred{second, first} {
			if st, body := f.do(client, "GET", audited, cr.Secret, ""); st != http.StatusOK {
				t.Errorf("audited request after recovery: %d %s", st, body)
			}
		}
	})

	t.Run("no goroutine leak", func(t *testing.T) {
		client.CloseIdleConnections()
		var n int
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			// Pooled idle connections (proxy to origin, test client to API) are pools, not leaks.
			f.gh.Server.CloseIdleUpstreamConnections()
			f.gh.Client.CloseIdleConnections()
			runtime.GC()
			if n = runtime.NumGoroutine(); n <= baseline+10 {
				return
			}
		}
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("%d goroutines, baseline %d:\n%s", n, baseline, buf)
	})
}
