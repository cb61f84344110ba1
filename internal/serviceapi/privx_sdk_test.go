package serviceapi_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// The PrivX Go SDK (github.com/SSHcom/privx-sdk-go/v2, v2.44.0) must work unchanged against Gatehouse. The suite
// does not depend on it: testdata/privx/requests holds the bodies its clients send (marshalled from its models,
// placeholders in {{...}}), testdata/privx/responses the shapes its models decode (see the README there).
// exercisePrivX runs as part of TestOpenAPIMatchesHandlers, so every exchange is also checked against the
// document, on both stores.

// privxBody reads a golden request body and fills its placeholders.
func privxBody(t *testing.T, name string, vars map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "privx", "requests", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for k, v := range vars {
		s = strings.ReplaceAll(s, "{{"+k+"}}", v)
	}
	if i := strings.Index(s, "{{"); i >= 0 {
		t.Fatalf("%s: placeholder left unfilled at %q", name, s[i:min(len(s), i+20)])
	}
	return s
}

// privxShape checks an answer against a golden shape: every listed member present with the JSON type the SDK's
// field needs.
func privxShape(t *testing.T, name string, answer []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "privx", "responses", name))
	if err != nil {
		t.Fatal(err)
	}
	var want, got any
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := json.Unmarshal(answer, &got); err != nil {
		t.Fatalf("%s: answer is not JSON: %v: %s", name, err, answer)
	}
	for _, problem := range shapeProblems("", want, got) {
		t.Errorf("%s: %s in %s", name, problem, answer)
	}
}

// shapeProblems lists where got does not have the shape want describes.
func shapeProblems(at string, want, got any) []string {
	switch w := want.(type) {
	case string:
		typ, required := strings.CutSuffix(w, "!")
		ok := false
		switch typ {
		case "string":
			s, is := got.(string)
			ok = is && (!required || s != "")
		case "number":
			_, ok = got.(float64)
		case "boolean":
			_, ok = got.(bool)
		case "array":
			a, is := got.([]any)
			ok = is && (!required || len(a) > 0)
		case "object":
			_, ok = got.(map[string]any)
		default:
			return []string{at + ": bad shape " + w}
		}
		if !ok {
			return []string{fmt.Sprintf("%s: want %s, got %#v", at, w, got)}
		}
		return nil
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want an object, got %#v", at, got)}
		}
		var out []string
		for k, sub := range w {
			v, present := g[k]
			if !present {
				out = append(out, at+"."+k+": missing")
				continue
			}
			out = append(out, shapeProblems(at+"."+k, sub, v)...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) == 0 {
			return []string{fmt.Sprintf("%s: want a non-empty array, got %#v", at, got)}
		}
		var out []string
		for i, item := range g {
			out = append(out, shapeProblems(fmt.Sprintf("%s[%d]", at, i), w[0], item)...)
		}
		return out
	}
	return []string{at + ": bad shape"}
}

func TestShapeProblemsCanFail(t *testing.T) {
	for _, c := range []struct {
		want, got string
		bad       bool
	}{
		{`{"id":"string!"}`, `{"id":"x"}`, false},
		{`{"id":"string!"}`, `{"id":""}`, true},
		{`{"id":"string"}`, `{}`, true},
		{`{"disabled":"string!"}`, `{"disabled":false}`, true},
		{`{"source_rules":{"rules":"array"}}`, `{"source_rules":[]}`, true},
		{`{"items":[{"id":"string!"}]}`, `{"items":[]}`, true},
		{`{"items":[{"id":"string!"}]}`, `{"items":[{"id":"a"},{"id":7}]}`, true},
		{`{"n":"number","b":"boolean","o":"object"}`, `{"n":1,"b":true,"o":{}}`, false},
	} {
		var w, g any
		json.Unmarshal([]byte(c.want), &w)
		json.Unmarshal([]byte(c.got), &g)
		if got := len(shapeProblems("", w, g)) > 0; got != c.bad {
			t.Errorf("shape %s of %s: problems = %v, want %v", c.want, c.got, got, c.bad)
		}
	}
}

