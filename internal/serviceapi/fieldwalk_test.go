package serviceapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/gatehouse-dev/gatehouse/internal/directory"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// walkField is one settable field of a request body: its path ("authorized_endpoints[].host") and what the
// walk sets it to.
type walkField struct {
	path  string
	value func(cur any) any
}

// schemaFields lists the writable leaf fields of an OpenAPI request schema, descending into objects and lists
// of objects (through their first element). Read-only fields (server-populated, ignored on input) are left out.
func schemaFields(s *openapi3.Schema, prefix string, refs map[string]string) []walkField {
	if s.ReadOnly {
		return nil
	}
	join := func(name string) string {
		if prefix == "" {
			return name
		}
		return prefix + "." + name
	}
	switch {
	case s.Type.Is("object") && len(s.Properties) > 0:
		var out []walkField
		names := make([]string, 0, len(s.Properties))
		for n := range s.Properties {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			out = append(out, schemaFields(s.Properties[n].Value, join(n), refs)...)
		}
		return out
	case s.Type.Is("array") && s.Items != nil && s.Items.Value.Type.Is("object") && !isRefSchema(s.Items):
		return schemaFields(s.Items.Value, prefix+"[]", refs)
	}
	return []walkField{{prefix, schemaValue(s, refs)}}
}

func isRefSchema(r *openapi3.SchemaRef) bool { return strings.HasSuffix(r.Ref, "/Ref") }

// schemaValue is how the walk changes a field of schema s from its current value: another enum value, a later
// time, a flipped boolean, a larger number, one more list element.
func schemaValue(s *openapi3.Schema, refs map[string]string) func(any) any {
	switch {
	case len(s.Enum) > 0:
		return func(cur any) any {
			for _, e := range s.Enum {
				if e != cur && e != "" {
					return e
				}
			}
			return s.Enum[0]
		}
	case s.Type.Is("string") && s.Format == "date-time":
		return func(any) any { return time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339) }
	case s.Type.Is("string") && s.Format == "password":
		return func(any) any { return "Walk-pass-12345" }
	case s.Type.Is("string"):
		return func(any) any { return "walk-value" }
	case s.Type.Is("boolean"):
		return func(cur any) any { b, _ := cur.(bool); return !b }
	case s.Type.Is("integer"):
		return func(cur any) any {
			n, _ := cur.(float64)
			if s.Min != nil && n < *s.Min {
				n = *s.Min
			}
			return n + 1
		}
	case s.Type.Is("array"):
		var elem func(any) any
		switch {
		case isRefSchema(s.Items):
			elem = func(any) any { return map[string]any{"id": refs["role"]} }
		default:
			elem = schemaValue(s.Items.Value, refs)
		}
		return func(cur any) any {
			l, _ := cur.([]any)
			return append(append([]any{}, l...), elem(nil))
		}
	}
	return func(any) any { return map[string]any{"walk": "value"} }
}

// structFields lists the leaf fields of a Go request type by its JSON tags, for bodies the handlers decode into an
// exported type (directory.Source), so a field added there is walked at once.
func structFields(t reflect.Type, prefix string) []walkField {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct && t != reflect.TypeOf(time.Time{}) {
		var out []walkField
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.Anonymous && name == "" {
				out = append(out, structFields(f.Type, prefix)...)
				continue
			}
			if name == "-" || !f.IsExported() {
				continue
			}
			p := name
			if prefix != "" {
				p = prefix + "." + name
			}
			out = append(out, structFields(f.Type, p)...)
		}
		return out
	}
	if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct {
		return structFields(t.Elem(), prefix+"[]")
	}
	return []walkField{{prefix, goValue(t)}}
}

func goValue(t reflect.Type) func(any) any {
	switch t.Kind() {
	case reflect.Bool:
		return func(cur any) any { b, _ := cur.(bool); return !b }
	case reflect.Int, reflect.Int64:
		return func(cur any) any { n, _ := cur.(float64); return n + 1 }
	case reflect.String:
		return func(any) any { return "walk-value" }
	case reflect.Slice:
		return func(cur any) any { l, _ := cur.([]any); return append(append([]any{}, l...), "walk-value") }
	case reflect.Map:
		return func(any) any { return map[string]any{"username": "walk-value"} }
	}
	if t == reflect.TypeOf(time.Time{}) {
		return func(any) any { return time.Now().UTC().Format(time.RFC3339) }
	}
	panic("no walk value for " + t.String())
}

