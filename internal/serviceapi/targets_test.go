package serviceapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testca"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
	"github.com/google/go-cmp/cmp"
)

// selfSigned returns a fresh self-signed certificate (a CA of its own, named cn) and its key in PEM.
func selfSigned(t *testing.T, cn string) (certPEM, keyPEM string) {
	t.Helper()
	ca := testca.New(t, cn)
	return string(ca.PEM), string(ca.KeyPEM)
}

type endpoint struct {
	Host                 string   `json:"host"`
	Protocols            []string `json:"protocols"`
	Methods              []string `json:"methods"`
	Paths                []string `json:"paths"`
	AllowUnauthenticated bool     `json:"allow_unauthenticated"`
	NATTargetHost        string   `json:"nat_target_host"`
}

type targetGet struct {
	ID                    string         `json:"id"`
	Name                  string         `json:"name"`
	Comment               string         `json:"comment"`
	Tags                  []string       `json:"tags"`
	Roles                 []ref          `json:"roles"`
	AuthorizedEndpoints   []endpoint     `json:"authorized_endpoints"`
	UnauthorizedEndpoints []endpoint     `json:"unauthorized_endpoints"`
	TLSTrustAnchors       string         `json:"tls_trust_anchors"`
	TLSInsecureSkipVerify bool           `json:"tls_insecure_skip_verify"`
	Credential            map[string]any `json:"target_credential"`
	Disabled              string         `json:"disabled"`
	AuditEnabled          bool           `json:"audit_enabled"`
	Created               string         `json:"created"`
	Author                string         `json:"author"`
	Updated               string         `json:"updated"`
	UpdatedBy             string         `json:"updated_by"`
}