// privxRefused checks a NOT_SUPPORTED answer naming the property.
func privxRefused(t *testing.T, answer []byte, property string) {
	t.Helper()
	var e struct {
		Code     string `json:"error_code"`
		Message  string `json:"error_message"`
		Property string `json:"property"`
	}
	if err := json.Unmarshal(answer, &e); err != nil || e.Code != "NOT_SUPPORTED" || e.Property != property || e.Message == "" {
		t.Errorf("want NOT_SUPPORTED naming %s, got %s", property, answer)
	}
}

func exercisePrivX(t *testing.T, cl *client, adm string) {
	const (
		U = "/local-user-store/api/v1"
		R = "/role-store/api/v1"
		P = "/api-proxy/api/v1"
		C = "/connection-manager/api/v1"
		H = "/host-store/api/v1"
		M = "/monitor-service/api/v1"
	)
	v := map[string]string{}
	id := func(b []byte) string {
		t.Helper()
		var c struct{ ID string }
		if err := json.Unmarshal(b, &c); err != nil || c.ID == "" {
			t.Fatalf("no id in %s", b)
		}
		return c.ID
	}
	// Every service's status, as each SDK client's Status() reads it.
	for _, svc := range []string{"/auth", U, R, H, C, M, "/settings"} {
		path := svc + "/status"
		if !strings.HasPrefix(svc, "/") || strings.Count(svc, "/") == 1 {
			path = svc + "/api/v1/status"
		}
		privxShape(t, "status.json", cl.do(exchange{method: "GET", path: path, token: adm, want: 200}))
	}

	// rolestore: create, get, update, resolve and search by name.
	v["name"] = "sdk-role-x"
	created := cl.do(exchange{method: "POST", path: R + "/roles", token: adm, json: privxBody(t, "role_create.json", v), want: 201})
	privxShape(t, "created.json", created)
	v["role"], v["role_name"] = id(created), v["name"]
	privxShape(t, "role.json", cl.do(exchange{method: "GET", path: R + "/roles/" + v["role"], token: adm, want: 200}))
	cl.do(exchange{method: "PUT", path: R + "/roles/" + v["role"], token: adm, json: privxBody(t, "role_update.json", v), want: 200})
	for _, x := range []struct{ path, body string }{{"/roles/resolve", "roles_resolve.json"}, {"/roles/search", "roles_search.json"}} {
		b := cl.do(exchange{method: "POST", path: R + x.path, token: adm, json: privxBody(t, x.body, v), want: 200})
		privxShape(t, "role_list.json", b)
		if !strings.Contains(string(b), `"count":1,`) {
			t.Errorf("POST %s: want the one role named %s, got %s", x.path, v["name"], b)
		}
	}
	// A PrivX feature Gatehouse lacks is refused naming the field, and nothing is stored.
	refused := strings.Replace(privxBody(t, "role_update.json", v), `"access_group_id": ""`, `"access_group_id": "8a6a4d4e-0000-4000-8000-000000000001"`, 1)
	privxRefused(t, cl.do(exchange{method: "PUT", path: R + "/roles/" + v["role"], token: adm, json: refused, want: 400}), "access_group_id")

	// userstore: create with the password object, find by username, update, set the password.
	v["name"] = "sdk-user-x"
	v["user"] = id(cl.do(exchange{method: "POST", path: U + "/users", token: adm, json: privxBody(t, "user_create.json", v), want: 201}))
	byName := cl.do(exchange{method: "GET", path: U + "/users?username=" + v["name"], token: adm, want: 200})
	privxShape(t, "local_user_list.json", byName)
	if !strings.Contains(string(byName), `"count":1,`) {
		t.Errorf("username filter: want one user, got %s", byName)
	}
	if b := cl.do(exchange{method: "GET", path: U + "/users?username=no-such-user", token: adm, want: 200}); !strings.Contains(string(b), `"count":0`) {
		t.Errorf("username filter for nobody: got %s", b)
	}
	cl.do(exchange{method: "PUT", path: U + "/users/" + v["user"], token: adm, json: privxBody(t, "user_update.json", v), want: 200})
	privxShape(t, "local_user.json", cl.do(exchange{method: "GET", path: U + "/users/" + v["user"], token: adm, want: 200}))
	cl.do(exchange{method: "PUT", path: U + "/users/" + v["user"] + "/password", token: adm, json: privxBody(t, "user_password.json", v), want: 200})
	cl.gh.Token(v["name"], "Sdk-user-pass-2") // the new password works

	// rolestore's view of users: grant with whole role objects, read roles, user, members.
	v["name"] = v["role_name"]
	cl.do(exchange{method: "PUT", path: R + "/users/" + v["user"] + "/roles", token: adm, json: privxBody(t, "user_roles_update.json", v), want: 200})
	privxShape(t, "user_roles.json", cl.do(exchange{method: "GET", path: R + "/users/" + v["user"] + "/roles", token: adm, want: 200}))
	privxShape(t, "rolestore_user.json", cl.do(exchange{method: "GET", path: R + "/users/" + v["user"], token: adm, want: 200}))
	privxShape(t, "members.json", cl.do(exchange{method: "GET", path: R + "/roles/" + v["role"] + "/members", token: adm, want: 200}))
	// Paging of the members and of roles found by name: count stays, the page is cut.
	for _, p := range []string{R + "/roles/" + v["role"] + "/members?offset=1&limit=1", R + "/roles/resolve?offset=1&sortkey=name&sortdir=desc"} {
		method, body := "GET", any(nil)
		if strings.Contains(p, "resolve") {
			method, body = "POST", privxBody(t, "roles_resolve.json", v)
		}
		if b := cl.do(exchange{method: method, path: p, token: adm, json: body, want: 200}); string(b) != "{\"count\":1,\"items\":[]}\n" {
			t.Errorf("%s %s: want the one match counted and the page empty, got %s", method, p, b)
		}
	}
	cl.do(exchange{method: "GET", path: R + "/users/current", token: adm, want: 200})

	// Sources: the SDK's whole connection object is accepted; ldap_base_dn is ldap_base; what Gatehouse lacks is
	// refused naming the field, and nothing is stored.
	v["name"], v["bind_password"] = "sdk-source-x", "Sdk-bind-pass-1"
	src := id(cl.do(exchange{method: "POST", path: R + "/sources", token: adm, json: privxBody(t, "source_create.json", v), want: 201}))
	srcBody := cl.do(exchange{method: "GET", path: R + "/sources/" + src, token: adm, want: 200})
	privxShape(t, "source.json", srcBody)
	if !strings.Contains(string(srcBody), `"ldap_base":"dc=example,dc=org"`) || strings.Contains(string(srcBody), v["bind_password"]) {
		t.Errorf("source from the SDK: ldap_base_dn did not take effect, or the bind password is shown: %s", srcBody)
	}
	privxShape(t, "source_list.json", cl.do(exchange{method: "GET", path: R + "/sources", token: adm, want: 200}))
	rebased := strings.Replace(privxBody(t, "source_create.json", v), `"dc=example,dc=org"`, `"dc=example,dc=com"`, 1)
	cl.do(exchange{method: "PUT", path: R + "/sources/" + src, token: adm, json: rebased, want: 200})
	if b := cl.do(exchange{method: "GET", path: R + "/sources/" + src, token: adm, want: 200}); !strings.Contains(string(b), `"ldap_base_dn":"dc=example,dc=com"`) {
		t.Errorf("update through ldap_base_dn did not take effect: %s", b)
	}
	for field, swap := range map[string][2]string{
		"connection.skip_strict_cert_check": {`"skip_strict_cert_check": false`, `"skip_strict_cert_check": true`},
		"connection.msgraph_batch_size":     {`"msgraph_batch_size": 0`, `"msgraph_batch_size": 50`},
		"connection.scim_username":          {`"scim_username": ""`, `"scim_username": "scim"`},
		"connection.ukm_token":              {`"ukm_token": ""`, `"ukm_token": "t"`},
	} {
		body := strings.Replace(privxBody(t, "source_create.json", v), swap[0], swap[1], 1)
		privxRefused(t, cl.do(exchange{method: "PUT", path: R + "/sources/" + src, token: adm, json: body, want: 400}), field)
	}
	both := strings.Replace(privxBody(t, "source_create.json", v), `"ldap_base_dn": "dc=example,dc=org"`, `"ldap_base_dn": "dc=example,dc=org", "ldap_base": "dc=other,dc=org"`, 1)
	cl.do(exchange{method: "PUT", path: R + "/sources/" + src, token: adm, json: both, want: 400})
	if b := cl.do(exchange{method: "GET", path: R + "/sources/" + src, token: adm, want: 200}); !strings.Contains(string(b), `"ldap_base":"dc=example,dc=com"`) {
		t.Errorf("a refused update changed the source: %s", b)
	}
	cl.do(exchange{method: "DELETE", path: R + "/sources/" + src, token: adm, want: 200})

	// API clients, then the SDK's authorization code login (oauth.WithCredential) with one.
	v["name"] = "sdk-client-x"
	ac := id(cl.do(exchange{method: "POST", path: U + "/api-clients", token: adm, json: privxBody(t, "api_client_create.json", v), want: 201}))
	acBody := cl.do(exchange{method: "GET", path: U + "/api-clients/" + ac, token: adm, want: 200})
	privxShape(t, "api_client.json", acBody)
	var client struct{ ID, Secret string }
	json.Unmarshal(acBody, &client)
	privxLogin(t, cl, client.ID, client.Secret)
	privxLogin(t, cl, "admin", testserver.AdminPassword)

	// apiproxy: targets (disabled reasons, search by name), credentials (type, raw secret).
	v["name"] = "sdk-target-x"
	v["target"], v["target_name"] = id(cl.do(exchange{method: "POST", path: P + "/api-targets", token: adm, json: privxBody(t, "target_create.json", v), want: 201})), v["name"]
	privxShape(t, "target.json", cl.do(exchange{method: "GET", path: P + "/api-targets/" + v["target"], token: adm, want: 200}))
	privxShape(t, "target_list.json", cl.do(exchange{method: "GET", path: P + "/api-targets?offset=0&limit=5&sortkey=name&sortdir=ASC", token: adm, want: 200}))
	found := cl.do(exchange{method: "POST", path: P + "/api-targets/search", token: adm, json: privxBody(t, "target_search.json", v), want: 200})
	privxShape(t, "target_list.json", found)
	if !strings.Contains(string(found), `"count":1,`) {
		t.Errorf("target search by name: got %s", found)
	}
	for q, count := range map[string]string{"?filter=sdk-target": `"count":1,`, "?filter=zz-no-such-target": `"count":0,`} {
		if b := cl.do(exchange{method: "POST", path: P + "/api-targets/search" + q, token: adm, json: privxBody(t, "target_search.json", v), want: 200}); !strings.Contains(string(b), count) {
			t.Errorf("target search%s: want %s, got %s", q, count, b)
		}
	}
	v["name"] = "sdk-cred-x"
	cred := cl.do(exchange{method: "POST", path: P + "/users/" + v["user"] + "/client-credentials", token: adm, json: privxBody(t, "credential_create.json", v), want: 201})
	v["cred"] = id(cred)
	credPath := P + "/users/" + v["user"] + "/client-credentials/" + v["cred"]
	if secret := cl.do(exchange{method: "GET", path: credPath + "/secret?format=raw", token: adm, want: 200}); !strings.HasPrefix(string(secret), "ghp_") {
		t.Errorf("format=raw: got %q", secret)
	}
	privxShape(t, "credential.json", cl.do(exchange{method: "GET", path: credPath, token: adm, want: 200}))
	cl.do(exchange{method: "PUT", path: credPath, token: adm, json: privxBody(t, "credential_update.json", v), want: 200})
	basic := strings.Replace(privxBody(t, "credential_update.json", v), `"type": "token"`, `"type": "basicauth"`, 1)
	privxRefused(t, cl.do(exchange{method: "PUT", path: credPath, token: adm, json: basic, want: 400}), "type")
	v["name"] = v["target_name"]
	cl.do(exchange{method: "PUT", path: P + "/api-targets/" + v["target"], token: adm, json: privxBody(t, "target_update.json", v), want: 200})
	if b := cl.do(exchange{method: "GET", path: P + "/api-targets/" + v["target"], token: adm, want: 200}); !strings.Contains(string(b), `"disabled":"BY_ADMIN"`) {
		t.Errorf("disabled BY_ADMIN did not take effect: %s", b)
	}
	license := strings.Replace(privxBody(t, "target_update.json", v), `"BY_ADMIN"`, `"BY_LICENSE"`, 1)
	privxRefused(t, cl.do(exchange{method: "PUT", path: P + "/api-targets/" + v["target"], token: adm, json: license, want: 400}), "disabled")
	privxShape(t, "conf.json", cl.do(exchange{method: "GET", path: P + "/conf", token: adm, want: 200}))

	// hoststore: the whole PrivX host is accepted; a PrivX-only feature is refused naming the field.
	v["name"] = "sdk-host-x"
	host := id(cl.do(exchange{method: "POST", path: H + "/hosts", token: adm, json: privxBody(t, "host_create.json", v), want: 201}))
	hostBody := cl.do(exchange{method: "GET", path: H + "/hosts/" + host, token: adm, want: 200})
	privxShape(t, "host.json", hostBody)
	cl.do(exchange{method: "PUT", path: H + "/hosts/" + host, token: adm, json: privxBody(t, "host_create.json", v), want: 200})
	tofu := strings.Replace(privxBody(t, "host_create.json", v), `"stand_alone_host": false`, `"stand_alone_host": true`, 1)
	privxRefused(t, cl.do(exchange{method: "PUT", path: H + "/hosts/" + host, token: adm, json: tofu, want: 400}), "stand_alone_host")
	cl.do(exchange{method: "POST", path: H + "/hosts/search", token: adm, json: privxBody(t, "host_search.json", v), want: 200})
	if b := cl.do(exchange{method: "GET", path: H + "/hosts/tags", token: adm, want: 200}); !strings.Contains(string(b), `"sdk"`) {
		t.Errorf("host tags: got %s", b)
	} else {
		privxShape(t, "tag_list.json", b)
	}
	cl.do(exchange{method: "DELETE", path: H + "/hosts/" + host, token: adm, want: 200})

	// connectionmanager and monitor.
	privxShape(t, "connection_list.json", cl.do(exchange{method: "POST", path: C + "/connections/search?fuzzycount=true&limit=25&offset=0&sortdir=DESC&sortkey=connected",
		token: adm, json: privxBody(t, "connection_search.json", v), want: 200}))
	privxShape(t, "audit_list.json", cl.do(exchange{method: "GET", path: M + "/auditevents?offset=0&limit=10&sortkey=created&sortdir=DESC", token: adm, want: 200}))
	privxShape(t, "audit_list.json", cl.do(exchange{method: "POST", path: M + "/auditevents/search", token: adm, json: privxBody(t, "audit_search.json", v), want: 200}))

	// Tag lists of objects without tags are empty, not a "not found" of an object named tags.
	for _, p := range []string{U + "/users/tags", C + "/connections/tags?offset=0&limit=10"} {
		if b := cl.do(exchange{method: "GET", path: p, token: adm, want: 200}); string(b) != "{\"count\":0,\"items\":[]}\n" {
			t.Errorf("GET %s: got %s", p, b)
		}
	}

	// settings: the api-proxy scope reads and writes Gatehouse's proxy settings.
	scope := cl.do(exchange{method: "GET", path: "/settings/api/v1/settings/api-proxy", token: adm, want: 200})
	cl.do(exchange{method: "PUT", path: "/settings/api/v1/settings/api-proxy", token: adm, json: string(scope), want: 200})

	cl.do(exchange{method: "DELETE", path: credPath, token: adm, want: 200})
	cl.do(exchange{method: "DELETE", path: P + "/api-targets/" + v["target"], token: adm, want: 200})
	cl.do(exchange{method: "DELETE", path: U + "/api-clients/" + ac, token: adm, want: 200})
	cl.do(exchange{method: "DELETE", path: U + "/users/" + v["user"], token: adm, want: 200})
	cl.do(exchange{method: "DELETE", path: R + "/roles/" + v["role"], token: adm, want: 200})
}

