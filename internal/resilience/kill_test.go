package resilience_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
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
	"syscall"
	"testing"
	"time"
)

const adminPassword = "Resilience-admin-1"

// buildBinary compiles gatehouse from the module root, as an operator runs it.
func buildBinary(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "gatehouse")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/gatehouse")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(out)))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return bin
}

// proc is `gatehouse serve` as a child process.
type proc struct {
	t                  *testing.T
	cmd                *exec.Cmd
	done               chan struct{}
	apiAddr, proxyAddr string
	api                *http.Client
	token              string
	log                string
}

func serve(t *testing.T, bin, dataDir string) *proc {
	t.Helper()
	var addrs []string
	var held []net.Listener // held until both are picked, so they differ
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	p := &proc{t: t, apiAddr: addrs[0], proxyAddr: addrs[1], done: make(chan struct{}), log: filepath.Join(t.TempDir(), "serve.log")}
	logf, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	p.cmd = exec.Command(bin, "serve", "--data-dir", dataDir, "--api-listen", p.apiAddr, "--proxy-listen", p.proxyAddr)
	p.cmd.Env = append(os.Environ(), "GATEHOUSE_ADMIN_PASSWORD="+adminPassword)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	for _, ln := range held {
		ln.Close()
	}
	return p.start(dataDir)
}

func (p *proc) start(dataDir string) *proc {
	t := p.t
	t.Helper()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start gatehouse: %v", err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if p.api == nil {
			if b, err := os.ReadFile(filepath.Join(dataDir, "ca", "root.crt")); err == nil {
				pool := x509.NewCertPool()
				if pool.AppendCertsFromPEM(b) {
					p.api = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 20 * time.Second}
				}
			}
		}
		if p.api != nil {
			if resp, err := p.api.Get("https://" + p.apiAddr + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
		}
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.log)
			t.Fatalf("gatehouse exited during start:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gatehouse did not become healthy")
		}
		time.Sleep(50 * time.Millisecond)
	}
	form := url.Values{"grant_type": {"password"}, "client_id": {"gatehouse-cli"}, "username": {"admin"}, "password": {adminPassword}}
	resp, err := p.api.PostForm("https://"+p.apiAddr+"/auth/api/v1/oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("login: %d %v", resp.StatusCode, err)
	}
	p.token = tok.AccessToken
	return p
}

func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.t.Errorf("gatehouse did not stop within 20s of SIGTERM")
		p.kill()
	}
}

func (p *proc) call(method, path string, body any, want int, out any) []byte {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "https://"+p.apiAddr+path, rd)
	req.Header.Set("Authorization", "Bearer "+p.token)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.api.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		p.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			p.t.Fatalf("decode %s: %v", b, err)
		}
	}
	return b
}

type session struct {
	ID                string `json:"id"`
	Status            string `json:"status"`
	TerminationReason string `json:"termination_reason"`
}

func (p *proc) sessions() []session {
	var list struct {
		Items []session `json:"items"`
	}
	p.call("GET", connsAPI+"/connections?limit=1000", nil, http.StatusOK, &list)
	return list.Items
}

