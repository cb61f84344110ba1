package serviceapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/serviceapi"
	"github.com/gatehouse-dev/gatehouse/internal/testca"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// loadDoc loads and validates the embedded document; every other test builds on it.
func loadDoc(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(serviceapi.OpenAPIDocument())
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc := loadDoc(t)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", doc.OpenAPI)
	}
	// The permission enum is what roles accept; it must follow auth.AllPermissions.
	got := doc.Components.Schemas["Permission"].Value.Enum
	var want []any
	for _, p := range auth.AllPermissions {
		want = append(want, p)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Permission enum differs from auth.AllPermissions (-want +got):\n%s", d)
	}
	// Every operation but the public ones (the token endpoint, this document and the OIDC login, which is how a
	// user without a token gets one) needs a bearer token; those need none.
	public := map[string]bool{"token": true, "openapi": true, "oidcSources": true, "oidcLogin": true, "oidcCallback": true,
		"enrolOwnTOTP": true, "authorize": true, "login": true}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			sec := doc.Security
			if op.Security != nil {
				sec = *op.Security
			}
			hasBearer := slices.ContainsFunc(sec, func(r openapi3.SecurityRequirement) bool { _, ok := r["bearerAuth"]; return ok })
			if hasBearer == public[op.OperationID] {
				t.Errorf("%s %s (%s): bearer required = %v, want %v", method, path, op.OperationID, hasBearer, !public[op.OperationID])
			}
		}
	}
}

// routePatterns reads the patterns registered in Routes from api.go's source. http.ServeMux cannot list its
// patterns, so the test type-checks the file and takes the constant first argument of every call in Routes.
func routePatterns(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "api.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}}
	// Imports are not loaded: only the constant pattern strings matter, and those are built from local constants.
	conf := types.Config{Importer: noImports{}, Error: func(error) {}}
	conf.Check("serviceapi", fset, []*ast.File{f}, info)
	var out []string
	pattern := regexp.MustCompile(`^[A-Z]+ /`)
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "Routes" {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			tv := info.Types[call.Args[0]]
			if tv.Value != nil && tv.Value.Kind() == constant.String && pattern.MatchString(constant.StringVal(tv.Value)) {
				out = append(out, constant.StringVal(tv.Value))
			}
			return true
		})
	}
	if len(out) < 40 {
		t.Fatalf("found only %d route patterns in Routes; has api.go changed shape?", len(out))
	}
	return out
}

type noImports struct{}

func (noImports) Import(path string) (*types.Package, error) { return nil, errors.New("not loaded") }

var wildcard = regexp.MustCompile(`\{[^}]*\}`)

// normal writes "GET /a/{id}" with wildcard names dropped, so the document may name parameters better.
func normal(method, path string) string { return method + " " + wildcard.ReplaceAllString(path, "{}") }

// TestOpenAPICoversRoutes fails when a route is added to Routes without an operation in the document, or the
// document describes an operation that Routes does not serve.
func TestOpenAPICoversRoutes(t *testing.T) {
	doc := loadDoc(t)
	var routes, documented []string
	for _, p := range routePatterns(t) {
		method, path, _ := strings.Cut(p, " ")
		routes = append(routes, normal(method, path))
	}
	mux := http.NewServeMux()
	(&serviceapi.API{}).Routes(mux)
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, normal(method, path))
			// The mux must send the document's path to the route of the same shape (a literal segment such as
			// /api-targets/search must not be taken by /api-targets/{id}).
			concrete := wildcard.ReplaceAllString(path, "x1")
			_, pat := mux.Handler(httptest.NewRequest(method, concrete, nil))
			m, p, _ := strings.Cut(pat, " ")
			if got := normal(m, p); got != normal(method, path) {
				t.Errorf("%s %s is served by %q", method, path, pat)
			}
		}
	}
	sort.Strings(routes)
	sort.Strings(documented)
	if d := cmp.Diff(routes, documented); d != "" {
		t.Errorf("routes in Routes (-) and operations in openapi.json (+) differ:\n%s", d)
	}
}

// checker validates each exchange against the document and remembers which operations and statuses it saw.
type checker struct {
	doc    *openapi3.T
	router routers.Router
	seen   map[string]map[int]bool // operationId -> statuses
}

func newChecker(t *testing.T, doc *openapi3.T) *checker {
	t.Helper()
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	return &checker{doc: doc, router: router, seen: map[string]map[int]bool{}}
}

// authenticate accepts a request that carries the scheme's credentials; the server decides if they are good.
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	switch in.SecuritySchemeName {
	case "bearerAuth":
		if strings.HasPrefix(h, "Bearer ") {
			return nil
		}
	case "clientBasic":
		if _, _, ok := in.RequestValidationInput.Request.BasicAuth(); ok {
			return nil
		}
	}
	return fmt.Errorf("no %s credentials", in.SecuritySchemeName)
}

