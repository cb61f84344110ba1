package extender_test

import (
	"context"
	"encoding/pem"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/testbinary"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// privateAccess sets up, through gh, a user with a credential for a target whose endpoint privateHost:443 is
// dialled through extender:<prefix> to the origin, and returns a client through proxyAddr with its secret.
func privateAccess(t *testing.T, gh *testserver.Instance, adm string, origin *privateOrigin, prefix, proxyAddr string) (*http.Client, string) {
	t.Helper()
	_, originPort, _ := net.SplitHostPort(origin.addr)
	roleID := gh.Create("/role-store/api/v1/roles", adm, map[string]any{"name": "private-users", "permissions": []string{"api-proxy-credentials-own"}})
	userID := gh.Create("/local-user-store/api/v1/users", adm, map[string]any{"username": "alice", "password": "Alice-pass-123456", "enabled": true})
	gh.JSON("PUT", "/role-store/api/v1/users/"+userID+"/roles", adm, []map[string]string{{"id": roleID}}, http.StatusOK, nil)
	targetID := gh.Create(proxyAPI+"/api-targets", adm, map[string]any{
		"name": "private", "roles": []map[string]string{{"id": roleID}}, "tls_trust_anchors": origin.caPEM,
		"authorized_endpoints": []map[string]any{
			{"host": privateHost + ":443", "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/**"},
				"nat_target_host": "extender:" + prefix + "/127.0.0.1:" + originPort},
		},
		"target_credential": map[string]any{"type": "token", "bearer_token": upstreamTok},
	})
	credID := gh.Create(proxyAPI+"/users/"+userID+"/client-credentials", adm, map[string]any{"name": "c", "target": map[string]string{"id": targetID}})
	_, secret := gh.Do("GET", proxyAPI+"/users/"+userID+"/client-credentials/"+credID+"/secret", gh.Token("alice", "Alice-pass-123456"), nil)
	var conf struct {
		Chain string `json:"ca_certificate_chain"`
	}
	gh.JSON("GET", proxyAPI+"/conf", adm, nil, http.StatusOK, &conf)
	return proxyClient(t, proxyAddr, conf.Chain), string(secret)
}

// TestClusterRoutesToAnotherNodesExtender runs two nodes on one PostgreSQL database. The agent lives in a
// namespace and connects to node B only; the request enters node A, which cannot reach the origin, holds no
// session, and relays the dial to B. A token rotated through A closes the session held by B. When B is gone, A
// answers the clear 502 naming the extender's prefix, also when the registry still names a node that hangs.
func TestClusterRoutesToAnotherNodesExtender(t *testing.T) {
	ns := newNetns(t)
	origin := startPrivateOrigin(t, ns, privateHost)
	bin := testbinary.Build(t)
	a := testserver.Start(t, testserver.Options{Postgres: true})
	b := testserver.Start(t, testserver.Options{Configure: func(c *config.Config) {
		c.DB, c.MasterKeyFile = a.Cfg.DB, filepath.Join(a.Cfg.DataDir, "master.key")
		c.APIListen = ns.hostIP + ":0" // the agent in the namespace reaches B's API over the veth pair
	}})
	adm := a.AdminToken()
	caFile := writeFile(t, "gateway-ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.Server.CA().Root().Raw})))
	var ext extenderView
	a.JSON("POST", proxyAPI+"/extenders", adm, map[string]any{"name": "site-c-1", "routing_prefix": "site-c"}, http.StatusCreated, &ext)
	viaA, secret := privateAccess(t, a, adm, origin, "site-c", a.Server.ProxyAddr())
	url := "https://" + privateHost + "/v1/items"

	waitConnected := func(want bool) {
		t.Helper()
		var v extenderView
		for range 300 {
			a.JSON("GET", proxyAPI+"/extenders/"+ext.ID, adm, nil, http.StatusOK, &v)
			if v.Status.Connected == want {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("node A: extender connected never became %v", want)
	}
	want502 := func(what string) {
		t.Helper()
		before := origin.hits.Load()
		start := time.Now()
		status, body := get(t, viaA, url, secret)
		t.Logf("%s: %d after %v", what, status, time.Since(start).Round(time.Millisecond))
		if status != http.StatusBadGateway || !strings.Contains(body, "EXTENDER_UNAVAILABLE") || !strings.Contains(body, `site-c`) {
			t.Fatalf("%s: %d %s, want 502 EXTENDER_UNAVAILABLE naming site-c", what, status, body)
		}
		if origin.hits.Load() != before {
			t.Fatalf("%s: the origin was reached", what)
		}
	}
	want200 := func(what string) {
		t.Helper()
		before := origin.hits.Load()
		status, body := get(t, viaA, url, secret)
		if status != http.StatusOK || !strings.Contains(body, `"private":true`) {
			t.Fatalf("%s: %d %s", what, status, body)
		}
		if origin.hits.Load() != before+1 || origin.auth.Load() != "Bearer "+upstreamTok {
			t.Fatalf("%s: origin hits %d->%d, authorization %q", what, before, origin.hits.Load(), origin.auth.Load())
		}
	}

	want502("no extender anywhere")
	agent := startAgent(t, bin, ns, "https://"+b.Server.APIAddr(), caFile, ext.Token)
	waitConnected(true)
	t.Run("a request entering node A reaches the extender held by node B", func(t *testing.T) {
		for range 3 {
			want200("relayed request")
		}
	})
	t.Run("a token rotated through node A closes the session on node B", func(t *testing.T) {
		var rotated extenderView
		a.JSON("POST", proxyAPI+"/extenders/"+ext.ID+"/token", adm, nil, http.StatusOK, &rotated)
		if !agent.exited(30 * time.Second) {
			t.Fatal("the agent's session on node B outlived the token rotated through node A")
		}
		waitConnected(false)
		want502("after the rotation")
		ext.Token = rotated.Token
		agent = startAgent(t, bin, ns, "https://"+b.Server.APIAddr(), caFile, ext.Token)
		waitConnected(true)
		want200("with the new token")
	})
	t.Run("the owning node gone gives the clear 502", func(t *testing.T) {
		b.Stop()
		want502("node B stopped")
	})
	t.Run("a registered owner that hangs gives the clear 502 in bounded time", func(t *testing.T) {
		// What a crashed node leaves: its registration and its session's entry, both still fresh, and an address
		// that accepts but never answers.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			var held []net.Conn
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				held = append(held, c)
			}
		}()
		st, ctx, now := a.Server.Store(), context.Background(), time.Now()
		if _, err := st.Heartbeat(ctx, store.Node{ID: "ghost", APIAddress: ln.Addr().String(), Started: now, Heartbeat: now}); err != nil {
			t.Fatal(err)
		}
		if err := st.PutExtenderLink(ctx, store.ExtenderLink{Key: "ghost-link", ExtenderID: ext.ID, NodeID: "ghost", ConnectedSince: now, Heartbeat: now}); err != nil {
			t.Fatal(err)
		}
		want502("the registry names a hung node")
	})
}
