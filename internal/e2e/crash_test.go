package e2e_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testbinary"
)

// fxProc is the real binary (internal/testbinary) with this package's helpers on top.
type fxProc struct{ *testbinary.Proc }

// fxBuild compiles the real gatehouse binary.
func fxBuild(t *testing.T) string { return testbinary.Build(t) }

// fxFreeAddr returns a loopback address with a port that was free a moment ago.
func fxFreeAddr(t *testing.T) string { return testbinary.FreeAddrs(t, 1)[0] }

// fxServe starts gatehouse serve on dataDir and waits until it is healthy.
func fxServe(t *testing.T, bin, dataDir string) *fxProc {
	return &fxProc{testbinary.Serve(t, bin, dataDir, "--log-level", "debug")}
}

// in returns p reporting to t, for use inside a subtest.
func (p *fxProc) in(t *testing.T) *fxProc { return &fxProc{p.Proc.In(t)} }

func (p *fxProc) connection(id string) connection {
	var c connection
	p.Call("GET", connsAPI+"/connections/"+id, nil, http.StatusOK, &c)
	return c
}

// fxTrail is the JSON trail page of a connection.
type fxTrail struct {
	Count int `json:"count"`
	Items []struct {
		Method string `json:"method"`
		URL    string `json:"url"`
		Status int    `json:"status"`
	} `json:"items"`
	Closed *struct {
		Reason    string `json:"reason"`
		Exchanges int64  `json:"exchanges"`
	} `json:"closed"`
	Interrupted *struct {
		Reason    string `json:"reason"`
		TornBytes int    `json:"torn_bytes"`
	} `json:"interrupted"`
}

func (p *fxProc) trail(id string) fxTrail {
	var tr fxTrail
	p.Call("GET", connsAPI+"/connections/"+id+"/trail?limit=1000", nil, http.StatusOK, &tr)
	return tr
}

// fxVerify runs `gatehouse trail verify` against the data dir and returns its output and exit code.
func fxVerify(t *testing.T, bin, dataDir string, ids ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"trail", "verify", "--data-dir", dataDir}, ids...)...)
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		t.Fatalf("trail verify: %v", err)
	}
	return string(out), 0
}

// fxProxyClient is a Go client using the proxy at proxyAddr, connecting from the local address src, trusting only
// the proxy CA.
func fxProxyClient(proxyAddr, src string, pool *x509.CertPool) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	tr := &http.Transport{
		Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: proxyAddr}),
		DialContext:     d.DialContext,
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// fxGet sends one proxied GET with the secret and reports whether it came back 200 with a complete body.
func fxGet(ctx context.Context, c *http.Client, rawURL, secret string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", rawURL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return nil
}

