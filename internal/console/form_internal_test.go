package console

import (
	"io/fs"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFormField(t *testing.T) {
	rowOf := map[string]string{"authorized_endpoints[0]": "authorized_endpoints[2]", "unauthorized_endpoints[1]": "unauthorized_endpoints[4]"}
	for _, c := range []struct{ property, want string }{
		{"name", "name"},
		{"tags[3]", "tags"},
		{"roles[0].id", "roles"},
		{"target_credential.bearer_token", "target_credential.bearer_token"},
		{"authorized_endpoints[0].host", "authorized_endpoints[2].host"},
		{"authorized_endpoints[0].paths[1]", "authorized_endpoints[2].paths"},
		{"authorized_endpoints[0]", "authorized_endpoints[2].host"},
		{"unauthorized_endpoints[1].methods[0]", "unauthorized_endpoints[4].methods"},
		{"authorized_endpoints[7].host", "authorized_endpoints[7].host"}, // not mapped: shown at the API's index
		{"authorized_endpoints", "authorized_endpoints"},
		{"", ""},
	} {
		if got := formField(c.property, rowOf); got != c.want {
			t.Errorf("formField(%q) = %q, want %q", c.property, got, c.want)
		}
	}
}

func TestParseTargetForm(t *testing.T) {
	v := url.Values{
		"name": {"billing"}, "comment": {"c"}, "tags": {"prod, eu"}, "roles_listed": {"1"}, "roles": {"r1", "r2"},
		"audit_enabled": {"on"}, "target_credential.type": {"header"}, "target_credential.header_name": {"X-Key"},
		"target_credential.header_value": {"v"}, "target_credential.bearer_token": {""},
		// Row 0 is blank (dropped), row 1 is real, so the API's [0] is the form's [1].
		"authorized_endpoints[0].host": {""}, "authorized_endpoints[0].methods": {"*"}, "authorized_endpoints[0].paths": {"/**"},
		"authorized_endpoints[1].host": {"api.example.com"}, "authorized_endpoints[1].protocols": {"https", "http"},
		"authorized_endpoints[1].methods": {"GET, POST"}, "authorized_endpoints[1].paths": {"/v1/** /v2/*"},
		"authorized_endpoints[1].allow_unauthenticated": {"on"}, "authorized_endpoints[1].nat_target_host": {"10.0.0.1"},
		"unauthorized_endpoints[0].host": {"api.example.com"}, "unauthorized_endpoints[0].protocols": {"https"},
		"unauthorized_endpoints[0].methods": {"DELETE"}, "unauthorized_endpoints[0].paths": {"/v1/admin/**"},
	}
	f, body, rowOf := parseTargetForm(v)
	want := map[string]any{
		"name": "billing", "comment": "c", "tags": []string{"prod", "eu"}, "tls_trust_anchors": "", "tls_insecure_skip_verify": false,
		"disabled": false, "audit_enabled": true,
		"roles":             []map[string]string{{"id": "r1"}, {"id": "r2"}},
		"target_credential": map[string]any{"type": "header", "header_name": "X-Key", "header_value": "v"},
		"authorized_endpoints": []map[string]any{{"host": "api.example.com", "protocols": []string{"https", "http"}, "methods": []string{"GET", "POST"},
			"paths": []string{"/v1/**", "/v2/*"}, "allow_unauthenticated": true, "nat_target_host": "10.0.0.1"}},
		"unauthorized_endpoints": []map[string]any{{"host": "api.example.com", "protocols": []string{"https"}, "methods": []string{"DELETE"},
			"paths": []string{"/v1/admin/**"}}},
	}
	if d := cmp.Diff(want, body); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}
	if rowOf["authorized_endpoints[0]"] != "authorized_endpoints[1]" {
		t.Errorf("rowOf = %v", rowOf)
	}
	if len(f.Authorized) != 2 || f.Authorized[1].Host != "api.example.com" || f.CredType != "header" {
		t.Errorf("form state = %+v", f)
	}
	// Without the role checkboxes on the page the roles are left out, so an update keeps them.
	v.Del("roles_listed")
	if _, body, _ := parseTargetForm(v); body["roles"] != nil {
		t.Errorf("roles sent without roles_listed: %v", body["roles"])
	}
}