// setJSON sets path in body to v, creating objects and a first list element on the way; a new list element
// starts from examples[list path] (a valid element), so that the walked field is the only thing to judge.
func setJSON(body map[string]any, path string, v any, examples map[string]map[string]any) {
	parts := strings.Split(path, ".")
	cur := body
	for i, part := range parts {
		name, isList := strings.CutSuffix(part, "[]")
		if i == len(parts)-1 && !isList {
			cur[name] = v
			return
		}
		if isList {
			l, _ := cur[name].([]any)
			if len(l) == 0 {
				l = []any{copyMap(examples[strings.Join(append(parts[:i:i], name), ".")])}
			}
			l = append([]any{}, l...)
			elem, _ := l[0].(map[string]any)
			elem = copyMap(elem)
			l[0] = elem
			cur[name] = l
			cur = elem
			continue
		}
		next, _ := cur[name].(map[string]any)
		next = copyMap(next)
		cur[name] = next
		cur = next
	}
}

func getJSON(body map[string]any, path string) any {
	var cur any = body
	for _, part := range strings.Split(path, ".") {
		name, isList := strings.CutSuffix(part, "[]")
		m, _ := cur.(map[string]any)
		cur = m[name]
		if isList {
			l, _ := cur.([]any)
			if len(l) == 0 {
				return nil
			}
			cur = l[0]
		}
	}
	return cur
}

