package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/testpg"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
	proxyproto "github.com/pires/go-proxyproto"
)

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

// TestClusterAPIBehindBalancer pins that the API listener takes the client address from a trusted balancer's PROXY
// header (audit events name the client, not the balancer) and refuses a header from anyone else.
func TestClusterAPIBehindBalancer(t *testing.T) {
	for _, trusted := range []bool{true, false} {
		t.Run(fmt.Sprintf("trusted=%v", trusted), func(t *testing.T) {
			gh := testserver.Start(t, testserver.Options{Configure: func(c *config.Config) {
				if trusted {
					c.ProxyProtocolTrusted = []string{"127.0.0.1/32"}
				} else {
					c.ProxyProtocolTrusted = []string{"10.255.255.0/24"}
				}
			}})
			adm := gh.AdminToken()
			dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 4444}, c.RemoteAddr())
				if _, err := h.WriteTo(c); err != nil {
					c.Close()
					return nil, err
				}
				return c, nil
			}
			// A peer that connects and says nothing must not hold up the next connection: the PROXY header is read
			// in the connection's goroutine, not in the accept loop (its timeout is 10 s, the client's 5 s).
			silent, err := net.Dial("tcp", strings.TrimPrefix(gh.URL, "https://"))
			if err != nil {
				t.Fatal(err)
			}
			defer silent.Close()
			tr := gh.Client.Transport.(*http.Transport).Clone()
			tr.DialContext = dial
			cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			defer tr.CloseIdleConnections()
			body := strings.NewReader(`{"session_cooldown": 77}`)
			req, _ := http.NewRequest("PUT", gh.URL+proxyAPI+"/settings", body)
			req.Header.Set("Authorization", "Bearer "+adm)
			req.Header.Set("Content-Type", "application/json")
			resp, err := cl.Do(req)
			if !trusted {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("a PROXY header from an untrusted address was accepted: %d", resp.StatusCode)
				}
				return
			}
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("settings through the balancer: %v %v", resp, err)
			}
			resp.Body.Close()
			var events struct {
				Items []struct {
					Action        string `json:"action"`
					SourceAddress string `json:"source_address"`
				} `json:"items"`
			}
			gh.JSON("GET", "/audit/api/v1/events?limit=100", adm, nil, http.StatusOK, &events)
			for _, e := range events.Items {
				if e.SourceAddress == "10.1.2.3" {
					return
				}
			}
			t.Errorf("no audit event from the client address the balancer sent: %+v", events.Items)
		})
	}
}

// TestClusterReadyz pins /readyz: ready while the database, policy and trail directory are fine, 503 naming the
// part at fault when trails cannot be written.
func TestClusterReadyz(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	ready := func() (int, map[string]any) {
		resp, err := gh.Client.Get(gh.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if st, out := ready(); st != 200 || out["ready"] != true || out["leader"] != true {
		t.Fatalf("readyz of a healthy single node: %d %v", st, out)
	}
	dir := filepath.Join(gh.Cfg.DataDir, "recordings")
	if err := os.Rename(dir, dir+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, out := ready()
	if st != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(out["checks"]), "recordings:not writable") {
		t.Errorf("readyz without a writable trail directory: %d %v", st, out)
	}
	os.Remove(dir)
	os.Rename(dir+".away", dir)
	if st, out := ready(); st != 200 {
		t.Errorf("readyz after the trail directory came back: %d %v", st, out)
	}
}

// TestClusterLeadershipMoves pins that the cluster's jobs run on one node, move when the leader stops, and that
// the leader closes the sessions of a node whose heartbeat stopped.
func TestClusterLeadershipMoves(t *testing.T) {
	short := func(c *config.Config) { c.NodeTimeout = 2 * time.Second }
	a := testserver.Start(t, testserver.Options{Postgres: true, Configure: short})
	b := testserver.Start(t, testserver.Options{Configure: func(c *config.Config) {
		short(c)
		c.DB, c.MasterKeyFile = a.Cfg.DB, filepath.Join(a.Cfg.DataDir, "master.key")
	}})
	leaders := func() (n int, leader *testserver.Instance) {
		for _, i := range []*testserver.Instance{a, b} {
			if i.Cancelled() {
				continue
			}
			if i.Server.Leading() {
				n, leader = n+1, i
			}
		}
		return n, leader
	}
	within(t, "one node leads", 10*time.Second, func() bool { n, _ := leaders(); return n == 1 })

	// A node that died without a word: registered, a session open, and no heartbeat since.
	st := a.Server.Store()
	ctx := context.Background()
	old := time.Now().Add(-time.Minute)
	if _, err := st.Heartbeat(ctx, store.Node{ID: "dead-node", Started: old, Heartbeat: old}); err != nil {
		t.Fatal(err)
	}
	sess := &store.APISession{ID: "0dead000-0000-4000-8000-000000000001", Key: "k", ClientAddress: "127.0.0.9",
		Status: store.SessionConnected, Connected: old, LastActivity: old, NodeID: "dead-node"}
	if err := st.InsertSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	within(t, "the leader closed the dead node's session", 10*time.Second, func() bool {
		got, err := st.Session(ctx, sess.ID)
		return err == nil && got.Status == store.SessionDisconnected
	})

	_, leader := leaders()
	leader.Stop()
	within(t, "the other node took the lead", 10*time.Second, func() bool {
		n, l := leaders()
		return n == 1 && l != leader
	})
}
