package serviceapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

type roleView struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Comment     string   `json:"comment"`
	Permissions []string `json:"permissions"`
	Created     string   `json:"created"`
	Author      string   `json:"author"`
	Updated     string   `json:"updated"`
	UpdatedBy   string   `json:"updated_by"`
}

type member struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Type     string `json:"type"`
	Explicit bool   `json:"explicit"`
}

func TestRolesCRUD(t *testing.T) {
	forEachDB(t, func(t *testing.T, gh *testserver.Instance) {
		adm := gh.AdminToken()
		id := gh.Create(rolesPath, adm, map[string]any{"name": "ops", "comment": "operators",
			"permissions": []string{auth.UsersView, auth.APITargetsView, auth.UsersView}})
		var got roleView
		gh.JSON("GET", rolesPath+"/"+id, adm, nil, http.StatusOK, &got)
		want := roleView{ID: id, Name: "ops", Comment: "operators", Permissions: []string{auth.UsersView, auth.APITargetsView}, Author: "admin", UpdatedBy: "admin"}
		if d := cmp.Diff(want, got, cmpopts.IgnoreFields(roleView{}, "Created", "Updated")); d != "" {
			t.Errorf("GET after create (-want +got):\n%s", d)
		}

		gh.JSON("PUT", rolesPath+"/"+id, adm, map[string]any{"permissions": []string{auth.AuditView}}, http.StatusOK, &got)
		if got.Name != "ops" || got.Comment != "operators" || !cmp.Equal(got.Permissions, []string{auth.AuditView}) {
			t.Errorf("after PUT: %+v", got)
		}
		gh.JSON("PUT", rolesPath+"/"+id, adm, got, http.StatusOK, nil) // a GET response round-trips

		// Members: a user and an API client holding the role.
		uid := gh.Create(usersPath, adm, map[string]any{"username": "mallory", "password": "Mallory-pass-1"})
		gh.JSON("PUT", "/role-store/api/v1/users/"+uid+"/roles", adm, []map[string]string{{"id": id}}, http.StatusOK, nil)
		cid := gh.Create(clientsPath, adm, map[string]any{"name": "bot", "roles": []map[string]string{{"id": id}}})
		var members struct {
			Count int      `json:"count"`
			Items []member `json:"items"`
		}
		gh.JSON("GET", rolesPath+"/"+id+"/members", adm, nil, http.StatusOK, &members)
		wantMembers := []member{{ID: cid, Name: "bot", Type: "api-client", Explicit: true}, {ID: uid, Name: "mallory", Type: "user", Explicit: true}}
		if members.Count != 2 || !cmp.Equal(members.Items, wantMembers) {
			t.Errorf("members: %+v, want %+v", members, wantMembers)
		}
		var ur struct {
			Count int `json:"count"`
			Items []struct {
				ID, Name string
				Explicit bool
			} `json:"items"`
		}
		gh.JSON("GET", "/role-store/api/v1/users/"+uid+"/roles", adm, nil, http.StatusOK, &ur)
		if ur.Count != 1 || ur.Items[0].ID != id || ur.Items[0].Name != "ops" || !ur.Items[0].Explicit {
			t.Errorf("user roles: %+v", ur)
		}

		// Losing a permission or a role ends the holder's sessions at once; a new login has what is left.
		tok := gh.Token("mallory", "Mallory-pass-1")
		gh.JSON("GET", auditPath, tok, nil, http.StatusOK, nil)
		gh.JSON("PUT", rolesPath+"/"+id, adm, map[string]any{"permissions": []string{}}, http.StatusOK, nil)
		gh.JSON("GET", auditPath, tok, nil, http.StatusUnauthorized, nil)
		gh.JSON("GET", auditPath, gh.Token("mallory", "Mallory-pass-1"), nil, http.StatusForbidden, nil)
		gh.JSON("PUT", rolesPath+"/"+id, adm, map[string]any{"permissions": []string{auth.AuditView}}, http.StatusOK, nil)
		tok = gh.Token("mallory", "Mallory-pass-1")
		gh.JSON("PUT", "/role-store/api/v1/users/"+uid+"/roles", adm, []any{}, http.StatusOK, nil)
		gh.JSON("GET", auditPath, tok, nil, http.StatusUnauthorized, nil)
		gh.JSON("GET", auditPath, gh.Token("mallory", "Mallory-pass-1"), nil, http.StatusForbidden, nil)

		gh.JSON("DELETE", rolesPath+"/"+id, adm, nil, http.StatusOK, nil)
		gh.JSON("GET", rolesPath+"/"+id, adm, nil, http.StatusNotFound, nil)
		var client struct {
			Roles []any `json:"roles"`
		}
		gh.JSON("GET", clientsPath+"/"+cid, adm, nil, http.StatusOK, &client)
		if len(client.Roles) != 0 {
			t.Errorf("deleted role still held by the API client: %+v", client.Roles)
		}
	})
}