func TestTargetsCRUD(t *testing.T) {
	forEachDB(t, func(t *testing.T, gh *testserver.Instance) {
		adm := gh.AdminToken()
		ctx := context.Background()
		role := gh.Create(rolesPath, adm, map[string]any{"name": "k8s-users"})
		anchor, _ := selfSigned(t, "upstream-ca")
		const secret = "upstream-bearer-SECRET-1"
		id := gh.Create(targetsPath, adm, map[string]any{
			"name": "kube", "comment": "cluster api", "tags": []string{"prod", "k8s"}, "roles": []map[string]string{{"id": role}},
			"authorized_endpoints": []map[string]any{{"host": "KUBE.example.com:6443", "protocols": []string{"HTTPS"}, "methods": []string{"get", "POST"},
				"paths": []string{"/api/**", "/apis/*/v1"}, "nat_target_host": "10.0.0.5:6443"}},
			"unauthorized_endpoints": []map[string]any{{"host": "kube.example.com:6443", "protocols": []string{"*"}, "methods": []string{"*"}, "paths": []string{"/api/v1/secrets/**"}}},
			"tls_trust_anchors":      anchor, "tls_insecure_skip_verify": false, "audit_enabled": true,
			"target_credential": map[string]any{"type": "token", "bearer_token": secret},
		})

		b := mustGet(t, gh, targetsPath+"/"+id, adm)
		if strings.Contains(string(b), secret) {
			t.Fatalf("GET echoes the target secret: %s", b)
		}
		var got targetGet
		gh.JSON("GET", targetsPath+"/"+id, adm, nil, http.StatusOK, &got)
		if got.Name != "kube" || got.Comment != "cluster api" || !cmp.Equal(got.Tags, []string{"prod", "k8s"}) ||
			!cmp.Equal(got.Roles, []ref{{role, "k8s-users"}}) || !got.AuditEnabled || got.Disabled != "NOT_DISABLED" || got.Author != "admin" {
			t.Errorf("GET: %+v", got)
		}
		if strings.TrimSpace(got.TLSTrustAnchors) != strings.TrimSpace(anchor) {
			t.Errorf("tls_trust_anchors changed: %q", got.TLSTrustAnchors)
		}
		if len(got.AuthorizedEndpoints) != 1 || len(got.UnauthorizedEndpoints) != 1 {
			t.Fatalf("endpoints: %+v", got)
		}
		if e := got.AuthorizedEndpoints[0]; !strings.EqualFold(e.Host, "kube.example.com:6443") || e.NATTargetHost != "10.0.0.5:6443" ||
			!cmp.Equal(e.Paths, []string{"/api/**", "/apis/*/v1"}) {
			t.Errorf("authorized endpoint: %+v", e)
		}
		if d := cmp.Diff(map[string]any{"type": "token", "bearer_token_set": true}, got.Credential); d != "" {
			t.Errorf("target_credential (-want +got):\n%s", d)
		}

		// A PUT without the secret keeps it; the store still holds the original value.
		var put targetGet
		gh.JSON("PUT", targetsPath+"/"+id, adm, map[string]any{"comment": "renamed", "target_credential": map[string]any{"type": "token"}}, http.StatusOK, &put)
		if put.Comment != "renamed" || put.Name != "kube" || put.Credential["bearer_token_set"] != true {
			t.Errorf("PUT answer: %+v", put)
		}
		// A full GET document sent back (with its *_set flags) is a valid PUT and keeps the secret too.
		gh.JSON("PUT", targetsPath+"/"+id, adm, got, http.StatusOK, nil)
		stored, err := gh.Server.Store().Target(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Credential.BearerToken != secret {
			t.Errorf("stored bearer token after PUTs without it: %q", stored.Credential.BearerToken)
		}

		// A new secret replaces the old one.
		gh.JSON("PUT", targetsPath+"/"+id, adm, map[string]any{"target_credential": map[string]any{"type": "token", "bearer_token": "rotated-2"}}, http.StatusOK, nil)
		if stored, _ = gh.Server.Store().Target(ctx, id); stored.Credential.BearerToken != "rotated-2" {
			t.Errorf("rotated token not stored")
		}

		// Changing the type requires the new type's secrets.
		checkBad(t, gh, "PUT", targetsPath+"/"+id, adm, []badCase{
			{"type change without secret", map[string]any{"target_credential": map[string]any{"type": "header", "header_name": "X-Api-Key"}}, 400, "target_credential.header_value"},
			{"type change to basicauth without password", map[string]any{"target_credential": map[string]any{"type": "basicauth", "basic_auth_username": "svc"}}, 400, "target_credential.basic_auth_password"},
		})
		var hdr targetGet
		gh.JSON("PUT", targetsPath+"/"+id, adm, map[string]any{"target_credential": map[string]any{"type": "header", "header_name": "X-Api-Key", "header_value": "hv-SECRET"}}, http.StatusOK, &hdr)
		if d := cmp.Diff(map[string]any{"type": "header", "header_name": "X-Api-Key", "header_value_set": true}, hdr.Credential); d != "" {
			t.Errorf("header credential (-want +got):\n%s", d)
		}
		if stored, _ = gh.Server.Store().Target(ctx, id); stored.Credential.HeaderValue != "hv-SECRET" || stored.Credential.BearerToken != "" {
			t.Errorf("after type change the store has %+v", stored.Credential)
		}

		gh.JSON("DELETE", targetsPath+"/"+id, adm, nil, http.StatusOK, nil)
		gh.JSON("GET", targetsPath+"/"+id, adm, nil, http.StatusNotFound, nil)
		gh.JSON("PUT", targetsPath+"/"+id, adm, map[string]any{"comment": "x"}, http.StatusNotFound, nil)
		gh.JSON("DELETE", targetsPath+"/"+id, adm, nil, http.StatusNotFound, nil)
	})
}

// TestTargetSecretsWriteOnly creates a target of every credential type and checks that no response carries a
// secret value, only its *_set flag.
func TestTargetSecretsWriteOnly(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	cert, key := selfSigned(t, "client")
	for _, c := range []struct {
		cred    map[string]any
		secrets []string
		want    map[string]any
	}{
		{map[string]any{"type": "token", "bearer_token": "tok-SECRET-a"}, []string{"tok-SECRET-a"},
			map[string]any{"type": "token", "bearer_token_set": true}},
		{map[string]any{"type": "basicauth", "basic_auth_username": "svc", "basic_auth_password": "pw-SECRET-b"}, []string{"pw-SECRET-b"},
			map[string]any{"type": "basicauth", "basic_auth_username": "svc", "basic_auth_password_set": true}},
		{map[string]any{"type": "header", "header_name": "X-Key", "header_value": "hv-SECRET-c"}, []string{"hv-SECRET-c"},
			map[string]any{"type": "header", "header_name": "X-Key", "header_value_set": true}},
		{map[string]any{"type": "certificate", "certificate": cert, "private_key": key}, []string{strings.Split(key, "\n")[1]},
			map[string]any{"type": "certificate", "certificate": strings.TrimSpace(cert), "private_key_set": true}},
	} {
		t.Run(c.cred["type"].(string), func(t *testing.T) {
			body := targetBody("t-" + c.cred["type"].(string))
			body["target_credential"] = c.cred
			id := gh.Create(targetsPath, adm, body)
			var got targetGet
			gh.JSON("GET", targetsPath+"/"+id, adm, nil, http.StatusOK, &got)
			if d := cmp.Diff(c.want, got.Credential); d != "" {
				t.Errorf("target_credential (-want +got):\n%s", d)
			}
			for _, path := range []string{targetsPath + "/" + id, targetsPath, auditPath} {
				b := mustGet(t, gh, path, adm)
				for _, s := range c.secrets {
					if strings.Contains(string(b), s) {
						t.Errorf("GET %s contains a secret value", path)
					}
				}
			}
			_, b := gh.Do("POST", targetsPath+"/search", adm, map[string]any{"keywords": "t-"})
			_, pb := gh.Do("PUT", targetsPath+"/"+id, adm, map[string]any{"comment": "x"})
			for _, s := range c.secrets {
				if strings.Contains(string(b), s) || strings.Contains(string(pb), s) {
					t.Errorf("search or PUT answer contains a secret value")
				}
			}
		})
	}
}

func TestTargetsValidation(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	gh.Create(targetsPath, adm, targetBody("taken"))
	cert, key := selfSigned(t, "a")
	otherCert, _ := selfSigned(t, "b")
	_, otherKey := selfSigned(t, "c")
	ep := func(mod func(e map[string]any)) []map[string]any {
		e := map[string]any{"host": "api.example.com", "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/**"}}
		mod(e)
		return []map[string]any{e}
	}
	with := func(k string, v any) map[string]any {
		b := targetBody("new-target")
		b[k] = v
		return b
	}
	cred := func(kv ...string) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return with("target_credential", m)
	}
	noCred := targetBody("new-target")
	delete(noCred, "target_credential")
	noName := targetBody("")
	const f = "target_credential."
	cases := []badCase{
		{"missing name", noName, 400, "name"},
		{"duplicate name", targetBody("taken"), 409, "name"},
		{"blank tag", with("tags", []string{"ok", " "}), 400, "tags[1]"},
		{"unknown role", with("roles", []map[string]string{{"id": "nope"}}), 400, "roles[0].id"},
		{"no authorized endpoints", with("authorized_endpoints", []any{}), 400, "authorized_endpoints"},
		{"empty host", with("authorized_endpoints", ep(func(e map[string]any) { e["host"] = "" })), 400, "authorized_endpoints[0].host"},
		{"host with path", with("authorized_endpoints", ep(func(e map[string]any) { e["host"] = "api.example.com/x" })), 400, "authorized_endpoints[0].host"},
		{"host with scheme", with("authorized_endpoints", ep(func(e map[string]any) { e["host"] = "https://api.example.com" })), 400, "authorized_endpoints[0].host"},
		{"bad port", with("authorized_endpoints", ep(func(e map[string]any) { e["host"] = "api.example.com:99999" })), 400, "authorized_endpoints[0].host"},
		{"IPv6 without brackets", with("authorized_endpoints", ep(func(e map[string]any) { e["host"] = "::1:443" })), 400, "authorized_endpoints[0].host"},
		{"no protocols", with("authorized_endpoints", ep(func(e map[string]any) { e["protocols"] = []string{} })), 400, "authorized_endpoints[0].protocols"},
		{"bad protocol", with("authorized_endpoints", ep(func(e map[string]any) { e["protocols"] = []string{"https", "ftp"} })), 400, "authorized_endpoints[0].protocols[1]"},
		{"bad method", with("authorized_endpoints", ep(func(e map[string]any) { e["methods"] = []string{"FETCH"} })), 400, "authorized_endpoints[0].methods[0]"},
		{"no paths", with("authorized_endpoints", ep(func(e map[string]any) { e["paths"] = []string{} })), 400, "authorized_endpoints[0].paths"},
		{"relative path", with("authorized_endpoints", ep(func(e map[string]any) { e["paths"] = []string{"/ok", "api/x"} })), 400, "authorized_endpoints[0].paths[1]"},
		{"partial wildcard", with("authorized_endpoints", ep(func(e map[string]any) { e["paths"] = []string{"/api/v*"} })), 400, "authorized_endpoints[0].paths[0]"},
		{"dot segment", with("authorized_endpoints", ep(func(e map[string]any) { e["paths"] = []string{"/api/../admin"} })), 400, "authorized_endpoints[0].paths[0]"},
		{"bad nat host", with("authorized_endpoints", ep(func(e map[string]any) { e["nat_target_host"] = "*.example.com" })), 400, "authorized_endpoints[0].nat_target_host"},
		{"bad unauthorized endpoint", with("unauthorized_endpoints", ep(func(e map[string]any) { e["methods"] = []string{"BREW"} })), 400, "unauthorized_endpoints[0].methods[0]"},
		{"anchors not PEM", with("tls_trust_anchors", "hello"), 400, "tls_trust_anchors"},
		{"anchors with a key", with("tls_trust_anchors", key), 400, "tls_trust_anchors"},
		{"anchors with trailing junk", with("tls_trust_anchors", cert+"junk"), 400, "tls_trust_anchors"},
		{"anchors broken certificate", with("tls_trust_anchors", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 400, "tls_trust_anchors"},
		{"no credential", noCred, 400, "target_credential"},
		{"unknown type", cred("type", "kerberos"), 400, f + "type"},
		{"token without token", cred("type", "token"), 400, f + "bearer_token"},
		{"basicauth without username", cred("type", "basicauth", "basic_auth_password", "p"), 400, f + "basic_auth_username"},
		{"basicauth username with colon", cred("type", "basicauth", "basic_auth_username", "a:b", "basic_auth_password", "p"), 400, f + "basic_auth_username"},
		{"basicauth without password", cred("type", "basicauth", "basic_auth_username", "a"), 400, f + "basic_auth_password"},
		{"header without name", cred("type", "header", "header_value", "v"), 400, f + "header_name"},
		{"header name with space", cred("type", "header", "header_name", "X Key", "header_value", "v"), 400, f + "header_name"},
		{"header name Host", cred("type", "header", "header_name", "Host", "header_value", "v"), 400, f + "header_name"},
		{"header name Connection", cred("type", "header", "header_name", "connection", "header_value", "v"), 400, f + "header_name"},
		{"header name Transfer-Encoding", cred("type", "header", "header_name", "Transfer-Encoding", "header_value", "v"), 400, f + "header_name"},
		{"header name Content-Length", cred("type", "header", "header_name", "Content-Length", "header_value", "v"), 400, f + "header_name"},
		{"header name Proxy-Authorization", cred("type", "header", "header_name", "Proxy-Authorization", "header_value", "v"), 400, f + "header_name"},
		{"header without value", cred("type", "header", "header_name", "X-Key"), 400, f + "header_value"},
		{"header value with newline", cred("type", "header", "header_name", "X-Key", "header_value", "a\r\nX-Evil: 1"), 400, f + "header_value"},
		{"certificate without certificate", cred("type", "certificate", "private_key", key), 400, f + "certificate"},
		{"certificate without key", cred("type", "certificate", "certificate", cert), 400, f + "private_key"},
		{"certificate and key mismatch", cred("type", "certificate", "certificate", otherCert, "private_key", otherKey), 400, f + "certificate"},
		{"unknown field", with("owner", "me"), 400, "owner"},
		{"tags wrong type", with("tags", "prod"), 400, "tags"},
		{"disabled wrong type", with("disabled", "no"), 400, "disabled"},
		{"malformed JSON", `{"name":"x",}`, 400, ""},
	}
	checkBad(t, gh, "POST", targetsPath, adm, cases)

	// The same rules apply to PUT, and a refused PUT changes nothing.
	id := gh.Create(targetsPath, adm, targetBody("kept", gh.Create(rolesPath, adm, map[string]any{"name": "kr"})))
	before := mustGet(t, gh, targetsPath+"/"+id, adm)
	var putCases []badCase
	for _, c := range cases {
		switch c.name {
		case "missing name", "no credential", "duplicate name", "token without token":
			continue // create-only rules: PUT keeps the stored name, credential and (same type) secret
		}
		if m, ok := c.body.(map[string]any); ok {
			m["name"] = "kept"
		}
		putCases = append(putCases, c)
	}
	putCases = append(putCases, badCase{"rename onto existing", map[string]any{"name": "taken"}, 409, "name"})
	checkBad(t, gh, "PUT", targetsPath+"/"+id, adm, putCases)
	if after := mustGet(t, gh, targetsPath+"/"+id, adm); string(after) != string(before) {
		t.Errorf("a refused update changed the target:\nbefore %s\nafter  %s", before, after)
	}
}

