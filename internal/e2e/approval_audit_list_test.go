package e2e_test

import (
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestAuditorListsAuditedConnections: a caller without connections-view who audits a connection policy lists and
// searches exactly the sessions they may audit (that policy's, of the rule's subjects), with the right count and
// paging, opens their trails and terminates nothing; a caller who audits nothing is refused as before.
func TestAuditorListsAuditedConnections(t *testing.T) {
	f := newFixture(t, testserver.Options{Configure: func(c *config.Config) { c.ApprovalWait = 2 * time.Second }})
	gh := f.gh
	perms := []string{"api-proxy-credentials-own"}
	contractors := gh.Create(rolesAPI+"/roles", f.adm, map[string]any{"name": "contractors", "permissions": perms})
	auditors := gh.Create(rolesAPI+"/roles", f.adm, map[string]any{"name": "auditors", "permissions": perms})
	daveAlpha := userWithRole(t, f, "dave", f.alpha, f.roleID, contractors)
	userWithRole(t, f, "erin", f.beta, auditors)
	userWithRole(t, f, "frank", f.beta, f.roleID)
	erin, frank := gh.Token("erin", userPassword), gh.Token("frank", userPassword)

	// A second credential of dave's, for beta, whose origin no audited policy covers.
	var users struct {
		Items []struct{ ID, Username string } `json:"items"`
	}
	gh.JSON("GET", usersAPI+"/users?limit=100", f.adm, nil, http.StatusOK, &users)
	var daveID string
	for _, u := range users.Items {
		if u.Username == "dave" {
			daveID = u.ID
		}
	}
	if daveID == "" {
		t.Fatal("dave not found")
	}
	daveCred := func(name, target string) cred {
		c := cred{ID: gh.Create(proxyAPI+"/users/"+daveID+"/client-credentials", f.adm, map[string]any{"name": name,
			"target": map[string]string{"id": target}})}
		st, secret := gh.Do("GET", c.path(daveID)+"/secret", gh.Token("dave", userPassword), nil)
		if st != http.StatusOK {
			t.Fatalf("dave's secret: %d %s", st, secret)
		}
		c.Secret = string(secret)
		return c
	}
	daveBeta, daveAlpha2 := daveCred("dave-beta", f.beta), daveCred("dave-alpha-2", f.alpha)

	// The audited policy covers alpha's https origin only and audits contractors; the built-in one has no
	// access_control and admits the rest.
	a := newCfgAdmin(t, gh)
	key := a.connectionPolicy("audited", []string{"0.0.0.0/0"}, []string{"127.0.0.0/8"}, []int{atoi(t, port(f.https.HostPort))}, nil)
	a.edit(cfgConnections+"/"+key, func(b map[string]any) {
		b["access_control"] = []map[string]any{{"authorizer": "auditors", "permission": "audit",
			"subject": map[string]any{"selection": "only", "group": "contractors"}}}
	})
	a.commit()

	aliceAlpha := f.credential(f.alpha, "alice-alpha", nil)
	aliceBeta := f.credential(f.beta, "alice-beta", nil)
	alpha, beta := "https://"+f.https.HostPort+"/api/items", "https://"+f.other.HostPort+"/items"
	for _, x := range []struct{ url, secret string }{
		{alpha, daveAlpha.Secret}, {beta, daveBeta.Secret}, {alpha, aliceAlpha.Secret}, {beta, aliceBeta.Secret},
	} {
		if st, body := f.do(f.client(false), "GET", x.url, x.secret, ""); st != http.StatusOK {
			t.Fatalf("GET %s: %d %s", x.url, st, body)
		}
	}
	var sessions = map[string]string{} // credential id → session id
	for _, c := range []cred{daveAlpha, daveBeta, aliceAlpha, aliceBeta} {
		sessions[c.ID] = f.session(c.ID)
	}
	// A second session of dave's under the audited policy, to page over.
	if st, body := f.do(f.client(false), "GET", alpha, daveAlpha2.Secret, ""); st != http.StatusOK {
		t.Fatalf("dave's second session: %d %s", st, body)
	}
	second := f.session(daveAlpha2.ID)
	audited := []string{sessions[daveAlpha.ID], second}
	slices.Sort(audited)

	type page struct {
		Count int          `json:"count"`
		Items []connection `json:"items"`
	}
	ids := func(p page) []string {
		var out []string
		for _, c := range p.Items {
			out = append(out, c.ID)
		}
		slices.Sort(out)
		return out
	}
	var all page
	gh.JSON("GET", connsAPI+"/connections", erin, nil, http.StatusOK, &all)
	if all.Count != 2 || !slices.Equal(ids(all), audited) {
		t.Fatalf("the auditor lists %d %v, want exactly dave's audited sessions %v", all.Count, ids(all), audited)
	}
	var search page
	gh.JSON("POST", connsAPI+"/connections/search", erin, map[string]any{"user_id": daveID}, http.StatusOK, &search)
	if search.Count != 2 || !slices.Equal(ids(search), audited) {
		t.Fatalf("the auditor's search for dave: %d %v, want %v", search.Count, ids(search), audited)
	}
	gh.JSON("POST", connsAPI+"/connections/search", erin, map[string]any{"user_id": f.userID}, http.StatusOK, &search)
	if search.Count != 0 || len(search.Items) != 0 {
		t.Fatalf("the auditor's search for alice, whom no rule of hers covers: %+v", search)
	}
	// Paging counts the audited sessions only, whatever else the store holds around them.
	var paged []string
	for off := 0; off < 3; off++ {
		var p page
		gh.JSON("GET", connsAPI+"/connections?limit=1&offset="+strconv.Itoa(off), erin, nil, http.StatusOK, &p)
		if p.Count != 2 {
			t.Fatalf("page %d counts %d, want 2", off, p.Count)
		}
		paged = append(paged, ids(p)...)
	}
	slices.Sort(paged)
	if !slices.Equal(paged, audited) {
		t.Fatalf("paging one at a time gives %v, want %v", paged, audited)
	}

	// She opens an audited trail, not another one, and terminates nothing.
	if st, body := gh.Do("GET", connsAPI+"/connections/"+second+"/trail", erin, nil); st != http.StatusOK {
		t.Fatalf("auditor trail: %d %s", st, body)
	}
	for _, x := range []struct{ method, path string }{
		{"GET", connsAPI + "/connections/" + sessions[aliceAlpha.ID] + "/trail"},
		{"GET", connsAPI + "/connections/" + sessions[daveBeta.ID]},
		{"POST", connsAPI + "/terminate/connection/" + second},
		{"POST", connsAPI + "/terminate/user/" + daveID},
	} {
		if st, body := gh.Do(x.method, x.path, erin, nil); st != http.StatusForbidden {
			t.Errorf("auditor %s %s: %d %s, want 403", x.method, x.path, st, body)
		}
	}
	if c := f.waitConnection(daveAlpha2.ID, func(c connection) bool { return c.ID == second }); c.Status != "CONNECTED" {
		t.Errorf("dave's session after the auditor's terminate: %s", c.Status)
	}

	// frank audits nothing: the list and the search stay closed to him.
	for _, x := range []struct {
		method, path string
		body         any
	}{{"GET", connsAPI + "/connections", nil}, {"POST", connsAPI + "/connections/search", map[string]any{}}} {
		if st, body := gh.Do(x.method, x.path, frank, x.body); st != http.StatusForbidden {
			t.Errorf("non-auditor %s %s: %d %s, want 403", x.method, x.path, st, body)
		}
	}
}
