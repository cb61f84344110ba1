package e2e_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/testpg"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// joinNode starts another node on the fixture's database with only the database and the master key: a fresh,
// empty data dir.
func (f *fixture) joinNode(t *testing.T) *testserver.Instance {
	t.Helper()
	return testserver.Start(t, testserver.Options{Configure: func(c *config.Config) {
		c.DB, c.MasterKeyFile = f.gh.Cfg.DB, filepath.Join(f.gh.Cfg.DataDir, "master.key")
	}})
}

// clientVia is a Go client through the proxy of another node.
func (f *fixture) clientVia(t *testing.T, n *testserver.Instance) *http.Client {
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: n.Server.ProxyAddr()}),
		TLSClientConfig: &tls.Config{RootCAs: f.proxyPool}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// within polls cond until it holds or the deadline passes, and returns how long it took. The deadline bounds the
// test; the time is logged, never asserted.
func within(t *testing.T, what string, deadline time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < deadline {
		if cond() {
			d := time.Since(start)
			t.Logf("%s after %v", what, d.Round(time.Millisecond))
			return d
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v", what, deadline)
	return 0
}

// TestClusterTwoNodes runs two nodes in this process on one PostgreSQL database and checks that the second needs
// only the database and the key, and that changes and terminations made through one hold on the other.
func TestClusterTwoNodes(t *testing.T) {
	f := newFixture(t, testserver.Options{Postgres: true})
	b := f.joinNode(t)
	if !b.Server.CA().Root().Equal(f.gh.Server.CA().Root()) {
		t.Fatal("the joining node serves another CA than the first node")
	}
	if _, err := os.Stat(filepath.Join(b.Cfg.DataDir, "ca", "root.key.sealed")); err == nil {
		t.Error("the CA's key was written to the joining node's disk; it belongs in the database")
	}
	viaB := f.clientVia(t, b)
	url := "https://" + f.https.HostPort + "/api/hello"

	t.Run("revoke on A is refused on B", func(t *testing.T) {
		c := f.credential(f.alpha, "revoke-me", nil)
		within(t, "node B accepted a credential created on A", 3*time.Second, func() bool {
			st, _ := f.do(viaB, "GET", url, c.Secret, "")
			return st == 200
		})
		f.gh.JSON("DELETE", c.path(f.userID), f.adm, nil, http.StatusOK, nil)
		within(t, "node B refused the revoked credential", 3*time.Second, func() bool {
			st, _ := f.do(viaB, "GET", url, c.Secret, "")
			return st == http.StatusForbidden || st == http.StatusProxyAuthRequired || st == http.StatusUnauthorized
		})
	})

	t.Run("settings on A apply on B", func(t *testing.T) {
		want := b.Server.Settings().SessionCooldown + 17
		f.gh.JSON("PUT", proxyAPI+"/settings", f.adm, map[string]any{"session_cooldown": want}, http.StatusOK, nil)
		within(t, "node B applied the settings", 3*time.Second, func() bool { return b.Server.Settings().SessionCooldown == want })
	})

	t.Run("trails are readable through any node and outlive the recording node's disk", func(t *testing.T) {
		c := f.credential(f.alpha, "trail-me", nil)
		viaA := f.client(false)
		if st, body := f.do(viaA, "GET", url, c.Secret, ""); st != 200 {
			t.Fatalf("through node A: %d %s", st, body)
		}
		id := f.session(c.ID)
		badm := b.AdminToken()
		if n, ok := trailThrough(t, b, badm, id); n != 1 || !ok {
			t.Errorf("open session's trail through node B: %d exchanges, verified %v", n, ok)
		}
		// The live stream of a session open on A, followed through B.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", b.URL+connsAPI+"/connections/"+id+"/trail/stream", nil)
		req.Header.Set("Authorization", "Bearer "+badm)
		resp, err := b.Client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("stream through node B: %v %v", resp, err)
		}
		defer resp.Body.Close()
		rd := bufio.NewReader(resp.Body)
		if line, err := rd.ReadString('\n'); err != nil || !strings.HasPrefix(line, ": following") {
			t.Fatalf("stream preamble: %q %v", line, err)
		}
		if st, _ := f.do(viaA, "GET", url+"?live=1", c.Secret, ""); st != 200 {
			t.Fatalf("second request through node A: %d", st)
		}
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("stream through node B ended before the exchange: %v", err)
			}
			if strings.HasPrefix(line, "data:") && strings.Contains(line, "live=1") {
				break
			}
		}
		resp.Body.Close()

		// Close the session, then lose node A's disk: the trail is read from the database on both nodes.
		f.gh.JSON("POST", connsAPI+"/terminate/connection/"+id, f.adm, nil, http.StatusOK, nil)
		f.waitConnection(c.ID, func(c connection) bool { return c.ID == id && c.Status == "TERMINATED" })
		if err := os.Remove(filepath.Join(f.gh.Cfg.DataDir, "recordings", id+".trail")); err != nil {
			t.Fatalf("losing node A's trail: %v", err)
		}
		for _, n := range []*testserver.Instance{f.gh, b} {
			if got, ok := trailThrough(t, n, n.AdminToken(), id); got != 2 || !ok {
				t.Errorf("closed trail through %s without the recording node's file: %d exchanges, verified %v", n.URL, got, ok)
			}
		}
	})

	t.Run("terminate through B reaches A and cools the credential down on both", func(t *testing.T) {
		c := f.credential(f.alpha, "terminate-me", nil)
		viaA := f.client(false)
		if st, body := f.do(viaA, "GET", url, c.Secret, ""); st != 200 {
			t.Fatalf("through node A: %d %s", st, body)
		}
		id := f.session(c.ID)
		if st, body := b.Do("POST", connsAPI+"/terminate/connection/"+id, b.AdminToken(), nil); st != http.StatusOK {
			t.Fatalf("terminate through node B: %d %s", st, body)
		}
		within(t, "node A terminated its session", 3*time.Second, func() bool {
			_, ok := f.gh.Server.Sessions().Live(id)
			return !ok
		})
		f.waitConnection(c.ID, func(c connection) bool { return c.ID == id && c.Status == "TERMINATED" })
		for name, cl := range map[string]*http.Client{"A": viaA, "B": viaB} {
			if st, _ := f.do(cl, "GET", url, c.Secret, ""); st != http.StatusForbidden {
				t.Errorf("node %s during the cool-down: %d, want 403", name, st)
			}
		}
	})
}

