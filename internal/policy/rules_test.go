package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func ep(host string, protocols, methods, paths []string) Endpoint {
	return Endpoint{Host: host, Protocols: protocols, Methods: methods, Paths: paths}
}

var (
	anyOf     = []string{"*"}
	httpsOnly = []string{"https"}
	httpOnly  = []string{"http"}
	getOnly   = []string{"GET"}
)

func TestRulesMatch(t *testing.T) {
	authorized := []Endpoint{
		ep("api.example.com", httpsOnly, []string{"GET", "POST"}, []string{"/v1/**"}),
		ep("api.example.com:8443", anyOf, anyOf, []string{"/admin/*"}),
		ep("*.svc.example.com", anyOf, getOnly, []string{"/health"}),
		ep("10.0.0.1", httpOnly, anyOf, []string{"**"}),
		ep("[2001:db8::1]:9000", anyOf, []string{"delete"}, []string{"/items/*"}),
		{Host: "open.example.com", Protocols: httpsOnly, Methods: getOnly, Paths: []string{"/public/**"}, AllowUnauthenticated: true, NATTargetHost: "10.9.9.9:8443"},
	}
	unauthorized := []Endpoint{
		ep("api.example.com", anyOf, anyOf, []string{"/v1/secrets/**"}),
		ep("*.svc.example.com", anyOf, anyOf, []string{"/health"}),
		ep("10.0.0.1", anyOf, []string{"DELETE"}, []string{"**"}),
	}
	rules, err := CompileRules(authorized, unauthorized)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		req     Request
		allowed bool
		reason  string
		host    string // Host of the matched endpoint, when allowed
	}{
		{"plain", Request{"https", "api.example.com", "GET", "/v1/users"}, true, ReasonAllowed, "api.example.com"},
		{"default https port", Request{"https", "api.example.com:443", "POST", "/v1/users"}, true, ReasonAllowed, "api.example.com"},
		{"host case and dot", Request{"HTTPS", "API.Example.COM.", "get", "/v1"}, true, ReasonAllowed, "api.example.com"},
		{"http not allowed", Request{"http", "api.example.com", "GET", "/v1/users"}, false, ReasonNoMatch, ""},
		{"wrong port", Request{"https", "api.example.com:8080", "GET", "/v1/users"}, false, ReasonNoMatch, ""},
		{"http default port is 80 not 443", Request{"https", "api.example.com:80", "GET", "/v1/users"}, false, ReasonNoMatch, ""},
		{"method not allowed", Request{"https", "api.example.com", "DELETE", "/v1/users"}, false, ReasonNoMatch, ""},
		{"path not allowed", Request{"https", "api.example.com", "GET", "/v2/users"}, false, ReasonNoMatch, ""},
		{"unauthorized wins", Request{"https", "api.example.com", "GET", "/v1/secrets/db"}, false, ReasonUnauthorized, ""},
		{"unauthorized on any port", Request{"https", "api.example.com:443", "GET", "/v1/secrets"}, false, ReasonUnauthorized, ""},
		{"explicit port", Request{"http", "api.example.com:8443", "PATCH", "/admin/x"}, true, ReasonAllowed, "api.example.com:8443"},
		{"explicit port only", Request{"https", "api.example.com", "PATCH", "/admin/x"}, false, ReasonNoMatch, ""},
		{"ip rule", Request{"http", "10.0.0.1", "PUT", "/anything/at/all"}, true, ReasonAllowed, "10.0.0.1"},
		{"ip rule with port", Request{"http", "10.0.0.1:80", "GET", "/"}, true, ReasonAllowed, "10.0.0.1"},
		{"ip unauthorized method", Request{"http", "10.0.0.1", "DELETE", "/x"}, false, ReasonUnauthorized, ""},
		{"ip lower-case method still denied", Request{"http", "10.0.0.1", "delete", "/x"}, false, ReasonUnauthorized, ""},
		{"ip https not allowed", Request{"https", "10.0.0.1", "GET", "/"}, false, ReasonNoMatch, ""},
		{"ipv6", Request{"https", "[2001:db8:0::1]:9000", "DELETE", "/items/4"}, true, ReasonAllowed, "[2001:db8::1]:9000"},
		{"ipv6 wrong port", Request{"https", "[2001:db8::1]", "DELETE", "/items/4"}, false, ReasonNoMatch, ""},
		{"wildcard denied by wildcard", Request{"https", "a.svc.example.com", "GET", "/health"}, false, ReasonUnauthorized, ""},
		{"nat endpoint", Request{"https", "open.example.com", "GET", "/public/a"}, true, ReasonAllowed, "open.example.com"},
		{"unsupported scheme", Request{"ftp", "api.example.com", "GET", "/v1"}, false, ReasonBadScheme, ""},
		{"empty scheme", Request{"", "api.example.com", "GET", "/v1"}, false, ReasonBadScheme, ""},
		{"bad host", Request{"https", "api.example.com:0", "GET", "/v1"}, false, ReasonBadHost, ""},
		{"wildcard as host", Request{"https", "*.svc.example.com", "GET", "/health"}, false, ReasonBadHost, ""},
		{"empty method", Request{"https", "api.example.com", "", "/v1"}, false, ReasonBadMethod, ""},
		{"method with space", Request{"https", "api.example.com", "GET /", "/v1"}, false, ReasonBadMethod, ""},
		{"raw path refused", Request{"https", "api.example.com", "GET", "/v1/%2e%2e/secrets"}, false, ReasonPathNotCanon, ""},
		{"invalid path", Request{"https", "api.example.com", "GET", "/v1/%2fsecrets"}, false, ReasonBadPath, ""},
		{"empty path", Request{"https", "api.example.com", "GET", ""}, false, ReasonPathNotCanon, ""},
		{"unknown host", Request{"https", "other.example.com", "GET", "/v1"}, false, ReasonNoMatch, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := rules.Match(tt.req)
			if d.Allowed != tt.allowed || d.Reason != tt.reason {
				t.Fatalf("Match(%+v) = %v %q, want %v %q", tt.req, d.Allowed, d.Reason, tt.allowed, tt.reason)
			}
			if !tt.allowed {
				if d.Endpoint != nil {
					t.Errorf("denied decision carries endpoint %+v", d.Endpoint)
				}
				return
			}
			if d.Endpoint == nil || d.Endpoint.Host != tt.host {
				t.Errorf("matched endpoint = %+v, want host %q", d.Endpoint, tt.host)
			}
		})
	}
}

