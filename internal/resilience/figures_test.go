package resilience_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/testbinary"
	"github.com/gatehouse-dev/gatehouse/internal/testpg"
)

// TestClusterFigures measures what docs/scaling.md quotes, on three nodes of the real binary on one PostgreSQL:
// how long a policy change made through node A takes to hold on nodes B and C (an endpoint taken from and given
// back to a target, so every change is one the proxies must apply, and no request counts as a bad secret), and how
// long after a SIGKILL of a node its open sessions show as closed through the others. It asserts only that every
// change and every failover happens within generous bounds; the figures are the FIGURE lines of -v output.
// GATEHOUSE_RESILIENCE_LONG=1 measures 50 changes and 3 kills instead of 10 and 1; GATEHOUSE_FIGURES_NODE_TIMEOUT
// sets --node-timeout (default 3s).
func TestClusterFigures(t *testing.T) {
	bin := buildBinary(t)
	dsn := testpg.New(t)
	keyFile := filepath.Join(t.TempDir(), "cluster.key")
	if _, err := secrets.LoadOrCreateMasterKey(keyFile); err != nil {
		t.Fatal(err)
	}
	nodeTimeout := 3 * time.Second
	if v := os.Getenv("GATEHOUSE_FIGURES_NODE_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("GATEHOUSE_FIGURES_NODE_TIMEOUT: %v", err)
		}
		nodeTimeout = d
	}
	flags := []string{"--db", dsn, "--master-key-file", keyFile, "--node-timeout", nodeTimeout.String()}
	nodes := make([]*proc, 3)
	for i := range nodes {
		nodes[i] = &proc{testbinary.Serve(t, bin, t.TempDir(), flags...)}
	}
	gh := nodes[0]

	l := newLedger()
	org := startOrigin(t, l)
	role := gh.Create(rolesAPI+"/roles", map[string]any{"name": "api-users", "permissions": []string{"api-proxy-credentials-own"}})
	user := gh.Create(usersAPI+"/users", map[string]any{"username": "alice", "password": "Alice-pass-1234567", "enabled": true})
	gh.Call("PUT", rolesAPI+"/users/"+user+"/roles", []map[string]string{{"id": role}}, http.StatusOK, nil)
	tlsHost := org.tls.Listener.Addr().String()
	endpoints := func(paths ...string) []map[string]any {
		return []map[string]any{{"host": tlsHost, "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": paths}}
	}
	target := gh.Create(proxyAPI+"/api-targets", map[string]any{
		"name": "measured", "roles": []map[string]string{{"id": role}}, "audit_enabled": true, "tls_trust_anchors": org.caPEM,
		"authorized_endpoints": endpoints("/ok", "/other"),
		"target_credential":    map[string]any{"type": "token", "bearer_token": targetToken},
	})
	credPath := proxyAPI + "/users/" + user + "/client-credentials"
	var cred struct {
		ID string `json:"id"`
	}
	gh.Call("POST", credPath, map[string]any{"name": "measure", "target": map[string]string{"id": target}}, http.StatusCreated, &cred)
	secret := strings.TrimSpace(string(gh.Call("GET", credPath+"/"+cred.ID+"/secret", nil, http.StatusOK, nil)))
	var conf struct {
		Chain string `json:"ca_certificate_chain"`
	}
	gh.Call("GET", proxyAPI+"/conf", nil, http.StatusOK, &conf)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(conf.Chain)) {
		t.Fatal("no proxy CA in /conf")
	}
	ok := "https://" + tlsHost + "/ok"
	clients := make([]*http.Client, len(nodes))
	for i, n := range nodes {
		clients[i] = proxyClient(n.ProxyAddr, "127.0.0.1", pool, 10*time.Second)
		waitFor(t, fmt.Sprintf("node %d serving the credential", i), 10*time.Second, func() bool {
			st, _ := send(context.Background(), clients[i], "GET", ok, secret, l.id(true), nil, 0)
			return st == http.StatusOK
		})
	}

	// Change propagation: each round takes /ok away through node 0, then gives it back, and polls nodes 1 and 2
	// until each shows the change. A request that passes before a revocation arrives is expected by the origin.
	changes := pick(10, 50)
	var delays []time.Duration
	var calls []time.Duration
	for i := range changes {
		allowed := i%2 == 1
		paths := []string{"/other"}
		if allowed {
			paths = []string{"/ok", "/other"}
		}
		start := time.Now()
		gh.Call("PUT", proxyAPI+"/api-targets/"+target, map[string]any{"authorized_endpoints": endpoints(paths...)}, http.StatusOK, nil)
		calls = append(calls, time.Since(start))
		pending := []int{1, 2}
		for deadline := start.Add(10 * time.Second); len(pending) > 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("change %d (allow /ok: %v) did not reach nodes %v within 10s", i, allowed, pending)
			}
			pending = slices.DeleteFunc(pending, func(n int) bool {
				st, _ := send(context.Background(), clients[n], "GET", ok, secret, l.id(true), nil, 0)
				if (st == http.StatusOK) == allowed {
					delays = append(delays, time.Since(start))
					return true
				}
				return false
			})
		}
	}
	p50, p90, most := quantiles(delays)
	c50, _, cmax := quantiles(calls)
	t.Logf("FIGURE change propagation: %d changes through node 0, seen on nodes 1 and 2 (%d observations): p50 %v, p90 %v, max %v after the call was sent (the call itself: p50 %v, max %v)",
		changes, len(delays), p50, p90, most, c50, cmax)

	// Failover: open sessions on node 2 from several client addresses, SIGKILL it, and time until node 0 shows
	// every one of them closed. The node comes back on its own data dir for the next round.
	victim := 2
	rounds := pick(1, 3)
	var failovers []time.Duration
	for r := range rounds {
		var ids []string
		for k := range 4 {
			c := proxyClient(nodes[victim].ProxyAddr, fmt.Sprintf("127.0.3.%d", 10*r+k+1), pool, 10*time.Second)
			if st, err := send(context.Background(), c, "GET", ok, secret, l.id(true), nil, 0); st != http.StatusOK {
				t.Fatalf("session %d on node %d: %d %v", k, victim, st, err)
			}
			c.CloseIdleConnections()
		}
		var list struct {
			Items []struct {
				ID     string `json:"id"`
				Status string `json:"status"`
				Node   string `json:"node"`
			} `json:"items"`
		}
		var ready struct {
			Node string `json:"node"`
		}
		nodes[victim].Call("GET", "/readyz", nil, http.StatusOK, &ready)
		gh.Call("GET", connsAPI+"/connections?limit=1000", nil, http.StatusOK, &list)
		for _, s := range list.Items {
			if s.Status == "CONNECTED" && s.Node == ready.Node {
				ids = append(ids, s.ID)
			}
		}
		if len(ids) < 4 {
			t.Fatalf("round %d: %d open sessions on node %d, want 4", r, len(ids), victim)
		}
		nodes[victim].Kill()
		killed := time.Now()
		waitFor(t, "the killed node's sessions closed by the others", 3*nodeTimeout+10*time.Second, func() bool {
			open := 0
			for _, s := range gh.sessions() {
				if slices.Contains(ids, s.ID) && s.Status == "CONNECTED" {
					open++
				}
			}
			return open == 0
		})
		failovers = append(failovers, time.Since(killed).Round(time.Millisecond))
		nodes[victim].Proc = testbinary.Serve(t, bin, nodes[victim].DataDir, flags...)
	}
	f50, _, fmax := quantiles(failovers)
	t.Logf("FIGURE failover: sessions of a SIGKILLed node closed by the others after %v (rounds %d, p50 %v, max %v) with --node-timeout %v",
		failovers, rounds, f50, fmax, nodeTimeout)
	org.check(t)
}

// quantiles returns the median, the 90th percentile and the largest of ds, rounded to the millisecond.
func quantiles(ds []time.Duration) (p50, p90, most time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))].Round(time.Millisecond) }
	return at(0.5), at(0.9), s[len(s)-1].Round(time.Millisecond)
}
