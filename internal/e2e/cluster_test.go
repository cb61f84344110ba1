package e2e_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
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

// clientFrom is a Go client through node n's proxy from the loopback address ip.
func (f *fixture) clientFrom(t *testing.T, n *testserver.Instance, ip string) *http.Client {
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: n.Server.ProxyAddr()}),
		DialContext: dialerFrom(ip).DialContext, TLSClientConfig: &tls.Config{RootCAs: f.proxyPool}}
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
	hello := "https://" + f.https.HostPort + "/api/hello"

	t.Run("revoke on A is refused on B", func(t *testing.T) {
		c := f.credential(f.alpha, "revoke-me", nil)
		within(t, "node B accepted a credential created on A", 3*time.Second, func() bool {
			st, _ := f.do(viaB, "GET", hello, c.Secret, "")
			return st == 200
		})
		f.gh.JSON("DELETE", c.path(f.userID), f.adm, nil, http.StatusOK, nil)
		within(t, "node B refused the revoked credential", 3*time.Second, func() bool {
			st, _ := f.do(viaB, "GET", hello, c.Secret, "")
			return st == http.StatusForbidden || st == http.StatusProxyAuthRequired || st == http.StatusUnauthorized
		})
	})

	t.Run("a role taken on A is refused on B", func(t *testing.T) {
		f := f.in(t)
		c := f.credential(f.alpha, "role-me", nil)
		within(t, "node B accepted the new credential", 3*time.Second, func() bool {
			st, _ := f.do(viaB, "GET", hello, c.Secret, "")
			return st == 200
		})
		f.setRoles()
		defer f.setRoles(f.roleID)
		within(t, "node B refused the user who lost the role", 3*time.Second, func() bool {
			st, _ := f.do(viaB, "GET", hello, c.Secret, "")
			return st == http.StatusForbidden || st == http.StatusUnauthorized || st == http.StatusProxyAuthRequired
		})
	})

	t.Run("a configuration commit on A applies on B", func(t *testing.T) {
		f := f.in(t)
		c := f.credential(f.alpha, "commit-me", nil)
		plain := "http://" + f.http.HostPort + "/api/hello"
		within(t, "node B accepted the new credential", 3*time.Second, func() bool {
			st, _ := f.do(viaB, "GET", plain, c.Secret, "")
			return st == 200
		})
		a := newCfgAdmin(t, f.gh)
		a.setDefaultActive(false) // no connection policy admits anything
		a.commit()
		within(t, "node B applied the commit", 3*time.Second, func() bool {
			st, _ := f.do(viaB, "GET", plain, c.Secret, "")
			return st == http.StatusForbidden
		})
		a.setDefaultActive(true)
		a.commit()
		within(t, "node B applied the second commit", 3*time.Second, func() bool {
			st, _ := f.do(viaB, "GET", plain, c.Secret, "")
			return st == 200
		})
	})

	t.Run("bad secrets count for the cluster, not per node", func(t *testing.T) {
		f := f.in(t)
		c := f.credential(f.alpha, "guessed", nil)
		plain := "http://" + f.http.HostPort + "/api/hello"
		fromA, fromB := f.clientFrom(t, f.gh, "127.0.0.77"), f.clientFrom(t, b, "127.0.0.77")
		within(t, "node B accepted the new credential", 3*time.Second, func() bool {
			st, _ := f.do(fromB, "GET", plain, c.Secret, "")
			return st == 200
		})
		// 12 bad secrets through each node: under the per-node burst of 20, over it for the cluster.
		for i := range 12 {
			for _, cl := range []*http.Client{fromA, fromB} {
				if st, _ := f.do(cl, "GET", plain, fmt.Sprintf("ghp_wrong_%d_%d", i, time.Now().UnixNano()), ""); st == 200 {
					t.Fatal("a bad secret was accepted")
				}
			}
		}
		within(t, "the guessing source is throttled on the cluster's count", 5*time.Second, func() bool {
			st, _ := f.do(fromA, "GET", plain, c.Secret, "")
			return st == http.StatusTooManyRequests
		})
	})

	t.Run("a connection policy's rate limit holds for the cluster", func(t *testing.T) {
		f := f.in(t)
		c := f.credential(f.alpha, "rated", nil)
		plain := "http://" + f.http.HostPort + "/api/hello"
		fromA, fromB := f.clientFrom(t, f.gh, "127.0.0.79"), f.clientFrom(t, b, "127.0.0.79")
		a := newCfgAdmin(t, f.gh)
		key := a.create(cfgConnections, map[string]any{"name": "rated",
			"network":    map[string]any{"clients": []string{"127.0.0.79/32"}, "targets": []string{"127.0.0.0/8"}},
			"rate_limit": map[string]any{"enabled": true, "value": 6}})
		a.commit()
		defer func() {
			a.edit(cfgConnections+"/"+key, func(b map[string]any) { b["active"] = false })
			a.commit()
		}()
		// Each absolute-form request is a connection. Node A admits the limit's 6; node B, which alone would admit
		// 6 more, refuses once it sees A's count (counts travel within about two seconds).
		for i := range 6 {
			if st, body := f.do(fromA, "GET", plain, c.Secret, ""); st != 200 {
				t.Fatalf("connection %d through node A: %d %s", i+1, st, body)
			}
		}
		admittedB := 0
		within(t, "node B refused on the cluster's count", 10*time.Second, func() bool {
			st, _ := f.do(fromB, "GET", plain, c.Secret, "")
			if st == 200 {
				admittedB++
				time.Sleep(600 * time.Millisecond)
			}
			return st == http.StatusTooManyRequests
		})
		if admittedB >= 6 {
			t.Errorf("node B admitted %d more connections: the limit held per node, not for the cluster", admittedB)
		}
		t.Logf("node B admitted %d connections before it saw node A's count", admittedB)
	})

	t.Run("failed logins count for the cluster, not per node", func(t *testing.T) {
		f := f.in(t)
		f.gh.Create(usersAPI+"/users", f.adm, map[string]any{"username": "guessed", "password": userPassword, "enabled": true})
		login := func(n *testserver.Instance, password string) int {
			tr := n.Client.Transport.(*http.Transport).Clone()
			tr.DialContext = dialerFrom("127.0.0.80").DialContext
			defer tr.CloseIdleConnections()
			form := url.Values{"grant_type": {"password"}, "client_id": {"gatehouse-cli"}, "username": {"guessed"}, "password": {password}}
			resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).PostForm(n.URL+"/auth/api/v1/oauth/token", form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		// Three bad passwords through each node: under the burst of 5 on either, over it for the cluster.
		for range 3 {
			for _, n := range []*testserver.Instance{f.gh, b} {
				if st := login(n, "wrong-password-1"); st == 200 {
					t.Fatal("a wrong password logged in")
				}
			}
		}
		within(t, "the right password is refused while the cluster's count is over the burst", 5*time.Second, func() bool {
			return login(f.gh, userPassword) != 200
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
		if st, body := f.do(viaA, "GET", hello, c.Secret, ""); st != 200 {
			t.Fatalf("through node A: %d %s", st, body)
		}
		id := f.session(c.ID)
		badm := b.AdminToken()
		var conn struct {
			Node string `json:"node"`
		}
		b.JSON("GET", connsAPI+"/connections/"+id, badm, nil, http.StatusOK, &conn)
		if conn.Node != f.gh.Server.NodeID() || conn.Node == b.Server.NodeID() {
			t.Errorf("the connection list through node B names node %q as the session's, want node A's %q", conn.Node, f.gh.Server.NodeID())
		}
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
		if st, _ := f.do(viaA, "GET", hello+"?live=1", c.Secret, ""); st != 200 {
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

	t.Run("terminate/user through B ends the user's sessions on A and cools the user down everywhere", func(t *testing.T) {
		f := f.in(t)
		bob := f.gh.Create(usersAPI+"/users", f.adm, map[string]any{"username": "bob", "password": userPassword, "enabled": true})
		f.gh.JSON("PUT", rolesAPI+"/users/"+bob+"/roles", f.adm, []map[string]string{{"id": f.roleID}}, http.StatusOK, nil)
		creds := make([]cred, 2)
		for i := range creds {
			creds[i] = cred{ID: f.gh.Create(proxyAPI+"/users/"+bob+"/client-credentials", f.adm, map[string]any{
				"name": fmt.Sprint("bob-", i), "target": map[string]string{"id": f.alpha}})}
			_, secret := f.gh.Do("GET", creds[i].path(bob)+"/secret", f.adm, nil)
			creds[i].Secret = string(secret)
		}
		viaA := f.client(false)
		if st, body := f.do(viaA, "GET", hello, creds[0].Secret, ""); st != 200 {
			t.Fatalf("bob through node A: %d %s", st, body)
		}
		id := f.session(creds[0].ID)
		within(t, "node B knows bob's second credential", 3*time.Second, func() bool {
			return b.Server.Gate().Stats()["credentials"] == f.gh.Server.Gate().Stats()["credentials"]
		})
		var out struct {
			Terminated int `json:"terminated"`
		}
		b.JSON("POST", connsAPI+"/terminate/user/"+bob, b.AdminToken(), nil, http.StatusOK, &out)
		if out.Terminated != 1 {
			t.Errorf("terminate/user through node B ended %d sessions, want bob's 1 on node A", out.Terminated)
		}
		within(t, "node A ended bob's session", 3*time.Second, func() bool {
			_, ok := f.gh.Server.Sessions().Live(id)
			return !ok
		})
		for name, cl := range map[string]*http.Client{"A": viaA, "B": viaB} {
			if st, _ := f.do(cl, "GET", hello, creds[1].Secret, ""); st != http.StatusForbidden {
				t.Errorf("bob's other credential through node %s during the cool-down: %d, want 403", name, st)
			}
		}
	})

	t.Run("terminate through B reaches A and cools the credential down on both", func(t *testing.T) {
		c := f.credential(f.alpha, "terminate-me", nil)
		viaA := f.client(false)
		if st, body := f.do(viaA, "GET", hello, c.Secret, ""); st != 200 {
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
			if st, _ := f.do(cl, "GET", hello, c.Secret, ""); st != http.StatusForbidden {
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