// TestCrashWhileRecording kills the real binary with SIGKILL while one session is recording and another has been
// terminated, restarts it on the same data dir, and checks that every trail still verifies, the closed one as
// closed with every request counted and the killed one marked interrupted.
func TestCrashWhileRecording(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gatehouse binary")
	}
	bin := fxBuild(t)
	dataDir := t.TempDir()
	ca := newTestCA(t)
	cert := ca.leaf(t)
	org := startOrigin(t, &cert)

	gh := fxServe(t, bin, dataDir)
	role := gh.Create(rolesAPI+"/roles", map[string]any{"name": "api-users", "permissions": []string{"api-proxy-credentials-own"}})
	user := gh.Create(usersAPI+"/users", map[string]any{"username": "alice", "password": userPassword, "enabled": true})
	gh.Call("PUT", rolesAPI+"/users/"+user+"/roles", []map[string]string{{"id": role}}, http.StatusOK, nil)
	target := gh.Create(proxyAPI+"/api-targets", map[string]any{
		"name": "audited", "roles": []map[string]string{{"id": role}}, "audit_enabled": true, "tls_trust_anchors": ca.pem,
		"authorized_endpoints": []map[string]any{
			{"host": org.HostPort, "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/api/**"}},
		},
		"target_credential": map[string]any{"type": "token", "bearer_token": alphaToken},
	})
	credPath := proxyAPI + "/users/" + user + "/client-credentials"
	credID := gh.Create(credPath, map[string]any{"name": "laptop", "target": map[string]string{"id": target}})
	secret := string(gh.CallAs(gh.Login("alice", userPassword), "GET", credPath+"/"+credID+"/secret", nil, http.StatusOK, nil))
	var conf struct {
		Chain string `json:"ca_certificate_chain"`
	}
	gh.Call("GET", proxyAPI+"/conf", nil, http.StatusOK, &conf)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(conf.Chain)) {
		t.Fatalf("no proxy CA in /conf: %q", conf.Chain)
	}
	base := "https://" + org.HostPort + "/api/items/"

	// Session A, from 127.0.0.1: a known number of requests, then terminated so its trail is closed and sealed.
	const nA = 25
	clientA := fxProxyClient(gh.ProxyAddr, "127.0.0.1", pool)
	for i := range nA {
		if err := fxGet(context.Background(), clientA, fmt.Sprint(base, i), secret); err != nil {
			t.Fatalf("session A request %d: %v", i, err)
		}
	}
	var sessA string
	var list struct {
		Items []connection `json:"items"`
	}
	gh.Call("GET", connsAPI+"/connections?limit=100", nil, http.StatusOK, &list)
	for _, c := range list.Items {
		if c.ClientAddress == "127.0.0.1" && c.Status == "CONNECTED" {
			sessA = c.ID
		}
	}
	if sessA == "" {
		t.Fatalf("no open session from 127.0.0.1: %+v", list.Items)
	}
	gh.Call("POST", connsAPI+"/terminate/connection/"+sessA, nil, http.StatusOK, nil)
	fxWait(t, "session A stored as TERMINATED", func() bool { return gh.connection(sessA).Status == "TERMINATED" })

	// Session B, from 127.0.0.2, with a second credential: the termination of A cools A's credential down from
	// every address. Two clients loop until the server dies under them.
	credB := gh.Create(credPath, map[string]any{"name": "desktop", "target": map[string]string{"id": target}})
	secret = string(gh.Call("GET", credPath+"/"+credB+"/secret", nil, http.StatusOK, nil))
	const workers = 2
	clientB := fxProxyClient(gh.ProxyAddr, "127.0.0.2", pool)
	var okB, triedB atomic.Int64
	ctx, stopB := context.WithTimeout(context.Background(), 30*time.Second)
	defer stopB()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil && i < 5000; i++ {
				triedB.Add(1)
				if fxGet(ctx, clientB, fmt.Sprint(base, "b", w, "-", i), secret) != nil {
					return // the server is gone
				}
				okB.Add(1)
			}
		}()
	}
	fxWait(t, "session B under way", func() bool { return okB.Load() >= 40 })
	var sessB string
	gh.Call("GET", connsAPI+"/connections?limit=100", nil, http.StatusOK, &list)
	for _, c := range list.Items {
		if c.ClientAddress == "127.0.0.2" && c.Status == "CONNECTED" {
			sessB = c.ID
		}
	}
	gh.Kill()
	wg.Wait()
	stopB()
	clientA.CloseIdleConnections()
	clientB.CloseIdleConnections()
	if sessB == "" {
		t.Fatalf("no open session from 127.0.0.2 before the kill: %+v", list.Items)
	}
	if !strings.Contains(gh.Logs(), "api session opened") {
		t.Errorf("server log shows no session; logs:\n%s", gh.Logs())
	}

	// Before the restart nobody has repaired anything: A is closed and verifies, B has no end record yet.
	out, code := fxVerify(t, bin, dataDir, sessA, sessB)
	if code != 0 || !strings.Contains(out, "OK "+sessA+": ") || !strings.Contains(out, "OK "+sessB+": ") {
		t.Fatalf("trail verify after the kill: exit %d\n%s", code, out)
	}
	if !strings.Contains(fxLine(out, sessA), "closed") || strings.Contains(fxLine(out, sessB), "closed") {
		t.Errorf("after the kill, want A closed and B still open:\n%s", out)
	}

	gh2 := fxServe(t, bin, dataDir)

	t.Run("closed session", func(t *testing.T) {
		gh2 := gh2.in(t)
		c := gh2.connection(sessA)
		if c.Status != "TERMINATED" || c.Requests != nA {
			t.Errorf("session A after restart: status %s, requests %d; want TERMINATED with the client's %d", c.Status, c.Requests, nA)
		}
		tr := gh2.trail(sessA)
		if tr.Count != nA || tr.Closed == nil || tr.Closed.Exchanges != nA || tr.Interrupted != nil {
			t.Errorf("trail of A: count %d, closed %+v, interrupted %+v; want %d exchanges and a close record", tr.Count, tr.Closed, tr.Interrupted, nA)
		}
		for i, ex := range tr.Items {
			if want := fmt.Sprint(base, i); ex.URL != want || ex.Status != http.StatusOK {
				t.Errorf("exchange %d: %s %d, want %s 200", i, ex.URL, ex.Status, want)
			}
		}
	})

	t.Run("interrupted session", func(t *testing.T) {
		gh2 := gh2.in(t)
		c := gh2.connection(sessB)
		if c.Status != "DISCONNECTED" || !strings.Contains(c.TerminationReason, "interrupted") {
			t.Errorf("session B after restart: status %s, reason %q; want DISCONNECTED, interrupted", c.Status, c.TerminationReason)
		}
		tr := gh2.trail(sessB)
		if tr.Interrupted == nil || tr.Closed != nil {
			t.Fatalf("trail of B: closed %+v, interrupted %+v; want an interrupted record", tr.Closed, tr.Interrupted)
		}
		// Each worker's connection is serial, so at most its last answered request was not yet recorded when the
		// process died; and nothing the clients never sent can be in the trail.
		if n := int64(tr.Count); n < okB.Load()-workers || n > triedB.Load() {
			t.Errorf("trail of B has %d exchanges; clients got %d answers out of %d tries", n, okB.Load(), triedB.Load())
		}
	})

	t.Run("local verify", func(t *testing.T) {
		out, code := fxVerify(t, bin, dataDir)
		if code != 0 {
			t.Fatalf("trail verify: exit %d\n%s", code, out)
		}
		t.Logf("trail verify:\n%s", out)
		if l := fxLine(out, sessA); !strings.Contains(l, "closed") {
			t.Errorf("A: %q, want closed", l)
		}
		if l := fxLine(out, sessB); !strings.Contains(l, "interrupted") {
			t.Errorf("B: %q, want interrupted", l)
		}
	})

	t.Run("new session after restart", func(t *testing.T) {
		c := fxProxyClient(gh2.ProxyAddr, "127.0.0.2", pool)
		defer c.CloseIdleConnections()
		if err := fxGet(context.Background(), c, base+"after", secret); err != nil {
			t.Fatalf("request after restart: %v", err)
		}
	})

	gh2.Stop()

	// The verifier must be able to fail: one changed byte in the closed trail is caught.
	t.Run("tampering detected", func(t *testing.T) {
		path := filepath.Join(dataDir, "recordings", sessA+".trail")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(b, []byte("/api/items/1"))
		if i < 0 {
			t.Fatalf("trail of A does not name /api/items/1")
		}
		b[i+len("/api/items/")] = '9'
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		out, code := fxVerify(t, bin, dataDir, sessA)
		if code != 1 || !strings.Contains(out, "FAIL "+sessA) {
			t.Errorf("tampered trail: exit %d\n%s", code, out)
		}
	})

	t.Run("verify never creates a key", func(t *testing.T) {
		empty := t.TempDir()
		out, code := fxVerify(t, bin, empty)
		if code == 0 {
			t.Errorf("verify on an empty dir succeeded:\n%s", out)
		}
		if _, err := os.Stat(filepath.Join(empty, "master.key")); err == nil {
			t.Errorf("verify created a master key")
		}
	})
}

// fxLine returns the verify output line about a session.
func fxLine(out, id string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, " "+id+":") {
			return l
		}
	}
	return ""
}

// fxWait polls cond (bounded) and fails the test if it never holds.
func fxWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