func copyMap(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func toMap(v any) map[string]any {
	b, _ := json.Marshal(v)
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

var walkIndex = regexp.MustCompile(`\[\d+\]`)

// aboutField reports whether an error's property is the walked field, one inside it or one around it.
func aboutField(property, path string) bool {
	p := walkIndex.ReplaceAllString(property, "[]")
	return p != "" && (p == path || strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[]") ||
		strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[]"))
}

// walkObject is one object of the service API the walk creates (or, for singletons, updates).
type walkObject struct {
	name   string
	method string
	path   string
	fields []walkField
	// base is a valid body; current is the object as the API shows it after base was stored, for the values the
	// walk changes (nil means base).
	base    func(uniq string) map[string]any
	current map[string]any
	// skip lists fields the object's base makes meaningless to walk (its unique name is set per case).
	skip []string
	// examples are valid list elements by list path; companions are the other fields a walked value needs to be
	// valid at all (a credential type needs its secrets), by walked path.
	examples   map[string]map[string]any
	companions map[string]map[string]any
}

// TestServiceFieldWalk walks every writable field of every object of the service API (from the OpenAPI request
// schemas, and from directory.Source by reflection for sources, so a new field is walked without being listed),
// sets a non-default value on a valid body and sends it. A field whose value is accepted must be in
// enforcedServiceFields, naming the test that proves its effect; every other field must be refused with an error
// whose property names it. Nothing may be stored that does nothing.
func TestServiceFieldWalk(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	doc := loadDoc(t)
	checkServiceRegistry(t)
	var me struct {
		ID string `json:"id"`
	}
	gh.JSON("GET", "/auth/api/v1/users/current", adm, nil, http.StatusOK, &me)
	var roles struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	gh.JSON("GET", "/role-store/api/v1/users/"+me.ID+"/roles", adm, nil, http.StatusOK, &roles)
	refs := map[string]string{"role": roles.Items[0].ID}
	target := gh.Create(targetsPath, adm, targetBody("walk-target", refs["role"]))
	fromSchema := func(name string) []walkField {
		s := doc.Components.Schemas[name]
		if s == nil {
			t.Fatalf("no schema %s", name)
		}
		return schemaFields(s.Value, "", refs)
	}
	var settings map[string]any
	gh.JSON("GET", proxyPath+"/settings", adm, nil, http.StatusOK, &settings)
	sourceFields := structFields(reflect.TypeOf(directory.Source{}), "")
	ldapBase := func(uniq string) map[string]any {
		return map[string]any{"name": uniq, "enabled": false, "ttl": 0, "connection": map[string]any{
			"type": "LDAP", "address": "127.0.0.1", "port": 1.0, "ldap_base": "dc=example,dc=org"}}
	}
	oidcBase := func(uniq string) map[string]any {
		return map[string]any{"name": uniq, "enabled": false, "ttl": 0, "connection": map[string]any{
			"type": "OIDC", "oidc_issuer": "https://idp.example.com", "oidc_client_id": "gatehouse"}}
	}
	ldapSource := gh.Create(sourcesPath, adm, ldapBase("walk-directory"))
	objects := []walkObject{
		{name: "users", method: "POST", path: usersPath, fields: fromSchema("UserCreate"), skip: []string{"username"},
			base: func(u string) map[string]any { return map[string]any{"username": u, "password": "Walk-pass-123"} }},
		{name: "api-clients", method: "POST", path: clientsPath, fields: fromSchema("APIClientCreate"), skip: []string{"name"},
			base: func(u string) map[string]any { return map[string]any{"name": u} }},
		{name: "roles", method: "POST", path: rolesPath, fields: fromSchema("RoleCreate"), skip: []string{"name"},
			base:     func(u string) map[string]any { return map[string]any{"name": u} },
			examples: map[string]map[string]any{"source_rules": {"source": map[string]any{"id": ldapSource}}},
			// source_rules is PrivX's rule tree or Gatehouse's list: the walk gives it one tag rule in the list form.
			companions: map[string]map[string]any{"source_rules": {"source_rules": []any{
				map[string]any{"source": map[string]any{"id": ldapSource}, "tag": "walk-tag"}}}}},
		{name: "hosts", method: "POST", path: "/host-store/api/v1/hosts", fields: fromSchema("HostCreate"), skip: []string{"common_name"},
			base:     func(u string) map[string]any { return map[string]any{"common_name": u} },
			examples: map[string]map[string]any{"services": {"service": "SSH", "address": "10.0.0.1", "port": 22.0}}},
		{name: "targets", method: "POST", path: targetsPath, fields: fromSchema("TargetCreate"), skip: []string{"name"},
			base: func(u string) map[string]any { return toMap(targetBody(u, refs["role"])) },
			examples: map[string]map[string]any{"unauthorized_endpoints": {"host": "api.example.com", "protocols": []any{"https"},
				"methods": []any{"DELETE"}, "paths": []any{"/admin/**"}}},
			companions: map[string]map[string]any{"target_credential.type": {"target_credential.bearer_token": "",
				"target_credential.basic_auth_username": "walker", "target_credential.basic_auth_password": "walk-pass"}}},
		{name: "credentials", method: "POST", path: proxyPath + "/users/current/client-credentials", fields: fromSchema("ProxyCredentialCreate"),
			skip: []string{"name"}, base: func(u string) map[string]any {
				return map[string]any{"name": u, "target": map[string]any{"id": target}}
			}},
		{name: "settings", method: "PUT", path: proxyPath + "/settings", fields: fromSchema("SettingsUpdate"), current: settings,
			base: func(string) map[string]any { return copyMap(settings) }},
		{name: "sources(LDAP)", method: "POST", path: sourcesPath, fields: sourceFields, base: ldapBase, skip: []string{"name", "connection.type"},
			examples: map[string]map[string]any{"external_user_mapping": {"source_id": "local", "source_search_field": "email"}},
			companions: map[string]map[string]any{"connection.mfa_address": {"connection.mfa_type": "RADIUS", "connection.mfa_shared_secret": "s"},
				"connection.mfa_port":          {"connection.mfa_type": "RADIUS", "connection.mfa_address": "127.0.0.1", "connection.mfa_shared_secret": "s"},
				"connection.mfa_shared_secret": {"connection.mfa_type": "RADIUS", "connection.mfa_address": "127.0.0.1"},
				"connection.mfa_require_message_authenticator": {"connection.mfa_type": "RADIUS", "connection.mfa_address": "127.0.0.1",
					"connection.mfa_shared_secret": "s"}}},
		{name: "sources(LOCAL)", method: "PUT", path: sourcesPath + "/local", fields: sourceFields, skip: []string{"connection.type"},
			base: func(string) map[string]any {
				return map[string]any{"name": "Local users", "enabled": true, "ttl": 0, "connection": map[string]any{"type": "LOCAL"}}
			},
			examples: map[string]map[string]any{"external_user_mapping": {"source_id": "local", "source_search_field": "email"}},
			companions: map[string]map[string]any{"connection.mfa_address": {"connection.mfa_type": "RADIUS", "connection.mfa_shared_secret": "s"},
				"connection.mfa_port":          {"connection.mfa_type": "RADIUS", "connection.mfa_address": "127.0.0.1", "connection.mfa_shared_secret": "s"},
				"connection.mfa_shared_secret": {"connection.mfa_type": "RADIUS", "connection.mfa_address": "127.0.0.1"},
				"connection.mfa_require_message_authenticator": {"connection.mfa_type": "RADIUS", "connection.mfa_address": "127.0.0.1",
					"connection.mfa_shared_secret": "s"}}},
		{name: "sources(OIDC)", method: "POST", path: sourcesPath, fields: sourceFields, base: oidcBase, skip: []string{"name", "connection.type"},
			examples: map[string]map[string]any{"external_user_mapping": {"source_id": "local", "source_search_field": "email"}}},
	}
	seen := map[string]bool{}
	n := 0
	for _, o := range objects {
		if o.method == "PUT" && o.current == nil {
			gh.JSON("GET", o.path, adm, nil, http.StatusOK, &o.current)
		}
		if o.method == "POST" {
			// The values to change are the object's as stored (defaults filled in), not the sparse base body.
			id := gh.Create(o.path, adm, o.base("walk-base-"+strings.NewReplacer("(", "-", ")", "").Replace(o.name)))
			gh.JSON("GET", o.path+"/"+id, adm, nil, http.StatusOK, &o.current)
		}
		for _, f := range o.fields {
			if slices.Contains(o.skip, f.path) {
				continue
			}
			key := o.name + ":" + f.path
			seen[key] = true
			t.Run(key, func(t *testing.T) {
				n++
				body := o.base(fmt.Sprintf("walk-%s-%d", strings.NewReplacer("(", "-", ")", "").Replace(o.name), n))
				cur := o.current
				if cur == nil {
					cur = body
				}
				walked := f.value(getJSON(cur, f.path))
				setJSON(body, f.path, walked, o.examples)
				for p, v := range o.companions[f.path] {
					setJSON(body, p, v, o.examples)
				}
				status, resp := gh.Do(o.method, o.path, adm, body)
				if o.method == "PUT" && status < 300 {
					defer gh.JSON("PUT", o.path, adm, o.base(""), http.StatusOK, nil)
				}
				var e struct {
					Code     string `json:"error_code"`
					Property string `json:"property"`
				}
				json.Unmarshal(resp, &e)
				test, enforced := enforcedServiceFields[key]
				if why, ignored := ignoredServiceFields[key]; ignored && status < 300 {
					// Accepted and ignored: it must not have been stored.
					var created struct {
						ID string `json:"id"`
					}
					json.Unmarshal(resp, &created)
					where := o.path + "/" + created.ID
					if o.method == "PUT" {
						where = o.path
					}
					var stored map[string]any
					gh.JSON("GET", where, adm, nil, http.StatusOK, &stored)
					if got := getJSON(stored, f.path); fmt.Sprint(got) == fmt.Sprint(walked) {
						t.Errorf("%s is documented as ignored (%s) but was stored: %v", key, why, got)
					}
					return
				}
				switch {
				case status < 300 && !enforced:
					t.Errorf("%s=%v was accepted and stored, but no test proves its effect: enforce it and name the test in "+
						"enforcedServiceFields, or refuse it with NOT_SUPPORTED naming the field", key, getJSON(body, f.path))
				case status >= 500:
					t.Errorf("%s: %d %s", key, status, resp)
				case status >= 300 && !aboutField(e.Property, f.path):
					t.Errorf("%s refused with %d, property %q instead of the field: %s", key, status, e.Property, resp)
				case status < 300:
					t.Logf("accepted: enforced by %s", test)
				default:
					t.Logf("refused: %s %s", e.Code, e.Property)
				}
			})
		}
	}
	for key := range enforcedServiceFields {
		if !seen[key] {
			t.Errorf("enforcedServiceFields lists %s, which the walk did not find", key)
		}
	}
}

// checkServiceRegistry fails for every registry entry whose named test ("pkg.TestName") does not exist in the
// package's test sources.
func checkServiceRegistry(t *testing.T) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^func (Test\w+)\(t \*testing\.T\)`)
	funcs := map[string]bool{}
	files, _ := filepath.Glob("../*/*_test.go")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			funcs[filepath.Base(filepath.Dir(f))+"."+string(m[1])] = true
		}
	}
	if len(funcs) == 0 {
		t.Fatal("no test sources found")
	}
	for field, test := range enforcedServiceFields {
		if !funcs[test] {
			t.Errorf("registry: %s names %q, which is not a Test function under internal/", field, test)
		}
	}
}
