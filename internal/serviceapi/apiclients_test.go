package serviceapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
	"github.com/google/go-cmp/cmp"
)

type ref struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type apiClientView struct {
	ID                string `json:"id"`
	Name              string `json:"name"`
	Roles             []ref  `json:"roles"`
	Secret            string `json:"secret"`
	OAuthClientID     string `json:"oauth_client_id"`
	OAuthClientSecret string `json:"oauth_client_secret"`
}

// clientGrant posts form to the token endpoint with the API client's OAuth client credentials (Basic
// oauth_client_id:oauth_client_secret) and returns the status and the tokens answered.
func clientGrant(t *testing.T, gh *testserver.Instance, c apiClientView, form url.Values) (status int, access, refresh string) {
	t.Helper()
	req, _ := http.NewRequest("POST", gh.URL+"/auth/api/v1/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.OAuthClientID, c.OAuthClientSecret)
	resp, err := gh.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out.AccessToken, out.RefreshToken
}

// clientToken runs the reference flow: username = API client id, password = API client secret. It returns the
// status and access token.
func clientToken(t *testing.T, gh *testserver.Instance, c apiClientView) (int, string) {
	t.Helper()
	status, access, _ := clientGrant(t, gh, c, url.Values{"grant_type": {"password"}, "username": {c.ID}, "password": {c.Secret}})
	return status, access
}

func TestAPIClientsCRUD(t *testing.T) {
	forEachDB(t, func(t *testing.T, gh *testserver.Instance) {
		adm := gh.AdminToken()
		role := gh.Create(rolesPath, adm, map[string]any{"name": "readers", "permissions": []string{auth.UsersView}})
		id := gh.Create(clientsPath, adm, map[string]any{"name": "ci-bot", "roles": []map[string]string{{"id": role}}})

		var c apiClientView
		gh.JSON("GET", clientsPath+"/"+id, adm, nil, http.StatusOK, &c)
		if c.ID != id || c.Name != "ci-bot" || !cmp.Equal(c.Roles, []ref{{role, "readers"}}) {
			t.Errorf("GET: %+v", c)
		}
		if len(c.Secret) < 20 || len(c.OAuthClientSecret) < 20 || c.OAuthClientID == "" || c.Secret == c.OAuthClientSecret {
			t.Errorf("credential values missing or weak: %+v", c)
		}

		// The list shows the client without its secrets.
		lb := mustGet(t, gh, clientsPath, adm)
		if strings.Contains(string(lb), c.Secret) || strings.Contains(string(lb), c.OAuthClientSecret) {
			t.Errorf("list leaks a secret: %s", lb)
		}
		var l struct {
			Count int             `json:"count"`
			Items []apiClientView `json:"items"`
		}
		json.Unmarshal(lb, &l)
		if l.Count != 1 || len(l.Items) != 1 || l.Items[0].ID != id || l.Items[0].OAuthClientID != c.OAuthClientID {
			t.Errorf("list: %s", lb)
		}

		status, tok := clientToken(t, gh, c)
		if status != http.StatusOK || tok == "" {
			t.Fatalf("reference token flow: %d", status)
		}
		gh.JSON("GET", usersPath, tok, nil, http.StatusOK, nil)
		gh.JSON("GET", rolesPath, tok, nil, http.StatusForbidden, nil)

		// An update renames and changes roles but never the credentials; sending them back is harmless.
		var upd apiClientView
		body := map[string]any{"id": id, "name": "ci-bot-2", "roles": []map[string]string{}, "secret": "ignored", "oauth_client_id": c.OAuthClientID}
		gh.JSON("PUT", clientsPath+"/"+id, adm, body, http.StatusOK, &upd)
		if upd.Name != "ci-bot-2" || len(upd.Roles) != 0 || upd.Secret != "" || upd.OAuthClientSecret != "" {
			t.Errorf("PUT answer: %+v", upd)
		}
		var again apiClientView
		gh.JSON("GET", clientsPath+"/"+id, adm, nil, http.StatusOK, &again)
		if again.Secret != c.Secret || again.OAuthClientSecret != c.OAuthClientSecret || again.OAuthClientID != c.OAuthClientID {
			t.Error("an update changed the client's credentials")
		}
		// Losing a role ends the tokens already issued, as it does a user's; a new token has the new roles.
		gh.JSON("GET", usersPath, tok, nil, http.StatusUnauthorized, nil)
		_, tok = clientToken(t, gh, c)
		gh.JSON("GET", usersPath, tok, nil, http.StatusForbidden, nil)

		gh.JSON("DELETE", clientsPath+"/"+id, adm, nil, http.StatusOK, nil)
		gh.JSON("GET", clientsPath+"/"+id, adm, nil, http.StatusNotFound, nil)
		gh.JSON("GET", "/auth/api/v1/users/current", tok, nil, http.StatusUnauthorized, nil)
		if status, _ := clientToken(t, gh, c); status == http.StatusOK {
			t.Error("a deleted API client still gets tokens")
		}
	})
}

func TestAPIClientsValidation(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	role := gh.Create(rolesPath, adm, map[string]any{"name": "r"})
	gh.Create(clientsPath, adm, map[string]any{"name": "taken"})
	checkBad(t, gh, "POST", clientsPath, adm, []badCase{
		{"missing name", map[string]any{}, 400, "name"},
		{"name too long", map[string]any{"name": strings.Repeat("n", 129)}, 400, "name"},
		{"unknown role", map[string]any{"name": "c", "roles": []map[string]string{{"id": role}, {"id": "nope"}}}, 400, "roles[1].id"},
		{"roles wrong type", map[string]any{"name": "c", "roles": "r"}, 400, "roles"},
		{"unknown field", map[string]any{"name": "c", "scope": "all"}, 400, "scope"},
		{"malformed JSON", `{`, 400, ""},
		{"duplicate name", map[string]any{"name": "taken"}, 409, "name"},
	})
	id := gh.Create(clientsPath, adm, map[string]any{"name": "keep", "roles": []map[string]string{{"id": role}}})
	before := mustGet(t, gh, clientsPath+"/"+id, adm)
	checkBad(t, gh, "PUT", clientsPath+"/"+id, adm, []badCase{
		{"unknown role", map[string]any{"name": "changed", "roles": []map[string]string{{"id": "nope"}}}, 400, "roles[0].id"},
		{"blank name", map[string]any{"name": " "}, 400, "name"},
		{"rename onto existing", map[string]any{"name": "taken"}, 409, "name"},
	})
	if after := mustGet(t, gh, clientsPath+"/"+id, adm); string(after) != string(before) {
		t.Errorf("a refused update changed the client:\nbefore %s\nafter  %s", before, after)
	}
	gh.JSON("GET", clientsPath+"/no-such-id", adm, nil, http.StatusNotFound, nil)
	gh.JSON("PUT", clientsPath+"/no-such-id", adm, map[string]any{"name": "x"}, http.StatusNotFound, nil)
	gh.JSON("DELETE", clientsPath+"/no-such-id", adm, nil, http.StatusNotFound, nil)
	checkListParams(t, gh, clientsPath, adm)
}
