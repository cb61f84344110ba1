package serviceapi_test

import (
	"context"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/directory/ldaptest"
	"github.com/gatehouse-dev/gatehouse/internal/proxy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

const sourcesPath = "/role-store/api/v1/sources"

type sourceView struct {
	ID              string         `json:"id"`
	Name            string         `json:"name"`
	Enabled         bool           `json:"enabled"`
	TTL             int            `json:"ttl"`
	StatusCode      string         `json:"status_code"`
	StatusText      string         `json:"status_text"`
	Author          string         `json:"author"`
	UsernamePattern []string       `json:"username_pattern"`
	Connection      map[string]any `json:"connection"`
	PasswordPolicy  map[string]any `json:"session_password_policy"`
}

func ldapSourceBody(srv *ldaptest.Server, name, bindPassword string) map[string]any {
	return map[string]any{
		"name": name, "enabled": true, "ttl": 0, "comment": "test directory", "tags": []string{"corp"},
		"connection": map[string]any{
			"type": "LDAP", "address": srv.Host, "port": srv.Port, "ldap_protocol": "STARTTLS",
			"ldap_base": ldaptest.BaseDN, "ldap_user_filter": "(objectClass=inetOrgPerson)",
			"ldap_bind_dn": ldaptest.ReaderDN, "ldap_bind_password": bindPassword, "tls_trust_anchors": srv.CAPEM,
		},
	}
}

// synced waits for the background syncs the last request started.
func synced(gh *testserver.Instance) { gh.Server.Directory().Wait() }

func getSource(t *testing.T, gh *testserver.Instance, tok, id string) sourceView {
	t.Helper()
	var v sourceView
	gh.JSON("GET", sourcesPath+"/"+id, tok, nil, http.StatusOK, &v)
	return v
}

// authorize asks the proxy's policy gate about a request with a proxy credential secret.
func authorize(gh *testserver.Instance, secret string) error {
	_, err := gh.Server.Gate().Authorize(context.Background(), &proxy.AuthRequest{
		Client: netip.MustParseAddrPort("127.0.0.1:40000"), Secret: secret, Scheme: "https",
		Host: "api.example.com", Method: "GET", Path: "/v1/things",
	})
	return err
}

// TestLDAPSourceEndToEnd points Gatehouse at a real OpenLDAP through the sources API and follows a directory
// user from sync, through login by bind and a role from a group rule, to losing access when removed upstream.
func TestLDAPSourceEndToEnd(t *testing.T) {
	forEachDB(t, func(t *testing.T, gh *testserver.Instance) {
		srv := ldaptest.Start(t)
		adm := gh.AdminToken()

		id := gh.Create(sourcesPath, adm, ldapSourceBody(srv, "corp", ldaptest.ReaderPassword))
		synced(gh)
		src := getSource(t, gh, adm, id)
		if src.StatusCode != "OK" || !strings.Contains(src.StatusText, "3 added") {
			t.Fatalf("status after create: %s %q", src.StatusCode, src.StatusText)
		}
		if src.PasswordPolicy["password_min_length"] != float64(0) || src.PasswordPolicy["password_strength"] != "WEAK" {
			t.Errorf("session password policy (not supported, so at its defaults): %v", src.PasswordPolicy)
		}
		if src.Author != "admin" || src.Connection["ldap_protocol"] != "STARTTLS" {
			t.Errorf("source: %+v", src)
		}

		// A role for members of the ops group: alice and bob, not carol.
		role := gh.Create(rolesPath, adm, map[string]any{"name": "ldap-ops", "permissions": []string{auth.APIProxyCredentialsOwn},
			"source_rules": []map[string]any{{"source": map[string]string{"id": id}, "group_dn": ldaptest.OpsGroupDN}}})
		var members struct {
			Items []struct {
				Name     string `json:"name"`
				Explicit bool   `json:"explicit"`
				Rules    []struct {
					GroupDN string `json:"group_dn"`
				} `json:"rules"`
			} `json:"items"`
		}
		gh.JSON("GET", rolesPath+"/"+role+"/members", adm, nil, http.StatusOK, &members)
		var names []string
		for _, m := range members.Items {
			if m.Explicit || len(m.Rules) != 1 || m.Rules[0].GroupDN != store.NormalizeDN(ldaptest.OpsGroupDN) {
				t.Errorf("member %+v: want granted by the ops rule only", m)
			}
			names = append(names, m.Name)
		}
		if !cmp.Equal(names, []string{"alice", "bob"}) {
			t.Errorf("members = %v, want alice and bob", names)
		}

		// Login by bind through the token endpoint.
		if status := tokenStatus(t, gh, "alice", "wrong-password"); status != http.StatusUnauthorized {
			t.Errorf("wrong directory password: status %d, want 401", status)
		}
		alice := gh.Token("alice", ldaptest.Users["alice"])
		gh.JSON("GET", "/auth/api/v1/users/current", alice, nil, http.StatusOK, nil)
		// The configuration API's Basic login binds against the same directory.
		for pw, want := range map[string]int{ldaptest.Users["alice"]: http.StatusOK, "wrong-password": http.StatusUnauthorized} {
			req, _ := http.NewRequest("GET", gh.URL+"/api/authentication", nil)
			req.SetBasicAuth("alice", pw)
			resp, err := gh.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("configuration API login with a directory password: %d, want %d", resp.StatusCode, want)
			}
		}

		// With the role from the group, alice makes a proxy credential that the gate accepts.
		target := gh.Create(targetsPath, adm, targetBody("ldap-api", role))
		cred := gh.Create(ownCreds, alice, map[string]any{"name": "laptop", "target": map[string]string{"id": target}})
		status, secret := gh.Do("GET", ownCreds+"/"+cred+"/secret", alice, nil)
		if status != http.StatusOK {
			t.Fatalf("secret: %d", status)
		}
		if err := authorize(gh, string(secret)); err != nil {
			t.Fatalf("gate refused alice's credential before removal: %v", err)
		}

		// Removed upstream: the next sync disables her; token, login and credential all stop working.
		srv.DeleteUser(t, "alice")
		var refreshed struct {
			Count int `json:"count"`
		}
		gh.JSON("POST", sourcesPath+"/refresh", adm, []string{id}, http.StatusOK, &refreshed)
		if refreshed.Count != 1 {
			t.Errorf("refresh answered %d sources, want 1", refreshed.Count)
		}
		synced(gh)
		if s := getSource(t, gh, adm, id); s.StatusCode != "OK" || !strings.Contains(s.StatusText, "1 disabled") {
			t.Errorf("status after removal: %s %q", s.StatusCode, s.StatusText)
		}
		if status, _ := gh.Do("GET", "/auth/api/v1/users/current", alice, nil); status != http.StatusUnauthorized {
			t.Errorf("removed user's token: status %d, want 401", status)
		}
		if status := tokenStatus(t, gh, "alice", ldaptest.Users["alice"]); status != http.StatusUnauthorized {
			t.Errorf("removed user's login: status %d, want 401", status)
		}
		if err := authorize(gh, string(secret)); err == nil {
			t.Error("gate still accepts the removed user's proxy credential")
		}

		// The server goes away: the status says so and bob stays as synced.
		srv.Stop()
		gh.JSON("POST", sourcesPath+"/refresh", adm, []string{id}, http.StatusOK, nil)
		synced(gh)
		if s := getSource(t, gh, adm, id); s.StatusCode != "CONNECTION_FAILED" {
			t.Errorf("status with the server down: %s %q", s.StatusCode, s.StatusText)
		}
		bob, err := gh.Server.Store().UserByName(context.Background(), "bob")
		if err != nil || !bob.Enabled || bob.Source != id {
			t.Errorf("bob after a failed sync: %+v, %v", bob, err)
		}
	})
}

