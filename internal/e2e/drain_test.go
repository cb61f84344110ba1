package e2e_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testbinary"
)

// TestSIGTERMDrains sends SIGTERM to the real binary while a request waits on a slow origin. The listener must stop
// accepting, the request in flight must finish with the origin's answer (it used to be aborted with 403
// SESSION_TERMINATED), a new request on a connection still open must be answered 503 with Retry-After without
// reaching the origin, the trail must be sealed, and the process must exit 0.
func TestSIGTERMDrains(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gatehouse binary")
	}
	bin := fxBuild(t)
	dataDir := t.TempDir()
	ca := newTestCA(t)
	cert := ca.leaf(t)
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	var fast atomic.Int64
	org := startOriginHandler(t, &cert, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/slow" {
			arrived <- struct{}{}
			select {
			case <-release:
			case <-time.After(time.Minute): // bounded, should the test fail first
			}
			w.Write([]byte("slow-done"))
			return
		}
		fast.Add(1)
		w.Write([]byte("fast"))
	})

	gh := testbinary.Serve(t, bin, dataDir, "--shutdown-grace", "2m")
	role := gh.Create(rolesAPI+"/roles", map[string]any{"name": "api-users", "permissions": []string{"api-proxy-credentials-own"}})
	user := gh.Create(usersAPI+"/users", map[string]any{"username": "alice", "password": userPassword, "enabled": true})
	gh.Call("PUT", rolesAPI+"/users/"+user+"/roles", []map[string]string{{"id": role}}, http.StatusOK, nil)
	target := gh.Create(proxyAPI+"/api-targets", map[string]any{
		"name": "slow", "roles": []map[string]string{{"id": role}}, "audit_enabled": true, "tls_trust_anchors": ca.pem,
		"authorized_endpoints": []map[string]any{
			{"host": org, "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/api/**"}},
		},
		"target_credential": map[string]any{"type": "token", "bearer_token": alphaToken},
	})
	credPath := proxyAPI + "/users/" + user + "/client-credentials"
	credID := gh.Create(credPath, map[string]any{"name": "laptop", "target": map[string]string{"id": target}})
	secret := string(gh.Call("GET", credPath+"/"+credID+"/secret", nil, http.StatusOK, nil))
	var conf struct {
		Chain string `json:"ca_certificate_chain"`
	}
	gh.Call("GET", proxyAPI+"/conf", nil, http.StatusOK, &conf)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(conf.Chain))

	// B opens a connection (a tunnel) and leaves it idle in its pool.
	clientB := fxProxyClient(gh.ProxyAddr, "127.0.0.1", pool)
	if err := fxGet(context.Background(), clientB, "https://"+org+"/api/fast", secret); err != nil {
		t.Fatal(err)
	}
	// A's request waits at the origin.
	clientA := fxProxyClient(gh.ProxyAddr, "127.0.0.1", pool)
	clientA.Timeout = 2 * time.Minute
	type result struct {
		status int
		body   string
		err    error
	}
	resA := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", "https://"+org+"/api/slow", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := clientA.Do(req)
		if err != nil {
			resA <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		resA <- result{resp.StatusCode, string(b), err}
	}()
	select {
	case <-arrived:
	case r := <-resA:
		t.Fatalf("slow request ended before reaching the origin: %+v", r)
	}

	gh.Signal(syscall.SIGTERM)
	// Stop accepting: new connections are refused once the drain has begun.
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", gh.ProxyAddr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if i == 2000 {
			t.Fatalf("the proxy still accepts connections after SIGTERM:\n%s", gh.Logs())
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A new request on B's open connection: 503 with Retry-After, and the origin never sees it.
	req, _ := http.NewRequest("GET", "https://"+org+"/api/fast", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := clientB.Do(req)
	if err != nil {
		t.Fatalf("request on an open connection during the drain: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e struct {
		Code string `json:"error_code"`
	}
	json.Unmarshal(body, &e)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || e.Code != "SHUTTING_DOWN" {
		t.Errorf("during the drain: %d Retry-After=%q %s; want 503 SHUTTING_DOWN with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if n := fast.Load(); n != 1 {
		t.Errorf("origin saw %d fast requests, want 1 (the one before SIGTERM)", n)
	}

	close(release)
	r := <-resA
	if r.err != nil || r.status != http.StatusOK || r.body != "slow-done" {
		t.Errorf("request in flight at SIGTERM: %+v; want 200 slow-done", r)
	}
	if code := gh.Wait(time.Minute); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0:\n%s", code, gh.Logs())
	}
	if out, code := fxVerify(t, bin, dataDir); code != 0 || !strings.Contains(out, ", closed,") {
		t.Errorf("trail after the drain: exit %d\n%s", code, out)
	}

	// After a restart the session is stored as closed by the shutdown, with both exchanges in its trail.
	gh2 := &fxProc{testbinary.Serve(t, bin, dataDir)}
	var list struct {
		Items []connection `json:"items"`
	}
	gh2.Call("GET", connsAPI+"/connections?limit=10", nil, http.StatusOK, &list)
	if len(list.Items) != 1 || list.Items[0].Status != "DISCONNECTED" || list.Items[0].TerminationReason != "gatehouse shut down" {
		t.Fatalf("sessions after the drain: %+v", list.Items)
	}
	tr := gh2.trail(list.Items[0].ID)
	if len(tr.Items) != 2 || tr.Items[1].Status != http.StatusOK || tr.Closed == nil {
		t.Errorf("trail: %+v", tr)
	}
}