// check validates one exchange: the request against its operation, and the response against the documented
// response for its status. It returns the request's and the response's violations separately.
func (c *checker) check(req *http.Request, reqBody []byte, status int, header http.Header, body []byte) (reqErr, respErr error) {
	ctx := context.Background()
	vreq := req.Clone(ctx)
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	vreq.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(reqBody)), nil }
	route, params, err := c.router.FindRoute(vreq)
	if err != nil {
		return fmt.Errorf("no operation for %s %s: %w", req.Method, req.URL.Path, err), nil
	}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: authenticate, MultiError: true, SchemaValidationOptions: brief}}
	reqErr = openapi3filter.ValidateRequest(ctx, in)
	if c.seen[route.Operation.OperationID] == nil {
		c.seen[route.Operation.OperationID] = map[int]bool{}
	}
	c.seen[route.Operation.OperationID][status] = true
	respErr = openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: status, Header: header, Body: io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, SchemaValidationOptions: brief},
	})
	// kin-openapi skips the body of a response documented without content; such a response must have none.
	if resp := route.Operation.Responses.Status(status); respErr == nil && resp != nil && len(resp.Value.Content) == 0 && len(body) > 0 {
		respErr = fmt.Errorf("status %d is documented without a body, got %q", status, body)
	}
	return reqErr, respErr
}

// brief leaves the schema and value dumps out of kin-openapi's errors, which otherwise run to pages.
var brief = []openapi3.SchemaValidationOption{openapi3.DisableSchemaErrorDetails()}

// exchange is one request of the end-to-end test.
type exchange struct {
	method, path, token string
	json                any        // JSON body (marshalled unless string)
	form                url.Values // form body instead
	contentType         string     // overrides the body's content type
	basic               [2]string  // HTTP Basic user and password
	want                int
	// invalid marks a request that breaks the document on purpose (a negative test): request validation must
	// reject it, which shows that the document constrains what the handler rejects.
	invalid bool
}

// client runs exchanges against a real server and checks every one against the document.
type client struct {
	t  *testing.T
	gh *testserver.Instance
	c  *checker
}

