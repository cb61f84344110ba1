package console_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// submit posts form with the page's token and checks the answer's status; it returns the body and Location.
func (w *web) submit(page, action string, form url.Values, want int) (string, string) {
	w.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", w.csrf(page))
	st, body, hdr := w.post(action, form, nil)
	if st != want {
		w.t.Fatalf("POST %s = %d (want %d) %s: %.600s", action, st, want, hdr.Get("Location"), body)
	}
	return body, hdr.Get("Location")
}

// fieldError returns the message shown next to the field with id err-<field>.
func fieldError(body, field string) string {
	m := regexp.MustCompile(`id="err-` + regexp.QuoteMeta(field) + `">([^<]*)<`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

type apiUser struct {
	Username string `json:"username"`
	FullName string `json:"full_name"`
	Email    string `json:"email"`
	Enabled  bool   `json:"enabled"`
}

// TestUserAdministration: create a user through the form, edit its details, disable it and grant roles, see the
// API's refusals next to their fields, page through a long filtered list, and delete with a confirmation.
func TestUserAdministration(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	ops := gh.Create("/role-store/api/v1/roles", adm, map[string]any{"name": "ops", "permissions": []string{auth.ConnectionsView}})
	w := newWeb(t, gh.URL, roots(gh))
	w.signIn("admin", testserver.AdminPassword)

	body, _ := w.submit("/admin/users", "/admin/users", url.Values{"username": {"has space"}, "password": {"Dora-pass-12345"}}, http.StatusBadRequest)
	if msg := fieldError(body, "username"); !strings.Contains(msg, "spaces") {
		t.Errorf("bad username: the message next to the field is %q", msg)
	}
	_, loc := w.submit("/admin/users", "/admin/users", url.Values{"username": {"dora"}, "password": {"Dora-pass-12345"}}, http.StatusSeeOther)
	id := strings.TrimPrefix(strings.TrimSuffix(loc, "?saved=created"), "/admin/users/")
	page := "/admin/users/" + id

	body, _ = w.submit(page, page, url.Values{"username": {"dora"}, "email": {"not-an-address"}, "enabled": {"on"}}, http.StatusBadRequest)
	if msg := fieldError(body, "email"); !strings.Contains(msg, "name@example.com") {
		t.Errorf("bad e-mail: the message next to the field is %q", msg)
	}
	w.submit(page, page, url.Values{"username": {"dora"}, "full_name": {"Dora Explorer"}, "email": {"dora@example.com"},
		"roles_listed": {"1"}, "roles": {ops}}, http.StatusSeeOther)
	var u apiUser
	gh.JSON("GET", "/local-user-store/api/v1/users/"+id, adm, nil, http.StatusOK, &u)
	if u.FullName != "Dora Explorer" || u.Email != "dora@example.com" || u.Enabled {
		t.Errorf("after the edit the user is %+v, want the new details and disabled", u)
	}
	var held struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	gh.JSON("GET", "/role-store/api/v1/users/"+id+"/roles", adm, nil, http.StatusOK, &held)
	if len(held.Items) != 1 || held.Items[0].ID != ops {
		t.Errorf("roles after the edit: %+v, want ops", held.Items)
	}
	if _, body, _ := w.get(page); !strings.Contains(body, `value="`+ops+`" id="role-`+ops+`" checked`) {
		t.Errorf("the edit page does not show ops as granted")
	}

	// Server-side pagination and filter.
	for i := range 55 {
		gh.Create("/local-user-store/api/v1/users", adm, map[string]any{"username": fmt.Sprintf("bulk-%02d", i), "password": "Bulk-pass-12345"})
	}
	_, body, _ = w.get("/admin/users?filter=bulk")
	if n := strings.Count(body, `class="user-name"`); n != 50 || !strings.Contains(body, `rel="next"`) || !strings.Contains(body, "55 users") {
		t.Errorf("first page of bulk users: %d rows, next link %v", n, strings.Contains(body, `rel="next"`))
	}
	_, body, _ = w.get("/admin/users?filter=bulk&offset=50")
	if n := strings.Count(body, `class="user-name"`); n != 5 || strings.Contains(body, `rel="next"`) || !strings.Contains(body, `rel="prev"`) {
		t.Errorf("second page of bulk users: %d rows", n)
	}

	// Delete, after a confirmation page.
	if st, body, _ := w.get(page + "/delete"); st != http.StatusOK || !strings.Contains(body, "Delete the user dora?") {
		t.Fatalf("confirmation page = %d", st)
	}
	w.submit(page+"/delete", page+"/delete", nil, http.StatusSeeOther)
	if st, _ := gh.Do("GET", "/local-user-store/api/v1/users/"+id, adm, nil); st != http.StatusNotFound {
		t.Errorf("the deleted user answers %d", st)
	}
}

// TestRoleAdministration: create a role, change its permissions, add and remove a member, see the delegation rule
// refuse a permission the signed-in user does not hold, and delete the role.
func TestRoleAdministration(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	erin := gh.Create("/local-user-store/api/v1/users", adm, map[string]any{"username": "erin", "password": "Erin-pass-12345"})
	w := newWeb(t, gh.URL, roots(gh))
	w.signIn("admin", testserver.AdminPassword)

	_, loc := w.submit("/admin/roles", "/admin/roles", url.Values{"name": {"auditors"}, "permissions": {auth.AuditView}}, http.StatusSeeOther)
	id := strings.TrimPrefix(strings.TrimSuffix(loc, "?saved=created"), "/admin/roles/")
	page := "/admin/roles/" + id
	w.submit(page, page, url.Values{"name": {"auditors"}, "comment": {"read the trail"}, "permissions": {auth.AuditView, auth.ConnectionsView}}, http.StatusSeeOther)
	var r struct {
		Comment     string   `json:"comment"`
		Permissions []string `json:"permissions"`
	}
	gh.JSON("GET", "/role-store/api/v1/roles/"+id, adm, nil, http.StatusOK, &r)
	if r.Comment != "read the trail" || len(r.Permissions) != 2 {
		t.Errorf("role after the edit: %+v", r)
	}
	body, _ := w.submit(page, page, url.Values{"name": {"auditors"}, "permissions": {"no-such-permission"}}, http.StatusBadRequest)
	if msg := fieldError(body, "permissions"); !strings.Contains(msg, "unknown permission") {
		t.Errorf("unknown permission: the message next to the field is %q", msg)
	}

	body, _ = w.submit(page, page+"/members", url.Values{"username": {"nobody"}}, http.StatusBadRequest)
	if msg := fieldError(body, "username"); !strings.Contains(msg, "no user is named nobody") {
		t.Errorf("unknown member: %q", msg)
	}
	w.submit(page, page+"/members", url.Values{"username": {"erin"}}, http.StatusSeeOther)
	if _, body, _ := w.get(page); !strings.Contains(body, `href="/admin/users/`+erin+`">erin</a>`) {
		t.Error("erin is not listed as a member")
	}
	w.submit(page, page+"/members", url.Values{"remove": {erin}}, http.StatusSeeOther)
	var members struct {
		Count int `json:"count"`
	}
	gh.JSON("GET", "/role-store/api/v1/roles/"+id+"/members", adm, nil, http.StatusOK, &members)
	if members.Count != 0 {
		t.Errorf("members after the removal: %d", members.Count)
	}

	// A role manager cannot grant what they do not hold: the API's check, shown on the field.
	newUser(t, gh, adm, "frank", "Frank-pass-12345", auth.RolesManage)
	f := newWeb(t, gh.URL, roots(gh))
	f.signIn("frank", "Frank-pass-12345")
	body, _ = f.submit("/admin/roles", "/admin/roles", url.Values{"name": {"power"}, "permissions": {auth.UsersManage}}, http.StatusForbidden)
	if msg := fieldError(body, "permissions"); msg == "" {
		t.Errorf("the delegation refusal is not next to the permissions: %.400s", body)
	}

	w.submit(page+"/delete", page+"/delete", nil, http.StatusSeeOther)
	if st, _ := gh.Do("GET", "/role-store/api/v1/roles/"+id, adm, nil); st != http.StatusNotFound {
		t.Errorf("the deleted role answers %d", st)
	}
}

// TestSourcesHostsAndSettings: the sources list shows status, last sync and user count from the API, a refresh
// goes through, a bad definition is refused with the API's message; a host is created through the form; the
// proxy settings are saved and a bad address is shown next to its field.
func TestSourcesHostsAndSettings(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	gh.Create("/local-user-store/api/v1/users", adm, map[string]any{"username": "gina", "password": "Gina-pass-12345"})
	w := newWeb(t, gh.URL, roots(gh))
	w.signIn("admin", testserver.AdminPassword)

	st, body, _ := w.get("/admin/sources")
	if st != http.StatusOK || !strings.Contains(body, `<td class="num">2</td>`) || !strings.Contains(body, "LOCAL") {
		t.Fatalf("sources page = %d, want LOCAL with 2 users: %.1500s", st, body)
	}
	w.submit("/admin/sources", "/admin/sources/all/refresh", nil, http.StatusSeeOther)
	body, _ = w.submit("/admin/sources/local", "/admin/sources/local", url.Values{"definition": {"{not json"}}, http.StatusBadRequest)
	if msg := fieldError(body, "definition"); !strings.Contains(msg, "one JSON object") {
		t.Errorf("bad JSON: %q", msg)
	}
	body, _ = w.submit("/admin/sources/local", "/admin/sources/local", url.Values{"definition": {`{"name":"local","connection":{"type":"LDAP"}}`}}, http.StatusBadRequest)
	if msg := fieldError(body, "definition"); !strings.Contains(msg, "connection.type") {
		t.Errorf("changing the LOCAL source's type: %q", msg)
	}

	body, _ = w.submit("/admin/hosts/new", "/admin/hosts", url.Values{"common_name": {"db1"}, "addresses": {"10.0.0.5"}, "services": {"HTTPS 10.0.0.5 99999"}}, http.StatusBadRequest)
	if msg := fieldError(body, "services"); !strings.Contains(msg, "out of range") {
		t.Errorf("bad port: %q", msg)
	}
	_, loc := w.submit("/admin/hosts/new", "/admin/hosts", url.Values{"common_name": {"db1"}, "addresses": {"10.0.0.5"}, "services": {"HTTPS 8443"}, "tags": {"prod, db"}}, http.StatusSeeOther)
	var h struct {
		CommonName string `json:"common_name"`
		Services   []struct {
			Service string `json:"service"`
			Port    int    `json:"port"`
		} `json:"services"`
		Tags []string `json:"tags"`
	}
	gh.JSON("GET", "/host-store/api/v1/hosts/"+strings.TrimSuffix(strings.TrimPrefix(loc, "/admin/hosts/"), "?saved=1"), adm, nil, http.StatusOK, &h)
	if h.CommonName != "db1" || len(h.Services) != 1 || h.Services[0].Port != 8443 || len(h.Tags) != 2 {
		t.Errorf("host made in the form: %+v", h)
	}

	form := url.Values{"public_addresses": {"not an address"}, "idle_session_timeout": {"600"}, "max_session_lifetime": {"3600"},
		"session_cooldown": {"60"}, "reauthorization_interval": {"30"}, "max_credential_validity": {"86400"}, "recording_body_limit": {"1024"}}
	body, _ = w.submit("/settings/api-proxy", "/settings/api-proxy", form, http.StatusBadRequest)
	if msg := fieldError(body, "public_addresses"); !strings.Contains(msg, "host:port") {
		t.Errorf("bad proxy address: %q", msg)
	}
	form.Set("public_addresses", "gw.example.com:20080")
	w.submit("/settings/api-proxy", "/settings/api-proxy", form, http.StatusSeeOther)
	var set struct {
		PublicAddresses []string `json:"public_addresses"`
		Idle            int      `json:"idle_session_timeout"`
	}
	gh.JSON("GET", "/api-proxy/api/v1/settings", adm, nil, http.StatusOK, &set)
	if len(set.PublicAddresses) != 1 || set.PublicAddresses[0] != "gw.example.com:20080" || set.Idle != 600 {
		t.Errorf("settings after the save: %+v", set)
	}
}

// TestPolicyTransaction: an admin stages a new user list in a transaction that spans requests (the console mints
// a token per request), sees it pending, and commits it; a second change is rolled back and leaves nothing. While
// the transaction is open another session is locked out.
func TestPolicyTransaction(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	w := newWeb(t, gh.URL, roots(gh))
	w.signIn("admin", testserver.AdminPassword)
	const lists = "/api/configuration/policies/userlists"
	editor := "/admin/policies/edit?path=" + lists

	w.submit("/admin/policies", "/admin/policies/transaction", url.Values{"action": {"start"}}, http.StatusSeeOther)
	body, _ := w.submit(editor, "/admin/policies/edit", url.Values{"path": {lists}, "body": {`{"name":"ops","allow":"some"}`}}, http.StatusBadRequest)
	if msg := fieldError(body, "body"); !strings.Contains(msg, "allow") {
		t.Errorf("bad body: the message next to it is %q", msg)
	}
	w.submit(editor, "/admin/policies/edit", url.Values{"path": {lists}, "body": {`{"name":"console-list","allow":"no_user","except":["erin"]}`}}, http.StatusSeeOther)
	if _, body, _ := w.get("/admin/policies/changes"); !strings.Contains(body, "console-list") || !strings.Contains(body, `<span class="badge">create</span>`) {
		t.Errorf("the pending changes do not show the new list: %.800s", body)
	}
	// Another client is locked out while the console's transaction is open.
	if st, b := gh.Do("POST", "/api/transaction", adm, nil); st != http.StatusConflict {
		t.Errorf("a second transaction = %d %s, want 409", st, b)
	}
	committedNames := func() string {
		t.Helper()
		var l struct {
			Items []struct {
				Key string `json:"key"`
			} `json:"items"`
		}
		gh.JSON("GET", lists, adm, nil, http.StatusOK, &l)
		var names []string
		for _, it := range l.Items {
			var o struct {
				Body struct {
					Name string `json:"name"`
				} `json:"body"`
			}
			gh.JSON("GET", lists+"/"+it.Key, adm, nil, http.StatusOK, &o)
			names = append(names, o.Body.Name)
		}
		return strings.Join(names, ",")
	}
	if strings.Contains(committedNames(), "console-list") {
		t.Fatal("the staged list is visible to others before the commit")
	}
	w.submit("/admin/policies", "/admin/policies/transaction", url.Values{"action": {"commit"}}, http.StatusSeeOther)
	if !strings.Contains(committedNames(), "console-list") {
		t.Fatal("the committed list is not in the configuration")
	}

	w.submit(editor, "/admin/policies/edit", url.Values{"path": {lists}, "body": {`{"name":"rolled-back","allow":"all_users"}`}}, http.StatusSeeOther)
	w.submit("/admin/policies", "/admin/policies/transaction", url.Values{"action": {"rollback"}}, http.StatusSeeOther)
	if strings.Contains(committedNames(), "rolled-back") {
		t.Error("the rolled-back list is in the configuration")
	}
	if st, _ := gh.Do("POST", "/api/transaction", adm, nil); st != http.StatusOK {
		t.Errorf("after the rollback a transaction = %d, want 200", st)
	}

	// The editor only edits the policy lists: another API path in its form is refused.
	w.submit(editor, "/admin/policies/edit", url.Values{"path": {"/local-user-store/api/v1/users"}, "body": {`{}`}}, http.StatusBadRequest)
}

// TestAdminMenus pins that each new page is in the menu exactly when the user's permissions allow it.
func TestAdminMenus(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	newUser(t, gh, adm, "hank", "Hank-pass-12345", auth.SourcesView, auth.SettingsView)
	w := newWeb(t, gh.URL, roots(gh))
	w.signIn("hank", "Hank-pass-12345")
	_, body, _ := w.get("/access")
	for _, want := range []string{`href="/admin/sources"`, `href="/settings/api-proxy"`} {
		if !strings.Contains(body, want) {
			t.Errorf("hank's menu lacks %s", want)
		}
	}
	for _, hidden := range []string{`href="/admin/hosts"`, `href="/admin/users"`, `href="/admin/roles"`, `href="/admin/policies"`} {
		if strings.Contains(body, hidden) {
			t.Errorf("hank's menu shows %s", hidden)
		}
	}
	// Read-only: the settings show no save button, the sources no refresh, and a save is refused by the API.
	if _, body, _ := w.get("/settings/api-proxy"); strings.Contains(body, `id="save-settings"`) {
		t.Error("a settings viewer gets a save button")
	}
	if _, body, _ := w.get("/admin/sources"); strings.Contains(body, `id="refresh-all"`) {
		t.Error("a sources viewer gets a refresh button")
	}
	w.submit("/admin/sources", "/admin/sources/all/refresh", nil, http.StatusForbidden)
	if st, _, _ := w.get("/admin/hosts"); st != http.StatusForbidden {
		t.Errorf("hank GET /admin/hosts = %d", st)
	}
}

// TestPoliciesReadOnly: with config-view alone the policies show without transaction buttons or editors, and a
// forged stage is refused by the configuration API.
func TestPoliciesReadOnly(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	newUser(t, gh, gh.AdminToken(), "ivan", "Ivan-pass-12345", auth.ConfigView)
	w := newWeb(t, gh.URL, roots(gh))
	w.signIn("ivan", "Ivan-pass-12345")
	st, body, _ := w.get("/admin/policies")
	if st != http.StatusOK || !strings.Contains(body, "Connection policies") {
		t.Fatalf("policies for a viewer = %d", st)
	}
	for _, hidden := range []string{`id="tx-start"`, `id="tx-commit"`, `class="policy-edit"`, `>New</a>`} {
		if strings.Contains(body, hidden) {
			t.Errorf("a viewer's policies page has %s", hidden)
		}
	}
	const lists = "/api/configuration/policies/userlists"
	if _, body, _ := w.get("/admin/policies/edit?path=" + lists + "/-4"); strings.Contains(body, `id="save-policy"`) || !strings.Contains(body, "readonly") {
		t.Error("a viewer's policy page offers to stage changes")
	}
	body, _ = w.submit("/admin/policies", "/admin/policies/edit", url.Values{"path": {lists}, "body": {`{"name":"x","allow":"all_users"}`}}, http.StatusForbidden)
	if !strings.Contains(body, "Not staged") {
		t.Errorf("the refused stage is not explained: %.400s", body)
	}
	w.submit("/admin/policies", "/admin/policies/transaction", url.Values{"action": {"start"}}, http.StatusForbidden)
}