// TestSourceStatusCodes: a bad bind password and the types that cannot sync yet each say so in status_code.
func TestSourceStatusCodes(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	srv := ldaptest.Start(t)
	adm := gh.AdminToken()
	tests := []struct {
		name     string
		body     map[string]any
		wantCode string
	}{
		{"bad bind password", ldapSourceBody(srv, "bad-bind", "not-the-password"), "BIND_FAILED"},
		{"disabled", offlineSourceBody("off"), "DISABLED"},
	}
	// Types Gatehouse can neither sync nor log in through are refused, not stored.
	for _, body := range []map[string]any{
		{"name": "aws", "enabled": true, "connection": map[string]any{"type": "AWS", "iam_access_key_id": "AKIA1", "iam_secret_access_key": "k"}},
		{"name": "os", "enabled": true, "connection": map[string]any{"type": "OPENSTACK", "openstack_version": "V3", "openstack_endpoint": "https://keystone.example.com"}},
		{"name": "az", "enabled": false, "connection": map[string]any{"type": "AZURE", "azure_tenant_id": "t", "azure_client_id": "c"}},
		{"name": "gcp", "enabled": true, "connection": map[string]any{"type": "GOOGLECLOUD", "google_cloud_project_ids": []string{"p"}}},
		{"name": "gs", "enabled": true, "connection": map[string]any{"type": "GSUITE", "google_gsuite_domain_admin_email": "a@example.com"}},
	} {
		st, b := gh.Do("POST", sourcesPath, adm, body)
		if st != http.StatusBadRequest || !strings.Contains(string(b), `"NOT_SUPPORTED"`) || !strings.Contains(string(b), `"connection.type"`) {
			t.Errorf("source of type %v: %d %s, want 400 NOT_SUPPORTED naming connection.type", body["connection"].(map[string]any)["type"], st, b)
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := gh.Create(sourcesPath, adm, tc.body)
			synced(gh)
			if s := getSource(t, gh, adm, id); s.StatusCode != tc.wantCode || s.StatusText == "" {
				t.Errorf("status = %s %q, want %s with a reason", s.StatusCode, s.StatusText, tc.wantCode)
			}
		})
	}
}