func TestTargetsSearchAndList(t *testing.T) {
	forEachDB(t, func(t *testing.T, gh *testserver.Instance) {
		adm := gh.AdminToken()
		devs := gh.Create(rolesPath, adm, map[string]any{"name": "devs"})
		ops := gh.Create(rolesPath, adm, map[string]any{"name": "ops"})
		mk := func(name, comment, host string, tags []string, roles ...string) {
			b := targetBody(name, roles...)
			b["comment"], b["tags"] = comment, tags
			b["authorized_endpoints"] = []map[string]any{{"host": host, "protocols": []string{"https"}, "methods": []string{"*"}, "paths": []string{"/**"}}}
			gh.Create(targetsPath, adm, b)
		}
		mk("github", "source hosting", "api.github.com", []string{"saas", "code"}, devs)
		mk("kube-prod", "production cluster", "kube.prod.internal:6443", []string{"k8s", "prod"}, ops)
		mk("kube-dev", "development cluster", "kube.dev.internal:6443", []string{"k8s"}, devs, ops)

		names := func(method, path string, body any) (int, []string) {
			var l struct {
				Count int         `json:"count"`
				Items []targetGet `json:"items"`
			}
			gh.JSON(method, path, adm, body, http.StatusOK, &l)
			out := []string{}
			for _, it := range l.Items {
				out = append(out, it.Name)
			}
			return l.Count, out
		}
		for _, c := range []struct {
			name  string
			body  map[string]any
			query string
			want  []string
		}{
			{"all", map[string]any{}, "", []string{"github", "kube-dev", "kube-prod"}},
			{"keyword in name", map[string]any{"keywords": "KUBE"}, "", []string{"kube-dev", "kube-prod"}},
			{"keyword in comment", map[string]any{"keywords": "production"}, "", []string{"kube-prod"}},
			{"keyword in host", map[string]any{"keywords": "github.com"}, "", []string{"github"}},
			{"keyword in tag", map[string]any{"keywords": "saas"}, "", []string{"github"}},
			{"all keywords must hit", map[string]any{"keywords": "kube cluster dev"}, "", []string{"kube-dev"}},
			{"tag filter", map[string]any{"tags": []string{"k8s"}}, "", []string{"kube-dev", "kube-prod"}},
			{"two tags", map[string]any{"tags": []string{"k8s", "prod"}}, "", []string{"kube-prod"}},
			{"role by id", map[string]any{"roles": []string{devs}}, "", []string{"github", "kube-dev"}},
			{"role by name", map[string]any{"roles": []string{"ops"}}, "", []string{"kube-dev", "kube-prod"}},
			{"keyword and role", map[string]any{"keywords": "kube", "roles": []string{devs}}, "", []string{"kube-dev"}},
			{"no hit", map[string]any{"keywords": "nothing-like-this"}, "", []string{}},
			{"sorted desc with paging", map[string]any{}, "?sortdir=desc&limit=2", []string{"kube-prod", "kube-dev"}},
			{"offset", map[string]any{}, "?offset=2", []string{"kube-prod"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				_, got := names("POST", targetsPath+"/search"+c.query, c.body)
				if !cmp.Equal(got, c.want) {
					t.Errorf("search %v%s: %v, want %v", c.body, c.query, got, c.want)
				}
			})
		}
		if n, got := names("GET", targetsPath+"?filter=cluster&sortkey=created&sortdir=desc", nil); n != 2 || !cmp.Equal(got, []string{"kube-dev", "kube-prod"}) {
			t.Errorf("list filter=cluster: %d %v", n, got)
		}
		if n, got := names("GET", targetsPath+"?limit=1", nil); n != 3 || !cmp.Equal(got, []string{"github"}) {
			t.Errorf("list limit=1: %d %v", n, got)
		}
		checkListParams(t, gh, targetsPath, adm)
		checkBad(t, gh, "POST", targetsPath+"/search", adm, []badCase{
			{"unknown field", map[string]any{"keyword": "x"}, 400, "keyword"},
			{"tags wrong type", map[string]any{"tags": "k8s"}, 400, "tags"},
		})

		var tags struct {
			Count int      `json:"count"`
			Items []string `json:"items"`
		}
		gh.JSON("GET", targetsPath+"/tags", adm, nil, http.StatusOK, &tags)
		if tags.Count != 4 || !cmp.Equal(tags.Items, []string{"code", "k8s", "prod", "saas"}) {
			t.Errorf("tags: %+v", tags)
		}
	})
}