func TestExampleURLAndSnippets(t *testing.T) {
	for _, c := range []struct {
		eps  []endpointView
		want string
	}{
		{[]endpointView{{Host: "*.example.com"}, {Host: "api.example.com:8443", Protocols: []string{"https"}, Paths: []string{"/v1/**"}}}, "https://api.example.com:8443/v1/"},
		{[]endpointView{{Host: "10.0.0.1", Protocols: []string{"http"}, Paths: []string{"/x/*/y"}}}, "http://10.0.0.1/x/"},
		{[]endpointView{{Host: "k8s.local", Protocols: []string{"*"}, Paths: []string{"status"}}}, "https://k8s.local/status"},
		{[]endpointView{{Host: "*"}}, ""},
	} {
		if got := exampleURL(c.eps); got != c.want {
			t.Errorf("exampleURL(%+v) = %q, want %q", c.eps, got, c.want)
		}
	}
	withSecret := Snippets("127.0.0.1:20080", "https://api.example.com/v1/", "ghp_abc", "k.kubeconfig")
	tools := []string{}
	for _, s := range withSecret {
		tools = append(tools, s.Tool)
		if !strings.Contains(s.Code, "ghp_abc") && s.Tool != "kubectl" {
			t.Errorf("%s snippet lacks the secret:\n%s", s.Tool, s.Code)
		}
		if s.Tool != "kubectl" && !strings.Contains(s.Code, "http://127.0.0.1:20080") {
			t.Errorf("%s snippet lacks the proxy:\n%s", s.Tool, s.Code)
		}
	}
	if d := cmp.Diff([]string{"curl", "Python requests", "Go", "Node", "kubectl"}, tools); d != "" {
		t.Errorf("tools (-want +got):\n%s", d)
	}
	if got := withSecret[0].Code; got != "curl --proxy http://127.0.0.1:20080 --cacert gatehouse-ca.pem \\\n  -H 'Authorization: Bearer ghp_abc' \\\n  'https://api.example.com/v1/'" {
		t.Errorf("curl snippet = %q", got)
	}
	for _, s := range Snippets("127.0.0.1:20080", "https://api.example.com/it's", "", "") {
		if strings.Contains(s.Code, "ghp_") || !strings.Contains(s.Code, "GATEHOUSE_SECRET") {
			t.Errorf("%s snippet without a secret:\n%s", s.Tool, s.Code)
		}
	}
	if q := shellQuote("it's"); q != `'it'\''s'` {
		t.Errorf("shellQuote = %s", q)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{"": "/access", "/monitor/connections?x=1": "/monitor/connections?x=1",
		"https://evil.example/": "/access", "//evil.example/": "/access", `/\evil.example`: "/access", "admin": "/access"} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMarkRedactedAndBodies(t *testing.T) {
	got := markRedacted("Bearer [REDACTED] and [REDACTED]")
	want := []segment{{Text: "Bearer "}, {Text: "[REDACTED]", Redacted: true}, {Text: " and "}, {Text: "[REDACTED]", Redacted: true}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("markRedacted (-want +got):\n%s", d)
	}
	if got := prettyBody([]byte(`{"a":[1,2]}`)); got != "{\n  \"a\": [\n    1,\n    2\n  ]\n}" {
		t.Errorf("prettyBody(json) = %q", got)
	}
	if got := prettyBody([]byte{0xff, 0x00, 0x01}); !strings.Contains(got, "binary") {
		t.Errorf("prettyBody(binary) = %q", got)
	}
}

// TestTemplatesHaveNoInlineCode pins what the Content-Security-Policy relies on: no inline script, style or event
// handler anywhere in the templates, so the policy never needs 'unsafe-inline'.
func TestTemplatesHaveNoInlineCode(t *testing.T) {
	bad := regexp.MustCompile(`(?i)<style|\sstyle=|\son[a-z]+=|javascript:`)
	script := regexp.MustCompile(`(?is)<script([^>]*)>(.*?)</script>`)
	err := fs.WalkDir(templateFS, "templates", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(templateFS, path)
		if err != nil {
			return err
		}
		if m := bad.Find(b); m != nil {
			t.Errorf("%s has inline code: %q", path, m)
		}
		for _, m := range script.FindAllSubmatch(b, -1) {
			if !strings.Contains(string(m[1]), "src=") || strings.TrimSpace(string(m[2])) != "" {
				t.Errorf("%s has an inline script: %q", path, m[0])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	js, err := fs.ReadFile(staticFS, "static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
		if strings.Contains(string(js), sink) {
			t.Errorf("app.js uses %s, which turns strings into markup or code", sink)
		}
	}
}