func TestRulesMatchNormalizedEndpoint(t *testing.T) {
	rules, err := CompileRules([]Endpoint{{
		Host: "Open.Example.com", Protocols: []string{"HTTPS"}, Methods: []string{"get"},
		Paths: []string{"/public/**"}, NATTargetHost: "10.9.9.9:8443",
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := rules.Match(Request{"https", "open.example.com", "GET", "/public/x"})
	want := &Endpoint{
		Host: "open.example.com", Protocols: []string{"https"}, Methods: []string{"GET"},
		Paths: []string{"/public/**"}, NATTargetHost: "10.9.9.9:8443",
	}
	if diff := cmp.Diff(want, d.Endpoint); diff != "" {
		t.Errorf("Decision.Endpoint mismatch (-want +got):\n%s", diff)
	}
}

func TestRulesMatchUnauthenticated(t *testing.T) {
	rules, err := CompileRules([]Endpoint{
		ep("api.example.com", httpsOnly, anyOf, []string{"/**"}),
		{Host: "api.example.com", Protocols: httpsOnly, Methods: getOnly, Paths: []string{"/public/**"}, AllowUnauthenticated: true},
	}, []Endpoint{ep("api.example.com", anyOf, anyOf, []string{"/public/secret"})})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path    string
		method  string
		allowed bool
		reason  string
	}{
		// The first endpoint matches too but does not allow anonymous use;
		// the second must still be found.
		{"/public/a", "GET", true, ReasonAllowed},
		{"/public/a", "POST", false, ReasonUnauthenticated},
		{"/private", "GET", false, ReasonUnauthenticated},
		{"/public/secret", "GET", false, ReasonUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			d := rules.MatchUnauthenticated(Request{"https", "api.example.com", tt.method, tt.path})
			if d.Allowed != tt.allowed || d.Reason != tt.reason {
				t.Fatalf("MatchUnauthenticated = %v %q, want %v %q", d.Allowed, d.Reason, tt.allowed, tt.reason)
			}
			if d.Allowed && !d.Endpoint.AllowUnauthenticated {
				t.Errorf("allowed through endpoint that requires authentication: %+v", d.Endpoint)
			}
		})
	}
}

func TestRulesDenyByDefault(t *testing.T) {
	req := Request{"https", "api.example.com", "GET", "/"}
	var nilRules *Rules
	empty, err := CompileRules(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*Rules{"nil": nilRules, "zero": {}, "empty": empty} {
		t.Run(name, func(t *testing.T) {
			if d := r.Match(req); d.Allowed {
				t.Errorf("Match = %+v, want deny", d)
			}
			if d := r.MatchUnauthenticated(req); d.Allowed {
				t.Errorf("MatchUnauthenticated = %+v, want deny", d)
			}
		})
	}
}

func TestCompileRulesErrors(t *testing.T) {
	good := ep("api.example.com", httpsOnly, getOnly, []string{"/**"})
	_, err := CompileRules(
		[]Endpoint{good, ep("bad host", httpsOnly, getOnly, []string{"/**"})},
		[]Endpoint{ep("api.example.com", nil, getOnly, []string{"/a"})},
	)
	var fes FieldErrors
	if !errors.As(err, &fes) {
		t.Fatalf("CompileRules error = %v, want FieldErrors", err)
	}
	want := FieldErrors{
		{"authorized_endpoints[1].host", "invalid host name"},
		{"unauthorized_endpoints[0].protocols", "at least one protocol is required"},
	}
	if diff := cmp.Diff(want, fes); diff != "" {
		t.Errorf("CompileRules errors (-want +got):\n%s", diff)
	}
}

func TestRulesHosts(t *testing.T) {
	rules, err := CompileRules([]Endpoint{
		ep("b.example.com", anyOf, getOnly, []string{"/**"}),
		ep("a.example.com", httpsOnly, getOnly, []string{"/**"}),
		ep("A.example.com:443", httpOnly, getOnly, []string{"/x"}),
		ep("*.svc.example.com", httpOnly, getOnly, []string{"/**"}),
		ep("[::1]:8443", anyOf, getOnly, []string{"/**"}),
	}, []Endpoint{ep("denied.example.com", anyOf, getOnly, []string{"/**"})})
	if err != nil {
		t.Fatal(err)
	}
	want := []HostPort{
		{"*.svc.example.com", 80},
		{"::1", 8443},
		{"a.example.com", 443},
		{"b.example.com", 80},
		{"b.example.com", 443},
	}
	if diff := cmp.Diff(want, rules.Hosts()); diff != "" {
		t.Errorf("Hosts mismatch (-want +got):\n%s", diff)
	}
}

// TestAppendSegments holds the allocation-free split of the matcher to strings.Split, past the stack buffer too.
func TestAppendSegments(t *testing.T) {
	for _, p := range []string{"", "a", "a/b", "a//b", "/", "a/", "/a", strings.Repeat("s/", 20) + "end"} {
		var buf [2]string
		if got, want := appendSegments(buf[:0], p), strings.Split(p, "/"); !slices.Equal(got, want) {
			t.Errorf("appendSegments(%q) = %q, want %q", p, got, want)
		}
	}
}