// privxLogin runs oauth.WithCredential's three steps as the SDK sends them: authorize (not following the 307),
// login with the token from Location, and the code grant of client privx-ui; then a refresh.
func privxLogin(t *testing.T, cl *client, name, secret string) {
	t.Helper()
	verifier := "sdk-verifier-0123456789-0123456789-0123456789"
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {"privx-ui"}, "redirect_uri": {"/privx/oauth-callback"}, "response_type": {"code"},
		"state": {"sdk-state"}, "user_agent": {"privx-sdk-go"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"}}
	follow := cl.gh.Client
	noFollow := *follow
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cl.gh.Client = &noFollow
	resp, err := cl.gh.Client.Get(cl.gh.URL + "/auth/api/v1/oauth/authorize?" + q.Encode())
	cl.do(exchange{method: "GET", path: "/auth/api/v1/oauth/authorize?" + q.Encode(), want: 307})
	cl.gh.Client = follow
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("token") == "" {
		t.Fatalf("authorize: Location %q has no token", resp.Header.Get("Location"))
	}
	body := map[string]string{"username": name, "password": secret, "token": loc.Query().Get("token")}
	answer := cl.do(exchange{method: "POST", path: "/auth/api/v1/login", json: body, want: 200})
	privxShape(t, "login.json", answer)
	var code struct{ Code, State string }
	json.Unmarshal(answer, &code)
	if code.State != "sdk-state" {
		t.Errorf("login: state %q, want the one sent to authorize", code.State)
	}
	grant := url.Values{"client_id": {"privx-ui"}, "redirect_uri": {"/privx/oauth-callback"}, "grant_type": {"authorization_code"},
		"code": {code.Code}, "code_verifier": {verifier}}
	tok := cl.do(exchange{method: "POST", path: "/auth/api/v1/oauth/token", form: grant, want: 200})
	privxShape(t, "token.json", tok)
	// The code is single-use, and the wrong password gets no code.
	cl.do(exchange{method: "POST", path: "/auth/api/v1/oauth/token", form: grant, want: 400})
	body["password"] = "wrong-" + secret
	cl.do(exchange{method: "POST", path: "/auth/api/v1/login", json: body, want: 401})
	var tr struct {
		Refresh string `json:"refresh_token"`
	}
	json.Unmarshal(tok, &tr)
	cl.do(exchange{method: "POST", path: "/auth/api/v1/oauth/token", want: 200,
		form: url.Values{"client_id": {"privx-ui"}, "redirect_uri": {"/privx/oauth-callback"}, "grant_type": {"refresh_token"}, "refresh_token": {tr.Refresh}}})
}

// exercisePrivXTrailLog downloads one channel's trail log of a recorded, closed session as the SDK's
// connectionmanager does: a download handle, then the file, in both formats; and the refusals around it.
func exercisePrivXTrailLog(t *testing.T, cl *client, adm, alice, session string) {
	const C = "/connection-manager/api/v1/connections/"
	var trail struct {
		Count int `json:"count"`
	}
	if err := json.Unmarshal(cl.do(exchange{method: "GET", path: C + session + "/trail?limit=1", token: adm, want: 200}), &trail); err != nil || trail.Count == 0 {
		t.Fatalf("the session has no recorded exchange: %v", err)
	}
	last := fmt.Sprint(trail.Count)
	handle := func(channel string) string {
		t.Helper()
		b := cl.do(exchange{method: "POST", path: C + session + "/channel/" + channel + "/log", token: adm, want: 200})
		privxShape(t, "download_session.json", b)
		var d struct {
			SessionID string `json:"session_id"`
		}
		json.Unmarshal(b, &d)
		return d.SessionID
	}
	h := handle(last)
	var ex struct {
		Seq    int    `json:"seq"`
		Method string `json:"method"`
		URL    string `json:"url"`
	}
	if err := json.Unmarshal(cl.do(exchange{method: "GET", path: C + session + "/channel/" + last + "/log/" + h, token: adm, want: 200}), &ex); err != nil ||
		fmt.Sprint(ex.Seq) != last || ex.Method != "GET" || !strings.HasSuffix(ex.URL, "/api/hello") {
		t.Errorf("trail log of channel %s: got %+v (%v)", last, ex, err)
	}
	// The handle may be used again by its holder until it expires (the SDK retries nothing, but a user may).
	har := cl.do(exchange{method: "GET", path: C + session + "/channel/" + last + "/log/" + h + "?format=har", token: adm, want: 200})
	var doc struct {
		Log struct {
			Entries []struct {
				Request struct {
					URL string `json:"url"`
				} `json:"request"`
			} `json:"entries"`
		} `json:"log"`
	}
	if err := json.Unmarshal(har, &doc); err != nil || len(doc.Log.Entries) != 1 || !strings.HasSuffix(doc.Log.Entries[0].Request.URL, "/api/hello") {
		t.Errorf("trail log as HAR: want the one exchange, got %s", har)
	}
	cl.do(exchange{method: "GET", path: C + session + "/channel/" + last + "/log/" + h + "?format=pdf", token: adm, want: 400, invalid: true})
	// A handle is for its own channel and connection; a forged one opens nothing.
	if trail.Count > 1 {
		cl.do(exchange{method: "GET", path: C + session + "/channel/1/log/" + h, token: adm, want: 404})
	}
	cl.do(exchange{method: "GET", path: C + session + "/channel/" + last + "/log/" + h[:len(h)-2] + "AA", token: adm, want: 404})
	cl.do(exchange{method: "GET", path: C + session + "/channel/" + last + "/log/" + h, want: 401, invalid: true})
	cl.do(exchange{method: "GET", path: C + session + "/channel/" + last + "/log/" + h, token: alice, want: 403})
	// Channels are exchanges 1..count.
	cl.do(exchange{method: "POST", path: C + session + "/channel/" + fmt.Sprint(trail.Count+1) + "/log", token: adm, want: 404})
	cl.do(exchange{method: "POST", path: C + session + "/channel/0/log", token: adm, want: 400})
	cl.do(exchange{method: "POST", path: C + session + "/channel/x/log", token: adm, want: 400, invalid: true})
	cl.do(exchange{method: "POST", path: C + "no-such-session/channel/1/log", token: adm, want: 404})
	cl.do(exchange{method: "POST", path: C + session + "/channel/1/log", token: alice, want: 403})
	// Every download is audited; the monitor service's filter finds them.
	events := cl.do(exchange{method: "GET", path: "/audit/api/v1/events?action=download-trail-log", token: adm, want: 200})
	if !strings.Contains(string(events), `"count":2,`) {
		t.Errorf("want the two downloads audited, got %s", events)
	}
	const M = "/monitor-service/api/v1/auditevents"
	for q, count := range map[string]string{"?filter=download-trail-log&sortkey=created": `"count":2,`, "?filter=zz-no-such-event": `"count":0,`} {
		if b := cl.do(exchange{method: "GET", path: M + q, token: adm, want: 200}); !strings.Contains(string(b), count) {
			t.Errorf("GET %s%s: want %s, got %s", M, q, count, b)
		}
	}
	cl.do(exchange{method: "POST", path: M + "/search?filter=download", token: adm, json: map[string]any{"keywords": "login"}, want: 400})
	// The connections' filter narrows like keywords (it was once ignored).
	var c struct {
		User struct {
			Name string `json:"name"`
		} `json:"user"`
	}
	json.Unmarshal(cl.do(exchange{method: "GET", path: C + session, token: adm, want: 200}), &c)
	for q, none := range map[string]bool{"?filter=" + url.QueryEscape(c.User.Name): false, "?filter=zz-no-such-user": true} {
		b := cl.do(exchange{method: "GET", path: strings.TrimSuffix(C, "/") + q, token: adm, want: 200})
		if strings.Contains(string(b), `"count":0,`) != none {
			t.Errorf("GET connections%s: got %s", q, b)
		}
	}
}
