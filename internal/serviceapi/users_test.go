package serviceapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// userView is a user as the API shows it.
type userView struct {
	ID        string `json:"id"`
	Username  string `json:"username"`
	Email     string `json:"email"`
	FullName  string `json:"full_name"`
	Enabled   bool   `json:"enabled"`
	Source    string `json:"source"`
	Created   string `json:"created"`
	Author    string `json:"author"`
	Updated   string `json:"updated"`
	UpdatedBy string `json:"updated_by"`
}

type userList struct {
	Count int        `json:"count"`
	Items []userView `json:"items"`
}

func TestUsersCRUD(t *testing.T) {
	forEachDB(t, func(t *testing.T, gh *testserver.Instance) {
		adm := gh.AdminToken()
		id := gh.Create(usersPath, adm, map[string]any{"username": "alice", "password": "Alice-pass-1", "email": "alice@example.com", "full_name": "Alice A"})

		var got userView
		gh.JSON("GET", usersPath+"/"+id, adm, nil, http.StatusOK, &got)
		want := userView{ID: id, Username: "alice", Email: "alice@example.com", FullName: "Alice A", Enabled: true, Source: "local", Author: "admin", UpdatedBy: "admin"}
		if d := cmp.Diff(want, got, cmpopts.IgnoreFields(userView{}, "Created", "Updated")); d != "" {
			t.Errorf("GET after create (-want +got):\n%s", d)
		}
		if got.Created == "" || got.Updated == "" {
			t.Errorf("created/updated missing: %+v", got)
		}
		if b := mustGet(t, gh, usersPath+"/"+id, adm); strings.Contains(strings.ToLower(string(b)), "password") || strings.Contains(string(b), "argon") {
			t.Errorf("user response mentions the password: %s", b)
		}

		// A PUT changes only the fields it names; a GET response can be sent back as is.
		gh.JSON("PUT", usersPath+"/"+id, adm, map[string]any{"full_name": "Alice B"}, http.StatusOK, &got)
		if got.FullName != "Alice B" || got.Email != "alice@example.com" || got.Username != "alice" {
			t.Errorf("after partial PUT: %+v", got)
		}
		gh.JSON("PUT", usersPath+"/"+id, adm, got, http.StatusOK, nil)

		var l userList
		gh.JSON("GET", usersPath, adm, nil, http.StatusOK, &l)
		if l.Count != 2 || len(l.Items) != 2 || l.Items[0].Username != "admin" || l.Items[1].Username != "alice" {
			t.Errorf("list: %+v", l)
		}

		// Password change: the new one works, the old one does not.
		gh.JSON("PUT", usersPath+"/"+id+"/password", adm, map[string]any{"password": "Alice-pass-2"}, http.StatusOK, nil)
		gh.Token("alice", "Alice-pass-2")
		if status := tokenStatus(t, gh, "alice", "Alice-pass-1"); status != http.StatusUnauthorized {
			t.Errorf("old password after change: %d", status)
		}

		// Disabling takes effect on the next request with an existing token.
		tok := gh.Token("alice", "Alice-pass-2")
		gh.JSON("GET", "/auth/api/v1/users/current", tok, nil, http.StatusOK, nil)
		gh.JSON("PUT", usersPath+"/"+id, adm, map[string]any{"enabled": false}, http.StatusOK, nil)
		gh.JSON("GET", "/auth/api/v1/users/current", tok, nil, http.StatusUnauthorized, nil)
		gh.JSON("PUT", usersPath+"/"+id, adm, map[string]any{"enabled": true}, http.StatusOK, nil)

		gh.JSON("DELETE", usersPath+"/"+id, adm, nil, http.StatusOK, nil)
		gh.JSON("GET", usersPath+"/"+id, adm, nil, http.StatusNotFound, nil)
		gh.JSON("GET", "/auth/api/v1/users/current", tok, nil, http.StatusUnauthorized, nil)
	})
}