// TestSourcesAPI covers the built-in LOCAL source, validation, write-only sealed secrets and delete.
func TestSourcesAPI(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	srv := ldaptest.Start(t)
	adm := gh.AdminToken()

	var list struct {
		Count int          `json:"count"`
		Items []sourceView `json:"items"`
	}
	gh.JSON("GET", sourcesPath, adm, nil, http.StatusOK, &list)
	if list.Count != 1 || list.Items[0].ID != "local" || list.Items[0].Connection["type"] != "LOCAL" {
		t.Fatalf("sources of a new server: %+v", list)
	}
	gh.JSON("DELETE", sourcesPath+"/local", adm, nil, http.StatusBadRequest, nil)

	bad := func(edit func(map[string]any), property string) {
		t.Helper()
		body := ldapSourceBody(srv, "x", "pw")
		edit(body)
		status, b := gh.Do("POST", sourcesPath, adm, body)
		if status != http.StatusBadRequest || !strings.Contains(string(b), `"property":"`+property+`"`) {
			t.Errorf("want 400 on %s, got %d %s", property, status, b)
		}
	}
	conn := func(key string, v any) func(map[string]any) {
		return func(b map[string]any) { b["connection"].(map[string]any)[key] = v }
	}
	bad(func(b map[string]any) { b["name"] = "" }, "name")
	bad(conn("type", "LOCAL"), "connection.type")
	bad(conn("type", "NIS"), "connection.type")
	bad(conn("ldap_base", "not a dn"), "connection.ldap_base")
	bad(conn("ldap_user_filter", "(uid=alice"), "connection.ldap_user_filter")
	bad(conn("ldap_protocol", "SSL"), "connection.ldap_protocol")
	bad(conn("ldap_user_dn_pattern", "uid=x"), "connection.ldap_user_dn_pattern")
	bad(conn("attribute_mapping", map[string]string{"shoe_size": "x"}), "connection.attribute_mapping.shoe_size")
	bad(func(b map[string]any) { b["username_pattern"] = []string{"[a-"} }, "username_pattern[0]")

	id := gh.Create(sourcesPath, adm, ldapSourceBody(srv, "corp", ldaptest.ReaderPassword))
	synced(gh)
	for _, p := range []string{sourcesPath, sourcesPath + "/" + id} {
		if b := mustGet(t, gh, p, adm); strings.Contains(string(b), ldaptest.ReaderPassword) || strings.Contains(string(b), "ldap_bind_password") {
			t.Errorf("GET %s shows the bind password: %s", p, b)
		}
	}
	// At rest the password is sealed: neither the database nor its WAL holds it in clear.
	for _, f := range []string{"gatehouse.db", "gatehouse.db-wal"} {
		b, err := os.ReadFile(filepath.Join(gh.Cfg.DataDir, f))
		if err == nil && strings.Contains(string(b), ldaptest.ReaderPassword) {
			t.Errorf("%s holds the bind password in clear", f)
		}
	}
	// A PUT without the password keeps it (the sync still binds); one with a wrong password replaces it.
	var got sourceView
	gh.JSON("GET", sourcesPath+"/"+id, adm, nil, http.StatusOK, &got)
	body := ldapSourceBody(srv, "corp-renamed", "")
	delete(body["connection"].(map[string]any), "ldap_bind_password")
	gh.JSON("PUT", sourcesPath+"/"+id, adm, body, http.StatusOK, nil)
	synced(gh)
	if s := getSource(t, gh, adm, id); s.Name != "corp-renamed" || s.StatusCode != "OK" {
		t.Errorf("after PUT without the secret: %s %s %q", s.Name, s.StatusCode, s.StatusText)
	}
	gh.JSON("PUT", sourcesPath+"/"+id, adm, ldapSourceBody(srv, "corp-renamed", "wrong"), http.StatusOK, nil)
	synced(gh)
	if s := getSource(t, gh, adm, id); s.StatusCode != "BIND_FAILED" {
		t.Errorf("after PUT with a wrong secret: %s %q", s.StatusCode, s.StatusText)
	}

	// Deleting the source deletes its users.
	if _, err := gh.Server.Store().UserByName(context.Background(), "carol"); err != nil {
		t.Fatalf("carol before delete: %v", err)
	}
	gh.JSON("DELETE", sourcesPath+"/"+id, adm, nil, http.StatusOK, nil)
	gh.JSON("GET", sourcesPath+"/"+id, adm, nil, http.StatusNotFound, nil)
	if _, err := gh.Server.Store().UserByName(context.Background(), "carol"); err == nil {
		t.Error("carol survived the deletion of her source")
	}
	gh.JSON("POST", sourcesPath+"/refresh", adm, []string{id}, http.StatusNotFound, nil)
}

