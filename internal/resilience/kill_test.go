package resilience_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testbinary"
)

// proc is the real binary (internal/testbinary) with this package's helpers on top.
type proc struct{ *testbinary.Proc }

func buildBinary(t *testing.T) string { return testbinary.Build(t) }

func serve(t *testing.T, bin, dataDir string) *proc { return &proc{testbinary.Serve(t, bin, dataDir)} }

type session struct {
	ID                string `json:"id"`
	Status            string `json:"status"`
	TerminationReason string `json:"termination_reason"`
}

func (p *proc) sessions() []session {
	var list struct {
		Items []session `json:"items"`
	}
	p.Call("GET", connsAPI+"/connections?limit=1000", nil, http.StatusOK, &list)
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
	role := gh.Create(rolesAPI+"/roles", map[string]any{"name": "api-users", "permissions": []string{"api-proxy-credentials-own"}})
	user := gh.Create(usersAPI+"/users", map[string]any{"username": "alice", "password": "Alice-pass-1234567", "enabled": true})
	gh.Call("PUT", rolesAPI+"/users/"+user+"/roles", []map[string]string{{"id": role}}, http.StatusOK, nil)
	tlsHost := org.tls.Listener.Addr().String()
	target := gh.Create(proxyAPI+"/api-targets", map[string]any{
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
	gh.Call("POST", credPath, map[string]any{"name": "laptop", "target": map[string]string{"id": target}}, http.StatusCreated, &id)
	secret := strings.TrimSpace(string(gh.CallAs(gh.Login("alice", "Alice-pass-1234567"), "GET", credPath+"/"+id.ID+"/secret", nil, http.StatusOK, nil)))
	var conf struct {
		Chain string `json:"ca_certificate_chain"`
	}
	gh.Call("GET", proxyAPI+"/conf", nil, http.StatusOK, &conf)
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
				c := proxyClient(gh.ProxyAddr, fmt.Sprintf("127.0.0.%d", 10+w), pool, 10*time.Second)
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
		gh.Kill()
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
		if st, err := send(context.Background(), proxyClient(gh.ProxyAddr, "127.0.0.1", pool, 10*time.Second), "GET", base+"/ok", secret, l.id(true), nil, 0); st != http.StatusOK {
			t.Errorf("cycle %d: request after the restart: %d %v", cycle, st, err)
		}
	}

	// Every trail verifies, closed or interrupted, with the CLI an auditor would use.
	var ids []string
	for _, s := range gh.sessions() {
		ids = append(ids, s.ID)
	}
	gh.Stop()
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