func TestUsersNotFoundAndConflict(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	gh.Create(usersPath, adm, map[string]any{"username": "bob", "password": "Bob-pass-1"})
	other := gh.Create(usersPath, adm, map[string]any{"username": "carol", "password": "Carol-pass-1"})
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", usersPath + "/no-such-id", nil},
		{"PUT", usersPath + "/no-such-id", map[string]any{"full_name": "x"}},
		{"DELETE", usersPath + "/no-such-id", nil},
		{"PUT", usersPath + "/no-such-id/password", map[string]any{"password": "Long-enough-1"}},
		{"GET", "/role-store/api/v1/users/no-such-id/roles", nil},
		{"PUT", "/role-store/api/v1/users/no-such-id/roles", []any{}},
	} {
		status, b := gh.Do(c.method, c.path, adm, c.body)
		if status != http.StatusNotFound {
			t.Errorf("%s %s: %d %s, want 404", c.method, c.path, status, b)
			continue
		}
		wantErrorCode(t, b, "NOT_FOUND")
	}
	checkBad(t, gh, "POST", usersPath, adm, []badCase{
		{"duplicate username", map[string]any{"username": "bob", "password": "Bob-pass-2"}, http.StatusConflict, "username"},
	})
	checkBad(t, gh, "PUT", usersPath+"/"+other, adm, []badCase{
		{"rename onto an existing username", map[string]any{"username": "bob"}, http.StatusConflict, "username"},
	})
	var me struct {
		ID string `json:"id"`
	}
	gh.JSON("GET", "/auth/api/v1/users/current", adm, nil, http.StatusOK, &me)
	gh.JSON("DELETE", usersPath+"/"+me.ID, adm, nil, http.StatusConflict, nil)
}