// offlineSourceBody is a source that needs no network: a disabled LDAP source, which is never synced.
func offlineSourceBody(name string) map[string]any {
	return map[string]any{"name": name, "enabled": false,
		"connection": map[string]any{"type": "LDAP", "address": "ldap.invalid", "ldap_base": "dc=example,dc=org",
			"ldap_bind_dn": "cn=reader,dc=example,dc=org", "ldap_bind_password": "offline-bind-secret"}}
}

// victimSource makes a source for the permission matrix to read, change or delete.
func (e *matrixEnv) victimSource() string {
	return e.gh.Create(sourcesPath, e.adm, offlineSourceBody(e.unique("victim-source")))
}

// TestSourceStatusFields pins the read-only status fields the console's sources page shows: last_sync after a
// refresh and user_count from the users the source provides.
func TestSourceStatusFields(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	gh.Create("/local-user-store/api/v1/users", adm, map[string]any{"username": "ivy", "password": "Ivy-pass-12345"})
	gh.JSON("POST", sourcesPath+"/refresh", adm, []string{store.LocalSourceID}, http.StatusOK, nil)
	synced(gh)
	var v struct {
		LastSync  *string `json:"last_sync"`
		UserCount *int    `json:"user_count"`
	}
	gh.JSON("GET", sourcesPath+"/"+store.LocalSourceID, adm, nil, http.StatusOK, &v)
	if v.LastSync == nil || v.UserCount == nil || *v.UserCount != 2 {
		t.Errorf("local source: last_sync %v, user_count %v; want a time and 2 (admin, ivy)", v.LastSync, v.UserCount)
	}
	var l struct {
		Items []struct {
			ID        string `json:"id"`
			UserCount *int   `json:"user_count"`
		} `json:"items"`
	}
	gh.JSON("GET", sourcesPath, adm, nil, http.StatusOK, &l)
	for _, it := range l.Items {
		if it.ID == store.LocalSourceID && (it.UserCount == nil || *it.UserCount != 2) {
			t.Errorf("the list's local source has user_count %v", it.UserCount)
		}
	}
}
