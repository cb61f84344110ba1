package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// collector is a plain HTTP server that keeps the Authorization header of every request it gets.
type collector struct {
	*httptest.Server
	mu   sync.Mutex
	auth []string
}

func startCollector(t *testing.T) *collector {
	t.Helper()
	c := &collector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.auth = append(c.auth, r.Header.Get("Authorization"))
		c.mu.Unlock()
		w.Write([]byte("collected"))
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *collector) seen() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.auth, ";")
}

// TestRoutingNeedsSuperuser pins the configuration API's way to the target secret: a connection policy's
// server_address routes requests (and the target secret injected into them) to another address, and
// transport_security client-only speaks plain HTTP to the target. With config-manage alone a delegated
// administrator could route a target's traffic to a server of theirs and read the secret off it. Creating a
// connection policy that routes or goes plain, or changing what such a policy routes (its route, its networks,
// switching it on), now needs every permission, refused with 403 naming the field, at staging and at commit.
func TestRoutingNeedsSuperuser(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	evil := startCollector(t)
	evilHost, evilPortS, _ := net.SplitHostPort(evil.Listener.Addr().String())
	var evilPort int
	fmt.Sscan(evilPortS, &evilPort)
	c := f.credential(f.alpha, "steered", nil)

	cfgRole := f.gh.Create(rolesAPI+"/roles", f.adm, map[string]any{"name": "config-admins", "permissions": []string{"config-manage"}})
	uid := f.gh.Create(usersAPI+"/users", f.adm, map[string]any{"username": "cfg-admin", "password": "Cfg-admin-pass-1", "enabled": true})
	f.gh.JSON("PUT", rolesAPI+"/users/"+uid+"/roles", f.adm, []map[string]string{{"id": cfgRole}}, http.StatusOK, nil)
	deleg := newCfgAdminAs(t, f.gh, "cfg-admin", "Cfg-admin-pass-1")
	root := newCfgAdmin(t, f.gh)

	// try sends a write as the delegated administrator and returns the status and the field its error names.
	try := func(method, path string, body any) (int, string) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, f.gh.URL+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		resp, err := deleg.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var e struct {
			Error struct{ Details struct{ Field string } }
		}
		json.Unmarshal(raw, &e)
		return resp.StatusCode, e.Error.Details.Field
	}
	rollback := func() { try("DELETE", "/api/transaction", nil) }
	fix := map[string]any{"selection": "fix", "address": evilHost, "port": evilPort}

	steer := []struct {
		name, field string
		change      func(b map[string]any)
	}{
		{"route to another address", "server_address", func(b map[string]any) { b["server_address"] = fix }},
		{"nat into another network", "server_address", func(b map[string]any) {
			b["server_address"] = map[string]any{"selection": "nat", "network": "127.0.0.0/8"}
		}},
		{"plain HTTP to the target", "transport_security.selection", func(b map[string]any) {
			b["transport_security"] = map[string]any{"selection": "client-only"}
		}},
	}
	for _, s := range steer {
		t.Run(s.name, func(t *testing.T) {
			b := deleg.body(cfgDefaultConn)
			s.change(b)
			status, field := try("PUT", cfgDefaultConn, b)
			if status != http.StatusForbidden || field != s.field {
				t.Errorf("config-manage steering the default connection: %d naming %q, want 403 naming %s", status, field, s.field)
			}
			try("PUT", "/api/transaction", map[string]string{"status": "commit"})
			rollback()
			if st := plainGet(t, f, "", "http://"+f.http.HostPort+"/api/items", c.Secret); st != http.StatusOK {
				t.Fatalf("request after the refused change: %d", st)
			}
			if got := evil.seen(); got != "" {
				t.Fatalf("the collector got the injected target secret: %q", got)
			}
		})
	}

	// A new connection policy that routes is the superuser's too; one that does not is config-manage's.
	policy := func(name string, sa map[string]any) map[string]any {
		return map[string]any{"name": name, "active": true, "server_address": sa,
			"network": map[string]any{"clients": []string{"0.0.0.0/0"}, "targets": []string{"10.99.0.0/16"}, "ports": []int{}}}
	}
	if status, field := try("POST", cfgConnections, policy("evil", fix)); status != http.StatusForbidden || field != "server_address" {
		t.Errorf("config-manage creating a routing connection policy: %d naming %q, want 403 naming server_address", status, field)
	}
	rollback()
	if status, _ := try("POST", cfgConnections, policy("plain", map[string]any{"selection": "original"})); status != http.StatusCreated {
		t.Errorf("config-manage creating an ordinary connection policy: %d, want 201", status)
	}
	if status, _ := try("PUT", "/api/transaction", map[string]string{"status": "commit"}); status != http.StatusOK {
		t.Errorf("commit of an ordinary connection policy: %d", status)
	}

	// A routing policy the superuser set up: config-manage may not widen what it routes or switch it on, but may
	// still edit what does not steer (its name) and take the route away.
	key := root.create(cfgConnections, func() map[string]any { p := policy("routed", fix); p["active"] = false; return p }())
	root.commit()
	path := cfgConnections + "/" + key
	for _, s := range []struct {
		name, field string
		change      func(b map[string]any)
	}{
		{"widen its targets", "network", func(b map[string]any) {
			b["network"].(map[string]any)["targets"] = []string{"0.0.0.0/0", "*"}
		}},
		{"switch it on", "active", func(b map[string]any) { b["active"] = true }},
		{"move its route", "server_address", func(b map[string]any) {
			b["server_address"] = map[string]any{"selection": "fix", "address": "127.0.0.1", "port": 1}
		}},
	} {
		b := deleg.body(path)
		s.change(b)
		if status, field := try("PUT", path, b); status != http.StatusForbidden || field != s.field {
			t.Errorf("config-manage on a routing policy, %s: %d naming %q, want 403 naming %s", s.name, status, field, s.field)
		}
		rollback()
	}
	b := deleg.body(path)
	b["name"] = "routed-renamed"
	deleg.call("PUT", path, b, http.StatusOK)
	b["server_address"] = map[string]any{"selection": "original"}
	deleg.call("PUT", path, b, http.StatusOK)
	deleg.commit()
}