func TestRolesValidation(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	gh.Create(rolesPath, adm, map[string]any{"name": "taken"})
	checkBad(t, gh, "POST", rolesPath, adm, []badCase{
		{"missing name", map[string]any{"permissions": []string{}}, 400, "name"},
		{"blank name", map[string]any{"name": "  "}, 400, "name"},
		{"name too long", map[string]any{"name": strings.Repeat("r", 129)}, 400, "name"},
		{"unknown permission", map[string]any{"name": "r", "permissions": []string{auth.UsersView, "launch-missiles"}}, 400, "permissions[1]"},
		{"permissions wrong type", map[string]any{"name": "r", "permissions": "users-view"}, 400, "permissions"},
		{"unknown field", map[string]any{"name": "r", "colour": "red"}, 400, "colour"},
		{"malformed JSON", `{"name":`, 400, ""},
		{"duplicate name", map[string]any{"name": "taken"}, 409, "name"},
	})
	id := gh.Create(rolesPath, adm, map[string]any{"name": "keep", "comment": "c", "permissions": []string{auth.RolesView}})
	before := mustGet(t, gh, rolesPath+"/"+id, adm)
	checkBad(t, gh, "PUT", rolesPath+"/"+id, adm, []badCase{
		{"unknown permission", map[string]any{"comment": "changed", "permissions": []string{"nope"}}, 400, "permissions[0]"},
		{"blank name", map[string]any{"name": "", "comment": "changed"}, 400, "name"},
		{"rename onto existing", map[string]any{"name": "taken"}, 409, "name"},
	})
	if after := mustGet(t, gh, rolesPath+"/"+id, adm); string(after) != string(before) {
		t.Errorf("a refused update changed the role:\nbefore %s\nafter  %s", before, after)
	}
	uid := gh.Create(usersPath, adm, map[string]any{"username": "u1", "password": "U1-pass-word"})
	checkBad(t, gh, "PUT", "/role-store/api/v1/users/"+uid+"/roles", adm, []badCase{
		{"unknown role", []map[string]string{{"id": id}, {"id": "no-such-role"}}, 400, "[1].id"},
		{"not a list", map[string]string{"id": id}, 400, ""},
	})
	for _, p := range []string{rolesPath + "/no-such-id", rolesPath + "/no-such-id/members"} {
		gh.JSON("GET", p, adm, nil, http.StatusNotFound, nil)
	}
	gh.JSON("PUT", rolesPath+"/no-such-id", adm, map[string]any{"comment": "x"}, http.StatusNotFound, nil)
	gh.JSON("DELETE", rolesPath+"/no-such-id", adm, nil, http.StatusNotFound, nil)
}

func TestRolesList(t *testing.T) {
	forEachDB(t, func(t *testing.T, gh *testserver.Instance) {
		adm := gh.AdminToken()
		for _, n := range []string{"beta", "alpha", "gamma"} {
			gh.Create(rolesPath, adm, map[string]any{"name": n, "comment": "greek " + n})
		}
		for _, c := range []struct {
			query string
			count int
			want  []string
		}{
			{"?filter=greek", 3, []string{"alpha", "beta", "gamma"}},
			{"?filter=greek&sortdir=desc&limit=2", 3, []string{"gamma", "beta"}},
			{"?filter=greek&offset=1&limit=1", 3, []string{"beta"}},
			{"?filter=ALPHA", 1, []string{"alpha"}},
			{"?sortkey=created&filter=greek", 3, []string{"beta", "alpha", "gamma"}},
		} {
			var l struct {
				Count int        `json:"count"`
				Items []roleView `json:"items"`
			}
			gh.JSON("GET", rolesPath+c.query, adm, nil, http.StatusOK, &l)
			got := []string{}
			for _, r := range l.Items {
				got = append(got, r.Name)
			}
			if l.Count != c.count || !cmp.Equal(got, c.want) {
				t.Errorf("GET roles%s: %d %v, want %d %v", c.query, l.Count, got, c.count, c.want)
			}
		}
		checkListParams(t, gh, rolesPath, adm)
	})
}
