package extender_test

import (
	"encoding/pem"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/testbinary"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

const (
	proxyAPI    = "/api-proxy/api/v1"
	upstreamTok = "private-upstream-token-0123456789"
	privateHost = "api.private.test"
)

type extenderView struct {
	ID            string `json:"id"`
	RoutingPrefix string `json:"routing_prefix"`
	Token         string `json:"token"`
	Status        struct {
		Connected bool   `json:"connected"`
		Version   string `json:"version"`
	} `json:"status"`
}

// TestExtenderReachesPrivateOrigin runs the whole path: the origin listens on 127.0.0.1 inside a namespace the
// gateway cannot reach, the agent runs in that namespace and dials out to the gateway over a veth pair, and a
// client's request goes client -> proxy (auth, injection, TLS to target) -> extender -> origin.
func TestExtenderReachesPrivateOrigin(t *testing.T) {
	ns := newNetns(t)
	origin := startPrivateOrigin(t, ns, privateHost)
	bin := testbinary.Build(t)
	gh := testserver.Start(t, testserver.Options{Configure: func(c *config.Config) {
		// The agent reaches the API over the veth pair; the proxy stays on loopback for the client.
		c.APIListen = ns.hostIP + ":0"
	}})
	adm := gh.AdminToken()
	caFile := writeFile(t, "gateway-ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: gh.Server.CA().Root().Raw})))

	var a, b extenderView
	gh.JSON("POST", proxyAPI+"/extenders", adm, map[string]any{"name": "site-a-1", "routing_prefix": "site-a"}, http.StatusCreated, &a)
	gh.JSON("POST", proxyAPI+"/extenders", adm, map[string]any{"name": "site-a-2", "routing_prefix": "site-a"}, http.StatusCreated, &b)
	if !strings.HasPrefix(a.Token, "gx_") || a.Token == b.Token {
		t.Fatalf("create answers: %+v %+v", a, b)
	}

	_, originPort, _ := net.SplitHostPort(origin.addr)
	roleID := gh.Create("/role-store/api/v1/roles", adm, map[string]any{"name": "private-users", "permissions": []string{"api-proxy-credentials-own"}})
	userID := gh.Create("/local-user-store/api/v1/users", adm, map[string]any{"username": "alice", "password": "Alice-pass-123456", "enabled": true})
	gh.JSON("PUT", "/role-store/api/v1/users/"+userID+"/roles", adm, []map[string]string{{"id": roleID}}, http.StatusOK, nil)
	targetID := gh.Create(proxyAPI+"/api-targets", adm, map[string]any{
		"name": "private", "roles": []map[string]string{{"id": roleID}}, "tls_trust_anchors": origin.caPEM,
		"authorized_endpoints": []map[string]any{
			// The name is translated inside the segment to the origin's loopback address.
			{"host": privateHost + ":443", "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/**"},
				"nat_target_host": "extender:site-a/127.0.0.1:" + originPort},
			// The endpoint's own address, dialled inside the segment.
			{"host": origin.addr, "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/**"},
				"nat_target_host": "extender:SITE-A"},
			// The same origin without an extender: the gateway's own dial of 127.0.0.1 does not reach it.
			{"host": "direct.private.test:443", "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/**"},
				"nat_target_host": "127.0.0.1:" + originPort},
			{"host": "other.private.test:443", "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/**"},
				"nat_target_host": "extender:site-b/127.0.0.1:" + originPort},
		},
		"target_credential": map[string]any{"type": "token", "bearer_token": upstreamTok},
	})
	credID := gh.Create(proxyAPI+"/users/"+userID+"/client-credentials", adm, map[string]any{"name": "c", "target": map[string]string{"id": targetID}})
	_, secretB := gh.Do("GET", proxyAPI+"/users/"+userID+"/client-credentials/"+credID+"/secret", gh.Token("alice", "Alice-pass-123456"), nil)
	secret := string(secretB)
	var conf struct {
		Chain string `json:"ca_certificate_chain"`
	}
	gh.JSON("GET", proxyAPI+"/conf", adm, nil, http.StatusOK, &conf)
	client := proxyClient(t, gh.Server.ProxyAddr(), conf.Chain)
	viaName, viaOwn := "https://"+privateHost+"/v1/items", "https://"+origin.addr+"/v1/items"

	waitConnected := func(id string, want bool) extenderView {
		t.Helper()
		var v extenderView
		for range 200 {
			gh.JSON("GET", proxyAPI+"/extenders/"+id, adm, nil, http.StatusOK, &v)
			if v.Status.Connected == want {
				return v
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("extender %s: connected never became %v", id, want)
		return v
	}
	want502 := func(url, prefix string) {
		t.Helper()
		before := origin.hits.Load()
		status, body := get(t, client, url, secret)
		if status != http.StatusBadGateway || !strings.Contains(body, `\"`+prefix+`\"`) && !strings.Contains(body, `"`+prefix+`"`) {
			t.Fatalf("GET %s: %d %s, want 502 naming %q", url, status, body, prefix)
		}
		if origin.hits.Load() != before {
			t.Fatalf("the origin was reached")
		}
	}
	want200 := func(url string) {
		t.Helper()
		before := origin.hits.Load()
		status, body := get(t, client, url, secret)
		if status != http.StatusOK || !strings.Contains(body, `"private":true`) {
			t.Fatalf("GET %s: %d %s", url, status, body)
		}
		if origin.hits.Load() != before+1 || origin.auth.Load() != "Bearer "+upstreamTok {
			t.Fatalf("origin hits %d->%d, authorization %q", before, origin.hits.Load(), origin.auth.Load())
		}
	}

	t.Run("no extender connected is a 502 naming the prefix", func(t *testing.T) {
		want502(viaName, "site-a")
	})
	t.Run("a direct dial does not reach the origin", func(t *testing.T) {
		before := origin.hits.Load()
		status, _ := get(t, client, "https://direct.private.test/v1/items", secret)
		if status != http.StatusBadGateway || origin.hits.Load() != before {
			t.Fatalf("direct: %d, origin hits %d -> %d", status, before, origin.hits.Load())
		}
	})

	agentA := startAgent(t, bin, ns, "https://"+gh.Server.APIAddr(), caFile, a.Token)
	if v := waitConnected(a.ID, true); v.Status.Version == "" {
		t.Errorf("status has no version: %+v", v)
	}
	t.Run("requests reach the origin through the extender", func(t *testing.T) {
		want200(viaName)
		want200(viaOwn)
		want502("https://other.private.test/v1/items", "site-b")
	})
	t.Run("killing the extender gives the 502, its restart restores service", func(t *testing.T) {
		agentA.kill()
		waitConnected(a.ID, false)
		want502(viaName, "site-a")
		agentA = startAgent(t, bin, ns, "https://"+gh.Server.APIAddr(), caFile, a.Token)
		waitConnected(a.ID, true)
		want200(viaName)
	})
	t.Run("a second extender takes over", func(t *testing.T) {
		startAgent(t, bin, ns, "https://"+gh.Server.APIAddr(), caFile, b.Token)
		waitConnected(b.ID, true)
		for range 4 { // round robin over both
			want200(viaName)
		}
		agentA.kill()
		for range 4 { // the first may still pick A's dying session and fail over within the same dial
			want200(viaName)
		}
	})
	t.Run("an unknown token is refused", func(t *testing.T) {
		bad := startAgent(t, bin, ns, "https://"+gh.Server.APIAddr(), caFile, "gx_not-a-real-token")
		if !bad.exited(30 * time.Second) {
			t.Fatal("the agent with an unknown token kept running")
		}
		if !strings.Contains(bad.out.String(), "refused") {
			t.Fatalf("agent output: %s", bad.out.String())
		}
	})
	t.Run("a revoked token is refused and its session closed", func(t *testing.T) {
		var rotated extenderView
		gh.JSON("POST", proxyAPI+"/extenders/"+b.ID+"/token", adm, nil, http.StatusOK, &rotated)
		if rotated.Token == "" || rotated.Token == b.Token {
			t.Fatalf("rotate: %+v", rotated)
		}
		waitConnected(b.ID, false)
		want502(viaName, "site-a")
		old := startAgent(t, bin, ns, "https://"+gh.Server.APIAddr(), caFile, b.Token)
		if !old.exited(30*time.Second) || !strings.Contains(old.out.String(), "refused") {
			t.Fatalf("agent with the revoked token: %s", old.out.String())
		}
	})
	t.Run("the token is never stored or shown in clear", func(t *testing.T) {
		body := func(path string) string { _, b := gh.Do("GET", path, adm, nil); return string(b) }
		for _, p := range []string{proxyAPI + "/extenders", proxyAPI + "/extenders/" + a.ID, "/audit/api/v1/events"} {
			if strings.Contains(body(p), a.Token) {
				t.Errorf("%s shows the token", p)
			}
		}
		filepath.Walk(gh.Cfg.DataDir, func(path string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() {
				if b, _ := os.ReadFile(path); strings.Contains(string(b), a.Token) {
					t.Errorf("%s holds the token in clear", path)
				}
			}
			return nil
		})
	})
}
