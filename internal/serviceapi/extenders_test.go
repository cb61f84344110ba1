package serviceapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

const extendersPath = proxyPath + "/extenders"

func (e *matrixEnv) victimExtender() string {
	return e.gh.Create(extendersPath, e.adm, map[string]any{"name": e.unique("victim-ext"), "routing_prefix": "victim"})
}

func (e *matrixEnv) victimCertExtender() string {
	return e.gh.Create(extendersPath, e.adm, map[string]any{"name": e.unique("victim-cert-ext"), "routing_prefix": "victim", "authentication": "certificate"})
}

func TestExtenderObjects(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	var created struct{ ID, Token string }
	gh.JSON("POST", extendersPath, adm, map[string]any{"name": "site-a-1", "routing_prefix": "Site-A"}, http.StatusCreated, &created)
	if created.ID == "" || !strings.HasPrefix(created.Token, "gx_") {
		t.Fatalf("create answer: %+v", created)
	}
	status, body := gh.Do("GET", extendersPath+"/"+created.ID, adm, nil)
	if status != 200 || strings.Contains(string(body), created.Token) || !strings.Contains(string(body), `"routing_prefix":"site-a"`) ||
		!strings.Contains(string(body), `"connected":false`) {
		t.Fatalf("get: %d %s", status, body)
	}

	t.Run("a status whose heartbeat went stale is not connected", func(t *testing.T) {
		st := gh.Server.Store()
		for _, c := range []struct {
			beat time.Duration
			want string
		}{{-time.Second, `"connected":true`}, {-time.Hour, `"connected":false`}} {
			now := time.Now()
			if err := st.SetExtenderStatus(context.Background(), created.ID, now.Add(-2*time.Hour), "10.0.0.9:5555", "v1", now.Add(c.beat)); err != nil {
				t.Fatal(err)
			}
			if _, b := gh.Do("GET", extendersPath+"/"+created.ID, adm, nil); !strings.Contains(string(b), c.want) {
				t.Errorf("heartbeat %v ago: %s, want %s", -c.beat, b, c.want)
			}
		}
		st.SetExtenderStatus(context.Background(), created.ID, time.Time{}, "", "", time.Time{})
	})

	t.Run("bad input names the field and stores nothing", func(t *testing.T) {
		for _, c := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"routing_prefix": "x"}, "name"},
			{map[string]any{"name": "n"}, "routing_prefix"},
			{map[string]any{"name": "n", "routing_prefix": "a/b"}, "routing_prefix"},
			{map[string]any{"name": "n", "routing_prefix": "ok", "token": "mine"}, "token"},
			{map[string]any{"name": "n", "routing_prefix": "ok", "authentication": "password"}, "authentication"},
			{map[string]any{"name": "n", "routing_prefix": "ok", "authentication": 1}, "authentication"},
		} {
			status, b := gh.Do("POST", extendersPath, adm, c.body)
			if status != http.StatusBadRequest || !strings.Contains(string(b), c.field) {
				t.Errorf("%v: %d %s, want 400 naming %s", c.body, status, b, c.field)
			}
		}
		var list struct{ Count int }
		gh.JSON("GET", extendersPath, adm, nil, http.StatusOK, &list)
		if list.Count != 1 {
			t.Fatalf("%d extenders stored, want 1", list.Count)
		}
	})

	t.Run("rotate gives a new token and audits without it", func(t *testing.T) {
		var rotated struct{ ID, Token string }
		gh.JSON("POST", extendersPath+"/"+created.ID+"/token", adm, nil, http.StatusOK, &rotated)
		if rotated.Token == "" || rotated.Token == created.Token {
			t.Fatalf("rotate: %+v", rotated)
		}
		_, audit := gh.Do("GET", "/audit/api/v1/events", adm, nil)
		if !strings.Contains(string(audit), "rotate-token") || !strings.Contains(string(audit), `"extender"`) {
			t.Fatalf("audit lacks the rotation: %s", audit)
		}
		if strings.Contains(string(audit), rotated.Token) || strings.Contains(string(audit), created.Token) {
			t.Fatal("audit shows a token")
		}
	})

	t.Run("targets accept extender NAT hosts and refuse malformed ones", func(t *testing.T) {
		ep := func(nat string) map[string]any {
			return map[string]any{"name": "t-" + strings.NewReplacer(":", "", "/", "", ".", "").Replace(nat),
				"authorized_endpoints": []map[string]any{{"host": "api.example.com", "protocols": []string{"https"},
					"methods": []string{"GET"}, "paths": []string{"/**"}, "nat_target_host": nat}},
				"target_credential": map[string]any{"type": "token", "bearer_token": "t0ken-0123456789"}}
		}
		// An unknown prefix is accepted: extenders and targets are made in either order.
		for _, nat := range []string{"extender:site-a", "extender:no-such-site", "extender:site-a/10.0.0.5:8443", "extender:site-a/api.internal"} {
			if status, b := gh.Do("POST", targetsPath, adm, ep(nat)); status != http.StatusCreated {
				t.Errorf("%s: %d %s", nat, status, b)
			}
		}
		for _, nat := range []string{"extender:", "extender:a b", "extender:site-a/", "extender:site-a/h:99999"} {
			if status, b := gh.Do("POST", targetsPath, adm, ep(nat)); status != http.StatusBadRequest || !strings.Contains(string(b), "nat_target_host") {
				t.Errorf("%s: %d %s, want 400 naming nat_target_host", nat, status, b)
			}
		}
	})
}