func TestUsersValidation(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	ok := func(extra map[string]any) map[string]any {
		m := map[string]any{"username": "dave", "password": "Dave-pass-1"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	checkBad(t, gh, "POST", usersPath, adm, []badCase{
		{"missing username", map[string]any{"password": "Dave-pass-1"}, 400, "username"},
		{"blank username", ok(map[string]any{"username": "   "}), 400, "username"},
		{"username with space", ok(map[string]any{"username": "da ve"}), 400, "username"},
		{"username with control", ok(map[string]any{"username": "da\x01ve"}), 400, "username"},
		{"username too long", ok(map[string]any{"username": strings.Repeat("d", 129)}), 400, "username"},
		{"missing password", map[string]any{"username": "dave"}, 400, "password"},
		{"short password", ok(map[string]any{"password": "short"}), 400, "password"},
		{"huge password", ok(map[string]any{"password": strings.Repeat("p", 1025)}), 400, "password"},
		{"bad email", ok(map[string]any{"email": "not-an-address"}), 400, "email"},
		{"unknown field", ok(map[string]any{"nickname": "d"}), 400, "nickname"},
		{"username wrong type", ok(map[string]any{"username": 5}), 400, "username"},
		{"enabled wrong type", ok(map[string]any{"enabled": "yes"}), 400, "enabled"},
		{"malformed JSON", `{"username": "dave",`, 400, ""},
		{"not an object", `[1,2]`, 400, ""},
		{"trailing data", `{"username":"dave","password":"Dave-pass-1"} {}`, 400, ""},
		{"empty body", ``, 400, ""},
	})
	id := gh.Create(usersPath, adm, ok(map[string]any{"email": "dave@example.com", "full_name": "Dave"}))
	before := mustGet(t, gh, usersPath+"/"+id, adm)
	checkBad(t, gh, "PUT", usersPath+"/"+id, adm, []badCase{
		{"bad email", map[string]any{"email": "nope", "full_name": "Changed"}, 400, "email"},
		{"blank username", map[string]any{"username": "", "full_name": "Changed"}, 400, "username"},
		{"password through PUT", map[string]any{"password": "Another-pass-1"}, 400, "password"},
		{"unknown field", map[string]any{"full_name": "Changed", "shoe_size": 9}, 400, "shoe_size"},
		{"wrong type", map[string]any{"full_name": 7}, 400, "full_name"},
	})
	checkBad(t, gh, "PUT", usersPath+"/"+id+"/password", adm, []badCase{
		{"short", map[string]any{"password": "1234567"}, 400, "password"},
		{"missing", map[string]any{}, 400, "password"},
		{"unknown field", map[string]any{"password": "Long-enough-1", "old": "x"}, 400, "old"},
	})
	if after := mustGet(t, gh, usersPath+"/"+id, adm); string(after) != string(before) {
		t.Errorf("a refused update changed the user:\nbefore %s\nafter  %s", before, after)
	}
	gh.Token("dave", "Dave-pass-1") // the refused password changes left the password alone
}

func TestUsersList(t *testing.T) {
	forEachDB(t, func(t *testing.T, gh *testserver.Instance) {
		adm := gh.AdminToken()
		for _, u := range []struct{ name, email, full string }{
			{"erin", "erin@example.com", "Erin Percent%"},
			{"frank", "frank@corp.example", "Frank"},
			{"grace", "grace@example.com", "Grace_Underscore"},
			{"heidi", "heidi@corp.example", "Heidi"},
		} {
			gh.Create(usersPath, adm, map[string]any{"username": u.name, "password": "Pass-word-1", "email": u.email, "full_name": u.full})
		}
		names := func(query string) (int, []string) {
			var l userList
			gh.JSON("GET", usersPath+query, adm, nil, http.StatusOK, &l)
			out := []string{}
			for _, u := range l.Items {
				out = append(out, u.Username)
			}
			return l.Count, out
		}
		for _, c := range []struct {
			query string
			count int
			want  []string
		}{
			{"", 5, []string{"admin", "erin", "frank", "grace", "heidi"}},
			{"?limit=2", 5, []string{"admin", "erin"}},
			{"?offset=2&limit=2", 5, []string{"frank", "grace"}},
			{"?offset=10", 5, []string{}},
			{"?sortkey=username&sortdir=desc", 5, []string{"heidi", "grace", "frank", "erin", "admin"}},
			{"?sortkey=email&sortdir=asc&limit=1", 5, []string{"admin"}},
			{"?sortdir=DESC&limit=1", 5, []string{"heidi"}},
			{"?filter=corp", 2, []string{"frank", "heidi"}},
			{"?filter=GRACE", 1, []string{"grace"}},
			// LIKE wildcards in a filter are literal characters.
			{"?filter=%25", 1, []string{"erin"}},
			{"?filter=_", 1, []string{"grace"}},
			{"?filter=nobody", 0, []string{}},
		} {
			count, got := names(c.query)
			if count != c.count || !cmp.Equal(got, c.want) {
				t.Errorf("GET users%s: count %d items %v, want %d %v", c.query, count, got, c.count, c.want)
			}
		}
		var raw map[string]json.RawMessage
		gh.JSON("GET", usersPath+"?filter=nobody", adm, nil, http.StatusOK, &raw)
		if string(raw["items"]) != "[]" || string(raw["count"]) != "0" {
			t.Errorf("empty list shape: %s", mustGet(t, gh, usersPath+"?filter=nobody", adm))
		}
		checkListParams(t, gh, usersPath, adm)
	})
}

// checkListParams checks that bad list parameters are refused with the parameter named.
func checkListParams(t *testing.T, gh *testserver.Instance, path, token string) {
	t.Helper()
	for _, c := range []struct{ query, property string }{
		{"offset=-1", "offset"},
		{"offset=x", "offset"},
		{"limit=-5", "limit"},
		{"limit=1001", "limit"},
		{"limit=ten", "limit"},
		{"sortdir=sideways", "sortdir"},
		{"sortkey=password_hash", "sortkey"},
	} {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		status, b := gh.Do("GET", path+sep+c.query, token, nil)
		var e apiError
		json.Unmarshal(b, &e)
		if status != http.StatusBadRequest || e.Property != c.property {
			t.Errorf("GET %s?%s: %d %s, want 400 naming %s", path, c.query, status, b, c.property)
		}
	}
}

func mustGet(t *testing.T, gh *testserver.Instance, path, token string) []byte {
	t.Helper()
	status, b := gh.Do("GET", path, token, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, b)
	}
	return b
}

// tokenStatus tries a password login and returns the status, for logins expected to fail.
func tokenStatus(t *testing.T, gh *testserver.Instance, user, password string) int {
	t.Helper()
	resp, err := gh.Client.PostForm(gh.URL+"/auth/api/v1/oauth/token", map[string][]string{
		"grant_type": {"password"}, "client_id": {"gatehouse-cli"}, "username": {user}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