// trailThrough reads a connection's trail and its verification through node n.
func trailThrough(t *testing.T, n *testserver.Instance, token, id string) (count int, ok bool) {
	t.Helper()
	var page struct {
		Count int `json:"count"`
	}
	n.JSON("GET", connsAPI+"/connections/"+id+"/trail", token, nil, http.StatusOK, &page)
	if st, body := n.Do("GET", connsAPI+"/connections/"+id+"/trail?format=har", token, nil); st != 200 || !strings.Contains(string(body), `"entries"`) {
		t.Errorf("HAR through %s: %d %.200s", n.URL, st, body)
	}
	var v struct {
		OK bool `json:"ok"`
	}
	n.JSON("GET", connsAPI+"/connections/"+id+"/trail/verify", token, nil, http.StatusOK, &v)
	return page.Count, v.OK
}

// TestClusterRefusesAnotherMasterKey pins that a node given another master key refuses to start with a clear error
// instead of running with secrets it cannot open.
func TestClusterRefusesAnotherMasterKey(t *testing.T) {
	dsn := testpg.New(t)
	first := testserver.Start(t, testserver.Options{Configure: func(c *config.Config) { c.DB = dsn }})
	first.Stop()
	cfg := first.Cfg
	cfg.DataDir, cfg.MasterKeyFile = t.TempDir(), ""
	_, err := server.New(context.Background(), &cfg, server.Options{})
	if err == nil || !strings.Contains(err.Error(), "another master key") {
		t.Fatalf("a node with another key: err = %v, want a refusal naming the master key", err)
	}
}

// TestClusterNodesStartAtOnce starts three nodes together on an empty database: migrations and the first-start
// bootstrap run under an advisory lock, so all three start and there is one admin and one CA.
func TestClusterNodesStartAtOnce(t *testing.T) {
	dsn := testpg.New(t)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	if _, err := secrets.LoadOrCreateMasterKey(keyFile); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	srvs := make([]*server.Server, 3)
	errs := make([]error, 3)
	for i := range srvs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := &config.Config{DataDir: t.TempDir(), APIListen: "127.0.0.1:0", ProxyListen: "127.0.0.1:0", DB: dsn,
				MasterKeyFile: keyFile, TokenTTL: 30 * time.Minute}
			srvs[i], errs[i] = server.New(context.Background(), cfg, server.Options{AdminPassword: testserver.AdminPassword})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		t.Cleanup(func() { srvs[i].Close(context.Background()) })
	}
	n, err := srvs[0].Store().CountUsers(context.Background())
	if err != nil || n != 1 {
		t.Errorf("users after three first starts: %d, %v; want the one admin", n, err)
	}
	for i, s := range srvs[1:] {
		if !s.CA().Root().Equal(srvs[0].CA().Root()) {
			t.Errorf("node %d has its own CA", i+1)
		}
	}
}