func (cl *client) do(x exchange) []byte {
	cl.t.Helper()
	var body []byte
	ct := ""
	switch {
	case x.form != nil:
		body, ct = []byte(x.form.Encode()), "application/x-www-form-urlencoded"
	case x.json != nil:
		if s, ok := x.json.(string); ok {
			body = []byte(s)
		} else {
			var err error
			if body, err = json.Marshal(x.json); err != nil {
				cl.t.Fatal(err)
			}
		}
		ct = "application/json"
	}
	if x.contentType != "" {
		ct = x.contentType
	}
	req, err := http.NewRequest(x.method, cl.gh.URL+x.path, bytes.NewReader(body))
	if err != nil {
		cl.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if x.token != "" {
		req.Header.Set("Authorization", "Bearer "+x.token)
	}
	if x.basic[0] != "" {
		req.SetBasicAuth(x.basic[0], x.basic[1])
	}
	resp, err := cl.gh.Client.Do(req)
	if err != nil {
		cl.t.Fatalf("%s %s: %v", x.method, x.path, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		cl.t.Fatalf("%s %s: read: %v", x.method, x.path, err)
	}
	reqErr, respErr := cl.c.check(req, body, resp.StatusCode, resp.Header, b)
	switch {
	case x.invalid && reqErr == nil:
		cl.t.Errorf("%s %s: request breaks the document on purpose, but validation accepted it", x.method, x.path)
	case !x.invalid && reqErr != nil:
		cl.t.Errorf("%s %s: request does not match the document: %v", x.method, x.path, reqErr)
	}
	if respErr != nil {
		cl.t.Errorf("%s %s -> %d: response does not match the document: %v\nbody: %s", x.method, x.path, resp.StatusCode, respErr, b)
	}
	if resp.StatusCode != x.want {
		cl.t.Fatalf("%s %s: status %d, want %d: %s", x.method, x.path, resp.StatusCode, x.want, b)
	}
	return b
}

// id runs x and returns the "id" of its JSON answer.
func (cl *client) id(x exchange) string {
	cl.t.Helper()
	return cl.field(x, "id")
}

// field runs x and returns a string field of its JSON answer.
func (cl *client) field(x exchange, name string) string {
	cl.t.Helper()
	var m map[string]any
	if err := json.Unmarshal(cl.do(x), &m); err != nil {
		cl.t.Fatalf("%s %s: %v", x.method, x.path, err)
	}
	s, _ := m[name].(string)
	if s == "" {
		cl.t.Fatalf("%s %s: no %q in answer %v", x.method, x.path, name, m)
	}
	return s
}

// TestOpenAPIValidatorCatchesDrift shows the checker is not vacuous: answers that differ from the document in the
// ways drift would look (a leaked field, a missing one, a wrong type, an undocumented status) are all rejected,
// and so is a real answer checked against a tampered schema.
func TestOpenAPIValidatorCatchesDrift(t *testing.T) {
	const user = `{"id":"u1","username":"alice","enabled":true,"source":"local","created":"2024-01-01T00:00:00Z","updated":"2024-01-01T00:00:00Z"}`
	get := func() *http.Request {
		r := httptest.NewRequest("GET", "https://gatehouse.test/local-user-store/api/v1/users/u1", nil)
		r.Header.Set("Authorization", "Bearer x")
		return r
	}
	json200 := http.Header{"Content-Type": {"application/json"}}
	tests := []struct {
		name    string
		tamper  func(doc *openapi3.T)
		req     *http.Request
		status  int
		body    string
		wantErr bool
	}{
		{name: "good user", req: get(), status: 200, body: user},
		{name: "leaked password hash", req: get(), status: 200, body: strings.Replace(user, `"id"`, `"password_hash":"$argon2id$","id"`, 1), wantErr: true},
		{name: "missing required field", req: get(), status: 200, body: strings.Replace(user, `"source":"local",`, "", 1), wantErr: true},
		{name: "wrong type", req: get(), status: 200, body: strings.Replace(user, `"enabled":true`, `"enabled":"yes"`, 1), wantErr: true},
		{name: "undocumented status", req: get(), status: http.StatusTeapot, body: `{"error_code":"NOT_FOUND","error_message":"x"}`, wantErr: true},
		{name: "error without code", req: get(), status: 404, body: `{"error_message":"x"}`, wantErr: true},
		{name: "write-only target secret in answer", status: 200, wantErr: true,
			req:  httptest.NewRequest("GET", "https://gatehouse.test/api-proxy/api/v1/api-targets/t1", nil),
			body: `{"id":"t1","name":"t","tags":[],"roles":[],"authorized_endpoints":[{"host":"a","protocols":["https"],"methods":["GET"],"paths":["/"],"allow_unauthenticated":false}],"unauthorized_endpoints":[],"tls_insecure_skip_verify":false,"target_credential":{"type":"token","bearer_token":"s3cret"},"disabled":false,"audit_enabled":false,"created":"2024-01-01T00:00:00Z","updated":"2024-01-01T00:00:00Z"}`},
		{name: "tampered schema rejects a real-shaped answer", req: get(), status: 200, body: user, wantErr: true,
			tamper: func(doc *openapi3.T) {
				doc.Components.Schemas["User"].Value.Properties["username"].Value.Type = &openapi3.Types{openapi3.TypeInteger}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := loadDoc(t)
			if tt.tamper != nil {
				tt.tamper(doc)
			}
			tt.req.Header.Set("Authorization", "Bearer x")
			_, err := newChecker(t, doc).check(tt.req, nil, tt.status, json200, []byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Errorf("response error = %v, want error: %v", err, tt.wantErr)
			}
		})
	}
	t.Run("request breaking the document", func(t *testing.T) {
		r := httptest.NewRequest("POST", "https://gatehouse.test/role-store/api/v1/roles", nil)
		r.Header.Set("Authorization", "Bearer x")
		r.Header.Set("Content-Type", "application/json")
		reqErr, _ := newChecker(t, loadDoc(t)).check(r, []byte(`{"name":"r","permissions":["fly"]}`), 201, json200, []byte(`{"id":"r1"}`))
		if reqErr == nil {
			t.Error("a role with an unknown permission passed request validation")
		}
		var re *openapi3filter.RequestError
		if !errors.As(reqErr, &re) && !errors.As(reqErr, new(openapi3.MultiError)) {
			t.Errorf("unexpected error type %T: %v", reqErr, reqErr)
		}
	})
}

// TestOpenAPIMatchesHandlers drives every operation of a real server, with success and the main failures, and
// checks each request and answer against the document. It runs on both stores, since an empty list that one store
// returns as null would be drift too.
func TestOpenAPIMatchesHandlers(t *testing.T) {
	for _, pg := range []bool{false, true} {
		t.Run(map[bool]string{false: "sqlite", true: "postgres"}[pg], func(t *testing.T) {
			gh := testserver.Start(t, testserver.Options{Postgres: pg})
			doc := loadDoc(t)
			c := newChecker(t, doc)
			exercise(t, &client{t: t, gh: gh, c: c})
			// Every operation must have been seen succeeding (or redirecting, for the OIDC login), so a new
			// operation cannot hide from this test.
			for path, item := range doc.Paths.Map() {
				for method, op := range item.Operations() {
					if !slices.ContainsFunc(mapsKeys(c.seen[op.OperationID]), func(s int) bool { return s < 400 }) {
						t.Errorf("%s %s (%s) was never exercised successfully; statuses seen: %v", method, path, op.OperationID, mapsKeys(c.seen[op.OperationID]))
					}
				}
			}
		})
	}
}

func mapsKeys(m map[int]bool) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

func exercise(t *testing.T, cl *client) {
	gh := cl.gh
	const (
		tokenPath = "/auth/api/v1/oauth/token"
		U         = "/local-user-store/api/v1"
		R         = "/role-store/api/v1"
		P         = "/api-proxy/api/v1"
		C         = "/connection-manager/api/v1"
	)
	login := func(user, pw string) url.Values {
		return url.Values{"grant_type": {"password"}, "client_id": {"gatehouse-cli"}, "username": {user}, "password": {pw}}
	}

	// Public operations and the token endpoint.
	if got := cl.do(exchange{method: "GET", path: "/openapi.json", want: 200}); !bytes.Equal(got, serviceapi.OpenAPIDocument()) {
		t.Error("GET /openapi.json does not serve the embedded document")
	}
	adm := cl.field(exchange{method: "POST", path: tokenPath, form: login("admin", testserver.AdminPassword), want: 200}, "access_token")
	refresh := cl.field(exchange{method: "POST", path: tokenPath, form: login("admin", testserver.AdminPassword), want: 200}, "refresh_token")
	cl.do(exchange{method: "POST", path: tokenPath, form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, want: 200})
	cl.do(exchange{method: "POST", path: tokenPath, form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, want: 400})
	cl.do(exchange{method: "POST", path: tokenPath, form: login("admin", "wrong-password"), want: 401})
	cl.do(exchange{method: "POST", path: tokenPath, form: url.Values{"grant_type": {"implicit"}}, want: 400, invalid: true})
	cl.do(exchange{method: "POST", path: tokenPath, json: map[string]string{"grant_type": "password"}, want: 400, invalid: true})
	exerciseOIDC(t, cl, adm)

	me := cl.id(exchange{method: "GET", path: "/auth/api/v1/users/current", token: adm, want: 200})
	cl.do(exchange{method: "GET", path: "/auth/api/v1/users/current", want: 401, invalid: true})
	cl.do(exchange{method: "GET", path: "/auth/api/v1/users/current", token: "not-a-token", want: 401})

	// Roles.
	role := cl.id(exchange{method: "POST", path: R + "/roles", token: adm, want: 201, json: map[string]any{
		"name": "devs", "comment": "developers", "permissions": []string{"api-proxy-credentials-own", "api-targets-view"}}})
	cl.do(exchange{method: "POST", path: R + "/roles", token: adm, want: 409, json: map[string]any{"name": "devs"}})
	cl.do(exchange{method: "POST", path: R + "/roles", token: adm, want: 400, invalid: true, json: map[string]any{"name": "x", "permissions": []string{"fly"}}})
	cl.do(exchange{method: "POST", path: R + "/roles", token: adm, want: 400, invalid: true, json: map[string]any{"name": "x", "colour": "red"}})
	cl.do(exchange{method: "POST", path: R + "/roles", token: adm, want: 415, invalid: true, json: `{"name":"x"}`, contentType: "text/plain"})
	cl.do(exchange{method: "GET", path: R + "/roles?offset=0&limit=10&sortkey=name&sortdir=desc&filter=dev", token: adm, want: 200})
	cl.do(exchange{method: "GET", path: R + "/roles?limit=-1", token: adm, want: 400, invalid: true})
	cl.do(exchange{method: "GET", path: R + "/roles?sortkey=colour", token: adm, want: 400, invalid: true})
	cl.do(exchange{method: "GET", path: R + "/roles/" + role, token: adm, want: 200})
	cl.do(exchange{method: "GET", path: R + "/roles/no-such-role", token: adm, want: 404})
	cl.do(exchange{method: "PUT", path: R + "/roles/" + role, token: adm, want: 200, json: map[string]any{"comment": "the developers"}})

	// User sources (a disabled LDAP source is never synced, so no directory is needed here).
	offlineSource := offlineSourceBody("offline")
	offlineSource["ttl"] = 3600
	source := cl.id(exchange{method: "POST", path: R + "/sources", token: adm, want: 201, json: offlineSource})
	cl.do(exchange{method: "POST", path: R + "/sources", token: adm, want: 409, json: offlineSource})
	cl.do(exchange{method: "POST", path: R + "/sources", token: adm, want: 400, invalid: true, json: map[string]any{"name": "x", "colour": "red"}})
	cl.do(exchange{method: "GET", path: R + "/sources", token: adm, want: 200})
	cl.do(exchange{method: "GET", path: R + "/sources/" + source, token: adm, want: 200})
	cl.do(exchange{method: "GET", path: R + "/sources/no-such-source", token: adm, want: 404})
	cl.do(exchange{method: "PUT", path: R + "/sources/" + source, token: adm, want: 200, json: map[string]any{"name": "offline-2", "enabled": false,
		"connection": map[string]any{"type": "LDAP", "address": "ldap.invalid", "ldap_base": "dc=example,dc=org"}}})
	cl.do(exchange{method: "POST", path: R + "/sources", token: adm, want: 400, json: map[string]any{"name": "aws", "enabled": true,
		"connection": map[string]any{"type": "AWS", "iam_access_key_id": "AKIAEXAMPLE"}}})
	cl.do(exchange{method: "POST", path: R + "/sources/refresh", token: adm, want: 200, json: []string{source, "local"}})
	cl.do(exchange{method: "POST", path: R + "/sources/refresh", token: adm, want: 404, json: []string{"no-such-source"}})
	cl.do(exchange{method: "PUT", path: R + "/roles/" + role, token: adm, want: 200, json: map[string]any{
		"source_rules": []map[string]any{{"tag": "devs"}, {"source": map[string]string{"id": source}, "tag": "admins"}}}})
	cl.do(exchange{method: "DELETE", path: R + "/sources/local", token: adm, want: 400})
	cl.do(exchange{method: "DELETE", path: R + "/sources/" + source, token: adm, want: 200})

	// Users.
	user := cl.id(exchange{method: "POST", path: U + "/users", token: adm, want: 201, json: map[string]any{
		"username": "alice", "password": "Alice-pass-1", "email": "alice@example.com", "full_name": "Alice Liddell"}})
	cl.do(exchange{method: "POST", path: U + "/users", token: adm, want: 409, json: map[string]any{"username": "alice", "password": "Alice-pass-1"}})
	cl.do(exchange{method: "POST", path: U + "/users", token: adm, want: 400, invalid: true, json: map[string]any{"username": "bob", "password": "short"}})
	cl.do(exchange{method: "GET", path: U + "/users?sortkey=username&sortdir=asc&filter=ali", token: adm, want: 200})
	cl.do(exchange{method: "GET", path: U + "/users/" + user, token: adm, want: 200})
	cl.do(exchange{method: "GET", path: U + "/users/no-such-user", token: adm, want: 404})
	cl.do(exchange{method: "PUT", path: U + "/users/" + user, token: adm, want: 200, json: map[string]any{"full_name": "Alice L."}})
	cl.do(exchange{method: "PUT", path: U + "/users/" + user, token: adm, want: 400, invalid: true, json: map[string]any{"password": "Alice-pass-9"}})
	cl.do(exchange{method: "PUT", path: U + "/users/" + user, token: adm, want: 400, json: map[string]any{"email": "not-an-address"}})
	cl.do(exchange{method: "PUT", path: U + "/users/" + user + "/password", token: adm, want: 200, json: map[string]any{"password": "Alice-pass-2"}})
	cl.do(exchange{method: "PUT", path: U + "/users/" + user + "/password", token: adm, want: 400, invalid: true, json: map[string]any{"password": "short"}})
	cl.do(exchange{method: "DELETE", path: U + "/users/" + me, token: adm, want: 409})
	cl.do(exchange{method: "PUT", path: R + "/users/" + user + "/roles", token: adm, want: 200, json: []map[string]string{{"id": role}}})
	cl.do(exchange{method: "PUT", path: R + "/users/" + user + "/roles", token: adm, want: 400, json: []map[string]string{{"id": "no-such-role"}}})
	cl.do(exchange{method: "GET", path: R + "/users/" + user + "/roles", token: adm, want: 200})
	cl.do(exchange{method: "GET", path: R + "/users/no-such-user/roles", token: adm, want: 404})
	cl.do(exchange{method: "GET", path: R + "/roles/" + role + "/members", token: adm, want: 200})
	alice := cl.field(exchange{method: "POST", path: tokenPath, form: login("alice", "Alice-pass-2"), want: 200}, "access_token")
	cl.do(exchange{method: "GET", path: U + "/users", token: alice, want: 403})

	// Extenders.
	ext := cl.id(exchange{method: "POST", path: P + "/extenders", token: adm, want: 201, json: map[string]any{"name": "site-a-1", "routing_prefix": "site-a"}})
	cl.do(exchange{method: "POST", path: P + "/extenders", token: adm, want: 409, json: map[string]any{"name": "site-a-1", "routing_prefix": "site-a"}})
	cl.do(exchange{method: "POST", path: P + "/extenders", token: adm, want: 400, invalid: true, json: map[string]any{"name": "x", "routing_prefix": "a/b"}})
	cl.do(exchange{method: "GET", path: P + "/extenders?sortkey=routing_prefix", token: adm, want: 200})
	cl.do(exchange{method: "GET", path: P + "/extenders/" + ext, token: adm, want: 200})
	cl.do(exchange{method: "GET", path: P + "/extenders/no-such-extender", token: adm, want: 404})
	cl.do(exchange{method: "PUT", path: P + "/extenders/" + ext, token: adm, want: 200, json: map[string]any{"enabled": false}})
	cl.do(exchange{method: "POST", path: P + "/extenders/" + ext + "/token", token: adm, want: 200})
	cl.do(exchange{method: "POST", path: P + "/extenders/" + ext + "/certificate", token: adm, want: 400})
	certExt := cl.id(exchange{method: "POST", path: P + "/extenders", token: adm, want: 201, json: map[string]any{"name": "site-c-1", "routing_prefix": "site-c", "authentication": "certificate"}})
	cl.do(exchange{method: "GET", path: P + "/extenders/" + certExt, token: adm, want: 200})
	cl.do(exchange{method: "POST", path: P + "/extenders/" + certExt + "/certificate", token: adm, want: 200})
	cl.do(exchange{method: "PUT", path: P + "/extenders/" + certExt, token: adm, want: 400, json: map[string]any{"authentication": "token"}})
	cl.do(exchange{method: "DELETE", path: P + "/extenders/" + certExt, token: adm, want: 200})
	cl.do(exchange{method: "DELETE", path: P + "/extenders/" + ext, token: adm, want: 200})

	// API clients, and the reference's token requests with their credentials.
	ac := cl.id(exchange{method: "POST", path: U + "/api-clients", token: adm, want: 201, json: map[string]any{"name": "ci", "roles": []map[string]string{{"id": role}}}})
	cl.do(exchange{method: "POST", path: U + "/api-clients", token: adm, want: 409, json: map[string]any{"name": "ci"}})
	cl.do(exchange{method: "GET", path: U + "/api-clients?sortkey=name", token: adm, want: 200})
	var creds struct {
		ID, Secret, OAuthClientID, OAuthClientSecret string
	}
	b := cl.do(exchange{method: "GET", path: U + "/api-clients/" + ac, token: adm, want: 200})
	var raw map[string]any
	json.Unmarshal(b, &raw)
	creds.ID, _ = raw["id"].(string)
	creds.Secret, _ = raw["secret"].(string)
	creds.OAuthClientID, _ = raw["oauth_client_id"].(string)
	creds.OAuthClientSecret, _ = raw["oauth_client_secret"].(string)
	cl.do(exchange{method: "GET", path: U + "/api-clients/no-such-client", token: adm, want: 404})
	cl.do(exchange{method: "PUT", path: U + "/api-clients/" + ac, token: adm, want: 200, json: map[string]any{"name": "ci-2"}})
	cl.do(exchange{method: "GET", path: U + "/api-clients", token: alice, want: 403})
	acTok := cl.field(exchange{method: "POST", path: tokenPath, want: 200, basic: [2]string{creds.OAuthClientID, creds.OAuthClientSecret},
		form: url.Values{"grant_type": {"password"}, "username": {creds.ID}, "password": {creds.Secret}}}, "access_token")
	cl.do(exchange{method: "POST", path: tokenPath, want: 200, basic: [2]string{creds.OAuthClientID, creds.OAuthClientSecret},
		form: url.Values{"grant_type": {"client_credentials"}}})

	// API targets, with every kind of target credential.
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	t.Cleanup(backend.Close)
	backendHost := strings.TrimPrefix(backend.URL, "http://")
	certPEM, keyPEM := throwawayCert(t)
	ep := func(host string, protocols ...string) map[string]any {
		return map[string]any{"host": host, "protocols": protocols, "methods": []string{"GET", "post"}, "paths": []string{"/api/**"}}
	}
	target := cl.id(exchange{method: "POST", path: P + "/api-targets", token: adm, want: 201, json: map[string]any{
		"name": "local", "comment": "a loopback API", "tags": []string{"test", "prod"}, "roles": []map[string]string{{"id": role}},
		"authorized_endpoints":   []any{ep(backendHost, "http")},
		"unauthorized_endpoints": []any{map[string]any{"host": backendHost, "protocols": []string{"*"}, "methods": []string{"DELETE"}, "paths": []string{"/api/admin/**"}}},
		"target_credential":      map[string]any{"type": "token", "bearer_token": "upstream-token-1"},
		"audit_enabled":          true,
	}})
	others := []map[string]any{
		{"type": "basicauth", "basic_auth_username": "svc", "basic_auth_password": "upstream-pass-1"},
		{"type": "header", "header_name": "X-Api-Key", "header_value": "upstream-key-1"},
		{"type": "certificate", "certificate": certPEM, "private_key": keyPEM},
	}
	var lastTarget string
	for i, cred := range others {
		nat := ep("api"+fmt.Sprint(i)+".example.com", "https")
		nat["nat_target_host"], nat["allow_unauthenticated"] = "10.0.0.1:8443", true
		lastTarget = cl.id(exchange{method: "POST", path: P + "/api-targets", token: adm, want: 201, json: map[string]any{
			"name": "remote-" + cred["type"].(string), "authorized_endpoints": []any{nat}, "target_credential": cred,
			"tls_trust_anchors": certPEM, "tls_insecure_skip_verify": false,
		}})
	}
	cl.do(exchange{method: "POST", path: P + "/api-targets", token: adm, want: 409, json: map[string]any{
		"name": "local", "authorized_endpoints": []any{ep("a.example.com", "https")}, "target_credential": map[string]any{"type": "token", "bearer_token": "x"}}})
	cl.do(exchange{method: "POST", path: P + "/api-targets", token: adm, want: 400, json: map[string]any{
		"name": "bad", "authorized_endpoints": []any{ep("a.example.com", "ftp")}, "target_credential": map[string]any{"type": "token", "bearer_token": "x"}}})
	cl.do(exchange{method: "POST", path: P + "/api-targets", token: adm, want: 400, invalid: true, json: map[string]any{
		"name": "bad", "authorized_endpoints": []any{ep("a.example.com", "https")}}})
	cl.do(exchange{method: "GET", path: P + "/api-targets?sortkey=name&sortdir=asc&filter=o&limit=10", token: adm, want: 200})
	cl.do(exchange{method: "POST", path: P + "/api-targets/search?limit=5", token: alice, want: 200, json: map[string]any{"keywords": "loopback", "tags": []string{"prod"}, "roles": []string{"devs"}}})
	cl.do(exchange{method: "GET", path: P + "/api-targets/tags", token: adm, want: 200})
	cl.do(exchange{method: "GET", path: P + "/api-targets/" + target, token: alice, want: 200})
	cl.do(exchange{method: "GET", path: P + "/api-targets/no-such-target", token: adm, want: 404})
	cl.do(exchange{method: "PUT", path: P + "/api-targets/" + target, token: adm, want: 200, json: map[string]any{"comment": "still loopback", "target_credential": map[string]any{"type": "token"}}})
	cl.do(exchange{method: "POST", path: P + "/api-targets", token: alice, want: 403, invalid: true, json: map[string]any{"name": "x"}})

	exerciseHosts(cl, adm, alice)

	// Proxy credentials: alice's own, through "current" and through her id.
	own := P + "/users/current/client-credentials"
	cl.do(exchange{method: "GET", path: P + "/users/current/api-targets?filter=loop&limit=5", token: alice, want: 200})
	cl.do(exchange{method: "GET", path: P + "/users/current/api-targets", token: acTok, want: 400})
	cred := cl.id(exchange{method: "POST", path: own, token: alice, want: 201, json: map[string]any{
		"name": "laptop", "comment": "for tests", "target": map[string]string{"id": target}, "source_address": []string{"127.0.0.1", "10.0.0.0/8"}}})
	cl.do(exchange{method: "POST", path: own, token: alice, want: 403, json: map[string]any{"name": "nope", "target": map[string]string{"id": lastTarget}}})
	cl.do(exchange{method: "POST", path: own, token: alice, want: 400, invalid: true, json: map[string]any{"name": "nope"}})
	cl.do(exchange{method: "GET", path: own + "?sortkey=not_after&sortdir=desc", token: alice, want: 200})
	cl.do(exchange{method: "GET", path: own + "/" + cred, token: alice, want: 200})
	cl.do(exchange{method: "PUT", path: own + "/" + cred, token: alice, want: 200, json: map[string]any{"comment": "renamed"}})
	cl.do(exchange{method: "PUT", path: own + "/" + cred, token: alice, want: 400, json: map[string]any{"not_after": "2999-01-01T00:00:00Z"}})
	cl.do(exchange{method: "POST", path: P + "/users/" + user + "/client-credentials/" + cred + "/rotate", token: adm, want: 200})
	cl.do(exchange{method: "POST", path: own + "/" + cred + "/rotate", token: alice, want: 200})
	secret := string(cl.do(exchange{method: "GET", path: own + "/" + cred + "/secret", token: alice, want: 200}))
	cl.do(exchange{method: "GET", path: own + "/" + cred + "/secret?format=kubeconfig", token: adm, want: 404}) // admin's "current" is admin
	cl.do(exchange{method: "GET", path: P + "/users/" + user + "/client-credentials/" + cred + "/secret?format=kubeconfig", token: adm, want: 403})
	cl.do(exchange{method: "GET", path: own + "/" + cred + "/secret?format=kubeconfig", token: alice, want: 200})
	cl.do(exchange{method: "GET", path: own + "/" + cred + "/secret?format=pdf", token: alice, want: 400, invalid: true})
	cl.do(exchange{method: "GET", path: P + "/users/" + user + "/client-credentials", token: adm, want: 200})
	cl.do(exchange{method: "GET", path: P + "/users/" + me + "/client-credentials", token: alice, want: 403})
	cl.do(exchange{method: "GET", path: P + "/users/no-such-user/client-credentials", token: adm, want: 404})
	cl.do(exchange{method: "GET", path: own, token: acTok, want: 400})

	// A real session through the proxy, so the connection manager has something to show.
	session := proxySession(t, cl, backend.URL, secret, adm)
	cl.do(exchange{method: "GET", path: C + "/connections?sortkey=connected&sortdir=desc", token: adm, want: 200})
	cl.do(exchange{method: "POST", path: C + "/connections/search", token: adm, want: 200, json: map[string]any{"status": []string{"connected"}, "user_id": user}})
	cl.do(exchange{method: "POST", path: C + "/connections/search", token: adm, want: 400, json: map[string]any{"status": []string{"asleep"}}})
	cl.do(exchange{method: "GET", path: C + "/connections/" + session, token: adm, want: 200})
	cl.do(exchange{method: "GET", path: C + "/connections/no-such-session", token: adm, want: 404})
	streamStart(t, cl, C+"/connections/"+session+"/trail/stream", adm)
	cl.do(exchange{method: "POST", path: C + "/terminate/connection/" + session, token: adm, want: 200})
	cl.do(exchange{method: "POST", path: C + "/terminate/connection/" + session, token: adm, want: 409})
	waitTrail(t, cl, C+"/connections/"+session+"/trail", adm)
	cl.do(exchange{method: "GET", path: C + "/connections/" + session + "/trail?limit=10", token: adm, want: 200})
	cl.do(exchange{method: "GET", path: C + "/connections/" + session + "/trail?format=har", token: adm, want: 200})
	cl.do(exchange{method: "GET", path: C + "/connections/" + session + "/trail/verify", token: adm, want: 200})
	cl.do(exchange{method: "GET", path: C + "/connections/" + session + "/trail?format=xml", token: adm, want: 400, invalid: true})
	exercisePrivXTrailLog(t, cl, adm, alice, session)
	cl.do(exchange{method: "PUT", path: C + "/connections/" + session + "/legal-hold", token: adm, want: 200, json: map[string]any{"hold": true, "reason": "case 42"}})
	cl.do(exchange{method: "PUT", path: C + "/connections/" + session + "/legal-hold", token: adm, want: 400, json: map[string]any{"hold": true}})
	cl.do(exchange{method: "PUT", path: C + "/connections/no-such-session/legal-hold", token: adm, want: 404, json: map[string]any{"hold": false}})
	cl.do(exchange{method: "POST", path: "/trail-index/api/v1/index/search?limit=5", token: adm, want: 200, json: map[string]any{"method": "GET", "path_prefix": "/"}})
	cl.do(exchange{method: "POST", path: "/trail-index/api/v1/index/search", token: adm, want: 400, invalid: true, json: map[string]any{"start_time": "yesterday"}})
	cl.do(exchange{method: "POST", path: "/trail-index/api/v1/index/search", token: alice, want: 403, json: map[string]any{}})
	cl.do(exchange{method: "GET", path: C + "/connections/" + session + "/trail", token: alice, want: 403})
	cl.do(exchange{method: "POST", path: C + "/terminate/user/" + user, token: adm, want: 200})
	cl.do(exchange{method: "POST", path: C + "/terminate/user/no-such-user", token: adm, want: 404})

	// Proxy configuration, status, settings and audit.
	cl.do(exchange{method: "GET", path: P + "/conf", token: alice, want: 200})
	cl.do(exchange{method: "GET", path: P + "/status", token: adm, want: 200})
	cl.do(exchange{method: "GET", path: P + "/status", token: alice, want: 403})
	cl.do(exchange{method: "GET", path: P + "/settings", token: adm, want: 200})
	cl.do(exchange{method: "PUT", path: P + "/settings", token: adm, want: 200, json: map[string]any{"idle_session_timeout": 600, "public_addresses": []string{"proxy.example.com:20080"}}})
	cl.do(exchange{method: "PUT", path: P + "/settings", token: adm, want: 400, invalid: true, json: map[string]any{"idle_session_timeout": 1}})
	cl.do(exchange{method: "GET", path: "/audit/api/v1/events?limit=200&actor=admin&object_type=user&from=2000-01-01T00:00:00Z", token: adm, want: 200})
	cl.do(exchange{method: "GET", path: "/audit/api/v1/events?sortkey=time&sortdir=asc&action=login", token: adm, want: 200})
	cl.do(exchange{method: "GET", path: "/audit/api/v1/events", token: alice, want: 403})

	// The PrivX SDK's requests and the shapes it decodes (privx_sdk_test.go).
	exercisePrivX(t, cl, adm)

	// Deletes, then the objects are gone.
	cl.do(exchange{method: "DELETE", path: own + "/" + cred, token: alice, want: 200})
	cl.do(exchange{method: "DELETE", path: own + "/" + cred, token: alice, want: 404})
	cl.do(exchange{method: "DELETE", path: P + "/api-targets/" + lastTarget, token: adm, want: 200})
	cl.do(exchange{method: "DELETE", path: P + "/api-targets/" + lastTarget, token: adm, want: 404})
	cl.do(exchange{method: "DELETE", path: U + "/api-clients/" + ac, token: adm, want: 200})
	cl.do(exchange{method: "DELETE", path: U + "/api-clients/" + ac, token: adm, want: 404})
	cl.do(exchange{method: "DELETE", path: U + "/users/" + user, token: adm, want: 200})
	cl.do(exchange{method: "DELETE", path: U + "/users/" + user, token: adm, want: 404})
	cl.do(exchange{method: "DELETE", path: R + "/roles/" + role, token: adm, want: 200})
	cl.do(exchange{method: "DELETE", path: R + "/roles/" + role, token: adm, want: 404})

	exerciseMFA(t, cl, adm)
	exerciseWorkflows(t, cl, adm)
	exerciseApprovals(t, cl, adm)

	// Last, since it locks out this source address: repeated failures are answered 429.
	for i := 0; ; i++ {
		form := login("ghost", "wrong-password")
		resp, err := gh.Client.PostForm(gh.URL+tokenPath, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			cl.do(exchange{method: "POST", path: tokenPath, form: form, want: 429})
			break
		}
		if i > 20 {
			t.Fatal("failed logins were never rate limited")
		}
	}
}

// proxySession sends one request through the proxy with the credential's secret and returns the API session's id
// once the connection manager lists the session.
func proxySession(t *testing.T, cl *client, backendURL, secret, adm string) string {
	t.Helper()
	pu, err := url.Parse("http://" + cl.gh.Server.ProxyAddr())
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	var list struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	var last string
	// The proxy's policy snapshot catches up with the new target asynchronously; poll without checking the
	// document, then check the real calls afterwards.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequest("GET", backendURL+"/api/hello", nil)
		req.Header.Set("Proxy-Authorization", "Bearer "+secret)
		resp, err := hc.Do(req)
		if err != nil {
			last = err.Error()
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			last = fmt.Sprintf("proxy answered %d: %s", resp.StatusCode, b)
			continue
		}
		status, lb := cl.gh.Do("GET", "/connection-manager/api/v1/connections", adm, nil)
		if status != 200 || json.Unmarshal(lb, &list) != nil || len(list.Items) == 0 {
			last = fmt.Sprintf("connections: %d %s", status, lb)
			continue
		}
		return list.Items[0].ID
	}
	t.Fatalf("no session through the proxy: %s", last)
	return ""
}

// waitTrail waits until the session's trail holds an exchange, so the trail's items are checked too. It only
// logs when none shows up: recording is the proxy's job, and its own tests say whether exchanges are written.
func waitTrail(t *testing.T, cl *client, path, token string) {
	t.Helper()
	var trail struct {
		Count int `json:"count"`
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		status, b := cl.gh.Do("GET", path, token, nil)
		if status == 200 && json.Unmarshal(b, &trail) == nil && trail.Count > 0 {
			return
		}
	}
	t.Logf("the trail at %s never showed the exchange; the Exchange schema went unchecked", path)
}

// streamStart opens the trail's event stream, reads its first event and hangs up, then checks what it got.
func streamStart(t *testing.T, cl *client, path, token string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", cl.gh.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := cl.gh.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %q %v", path, resp.StatusCode, first, err)
	}
	if reqErr, respErr := cl.c.check(req, nil, resp.StatusCode, resp.Header, []byte(first)); reqErr != nil || respErr != nil {
		t.Errorf("GET %s: request: %v; response: %v", path, reqErr, respErr)
	}
}

// throwawayCert returns a throwaway certificate and key in PEM, for certificate credentials and trust anchors.
func throwawayCert(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	ca := testca.New(t, "openapi test")
	return string(ca.PEM), string(ca.KeyPEM)
}

// kin-openapi has no decoder for event streams; the document only says the body is text.
func init() { openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder) }