// TestKillUnderLoad SIGKILLs the real binary while clients keep it busy, restarts it on the same data dir, and
// checks that the store is intact, every trail verifies, the sessions the kill cut off are marked interrupted,
// the proxy serves again, and the origin never saw an unauthorized request.
func TestKillUnderLoad(t *testing.T) {
	bin := buildBinary(t)
	dataDir := t.TempDir()
	l := newLedger()
	org := startOrigin(t, l)
	gh := serve(t, bin, dataDir)
	role := gh.create(rolesAPI+"/roles", map[string]any{"name": "api-users", "permissions": []string{"api-proxy-credentials-own"}})
	user := gh.create(usersAPI+"/users", map[string]any{"username": "alice", "password": "Alice-pass-1234567", "enabled": true})
	gh.call("PUT", rolesAPI+"/users/"+user+"/roles", []map[string]string{{"id": role}}, http.StatusOK, nil)
	tlsHost := org.tls.Listener.Addr().String()
	target := gh.create(proxyAPI+"/api-targets", map[string]any{
		"name": "audited", "roles": []map[string]string{{"id": role}}, "audit_enabled": true, "tls_trust_anchors": org.caPEM,
		"authorized_endpoints": []map[string]any{
			{"host": tlsHost, "protocols": []string{"https"}, "methods": []string{"GET", "POST"}, "paths": []string{"/ok", "/big", "/upload"}},
		},
		"target_credential": map[string]any{"type": "token", "bearer_token": targetToken},
	})
	credPath := proxyAPI + "/users/" + user + "/client-credentials"
	var id struct {
		ID string `json:"id"`
	}
	gh.call("POST", credPath, map[string]any{"name": "laptop", "target": map[string]string{"id": target}}, http.StatusCreated, &id)
	secret := strings.TrimSpace(string(gh.call("GET", credPath+"/"+id.ID+"/secret", nil, http.StatusOK, nil)))
	var conf struct {
		Chain string `json:"ca_certificate_chain"`
	}
	gh.call("GET", proxyAPI+"/conf", nil, http.StatusOK, &conf)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(conf.Chain)) {
		t.Fatal("no proxy CA in /conf")
	}
	base := "https://" + tlsHost

	cycles := pick(1, 5)
	for cycle := range cycles {
		// Several source addresses make several sessions, all open when the kill comes.
		var ok atomic.Int64
		ctx, stop := context.WithTimeout(context.Background(), 30*time.Second)
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := proxyClient(gh.proxyAddr, fmt.Sprintf("127.0.0.%d", 10+w), pool, 10*time.Second)
				defer c.CloseIdleConnections()
				for i := 0; ctx.Err() == nil && i < 100_000; i++ {
					var st int
					var err error
					switch i % 3 {
					case 0:
						st, err = send(ctx, c, "GET", base+"/ok", secret, l.id(true), nil, 0)
					case 1:
						st, err = send(ctx, c, "POST", base+"/upload", secret, l.id(true), bytes.NewReader(make([]byte, 64<<10)), 64<<10)
					default:
						st, err = send(ctx, c, "GET", base+"/big", secret, l.id(true), nil, 0)
					}
					if err != nil && st == 0 {
						return // the server is gone
					}
					if st == http.StatusOK {
						ok.Add(1)
					}
				}
			}()
		}
		waitFor(t, "load under way", 20*time.Second, func() bool { return ok.Load() >= 60 })
		time.Sleep(pick(time.Second, 10*time.Second))
		open := 0
		for _, s := range gh.sessions() {
			if s.Status == "CONNECTED" {
				open++
			}
		}
		gh.kill()
		wg.Wait()
		stop()
		if open == 0 {
			t.Fatalf("cycle %d: no session was open at the kill", cycle)
		}
		integrityCheck(t, filepath.Join(dataDir, "gatehouse.db"))

		gh = serve(t, bin, dataDir)
		interrupted := 0
		for _, s := range gh.sessions() {
			switch {
			case s.Status == "CONNECTED":
				// Only sessions opened after the restart may be open; the load has stopped, so there are none.
				t.Errorf("cycle %d: session %s still CONNECTED after the restart", cycle, s.ID)
			case strings.Contains(s.TerminationReason, "interrupted"):
				interrupted++
			}
		}
		if interrupted < open {
			t.Errorf("cycle %d: %d sessions marked interrupted, but %d were open at the kill", cycle, interrupted, open)
		}
		if st, err := send(context.Background(), proxyClient(gh.proxyAddr, "127.0.0.1", pool, 10*time.Second), "GET", base+"/ok", secret, l.id(true), nil, 0); st != http.StatusOK {
			t.Errorf("cycle %d: request after the restart: %d %v", cycle, st, err)
		}
	}

	// Every trail verifies, closed or interrupted, with the CLI an auditor would use.
	var ids []string
	for _, s := range gh.sessions() {
		ids = append(ids, s.ID)
	}
	gh.stop()
	cmd := exec.Command(bin, append([]string{"trail", "verify", "--data-dir", dataDir}, ids...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("trail verify: %v\n%s", err, out)
	}
	for _, id := range ids {
		if !strings.Contains(string(out), "OK "+id) {
			t.Errorf("trail %s not reported OK:\n%s", id, out)
		}
	}
	integrityCheck(t, filepath.Join(dataDir, "gatehouse.db"))
	t.Logf("origin received %d requests over %d kill cycles", org.check(t), cycles)
}

func (p *proc) create(path string, body any) string {
	p.t.Helper()
	var out struct {
		ID string `json:"id"`
	}
	p.call("POST", path, body, http.StatusCreated, &out)
	return out.ID
}
