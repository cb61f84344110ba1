package policy

import "testing"

// TestPathAttackCorpus pins the invariant that an encoded or dot-segment
// variant of a path either normalizes to the same path as its plain form, and
// so meets the same rules, or is refused. Each case names the plain path the
// trick is aiming at.
func TestPathAttackCorpus(t *testing.T) {
	api, err := CompileGlob("/api/**")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := CompileGlob("/admin/**")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		raw   string
		plain string // "" means the raw form must be refused
	}{
		{"dot-dot escapes api", "/api/../admin", "/admin"},
		{"encoded dot-dot", "/api/%2e%2e/admin", "/admin"},
		{"upper encoded dot-dot", "/api/%2E%2E/admin", "/admin"},
		{"mixed encoded dot-dot", "/api/.%2E/admin", "/admin"},
		{"single dot", "/api/./admin", "/api/admin"},
		{"encoded single dot", "/api/%2e/admin", "/api/admin"},
		{"encoded letter", "/ap%69/admin", "/api/admin"},
		{"encoded letter escaping", "/ap%69/../admin", "/admin"},
		{"encoded tilde", "/api/%7euser", "/api/~user"},
		{"trailing dot-dot", "/api/x/..", "/api/"},
		{"deep dot-dot", "/api/a/b/../../../admin/x", "/admin/x"},
		{"encoded slash", "/api/%2fadmin", ""},
		{"encoded slash upper", "/api%2F..%2Fadmin", ""},
		{"encoded backslash", "/api/..%5cadmin", ""},
		{"raw backslash", "/api/..\\admin", ""},
		{"double slash", "//admin", ""},
		{"double slash inside", "/api//../admin", ""},
		{"path parameter", "/api;x=1/admin", ""},
		{"path parameter on dot-dot", "/api/..;/admin", ""},
		{"double encoded dot-dot", "/api/%252e%252e/admin", ""},
		{"nul byte", "/api/%00/../admin", ""},
		{"newline", "/api/%0a/admin", ""},
		{"above root", "/../admin", ""},
		{"above root encoded", "/%2e%2e/admin", ""},
		{"overlong utf-8 dot", "/api/%c0%ae%c0%ae/admin", ""},
		{"overlong utf-8 slash", "/api/..%c0%afadmin", ""},
		{"fullwidth solidus", "/api/..%ef%bc%8fadmin", ""},
		{"fullwidth full stops", "/api/%ef%bc%8e%ef%bc%8e/admin", ""},
		{"one dot leaders", "/api/%e2%80%a4%e2%80%a4/admin", ""},
		{"division slash", "/api/..%e2%88%95admin", ""},
		{"three dots", "/api/x/.../admin", ""},
		{"dot and space", "/api/x/.%20/admin", ""},
		{"raw non-ascii", "/api/\xc0\xae/admin", ""},
		{"query smuggled", "/api?/../admin", ""},
		{"fragment smuggled", "/api#/../admin", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizePath(tt.raw)
			if tt.plain == "" {
				if err == nil {
					t.Fatalf("NormalizePath(%q) = %q, want refusal", tt.raw, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("NormalizePath(%q): %v", tt.raw, err)
			}
			if got != tt.plain {
				t.Fatalf("NormalizePath(%q) = %q, want %q", tt.raw, got, tt.plain)
			}
			plain, err := NormalizePath(tt.plain)
			if err != nil || plain != tt.plain {
				t.Fatalf("plain form %q is not canonical: %q, %v", tt.plain, plain, err)
			}
			for _, g := range []Glob{api, admin} {
				if g.Match(got) != g.Match(tt.plain) {
					t.Errorf("%s: Match(%q) = %v but Match(%q) = %v", g, got, g.Match(got), tt.plain, g.Match(tt.plain))
				}
			}
		})
	}
}

// TestRulesAttackCorpus runs the same tricks through a whole rule set: /api/**
// is allowed, /api/admin/** is explicitly unauthorized, and none of the
// variants may reach the admin API or anything outside /api.
func TestRulesAttackCorpus(t *testing.T) {
	rules, err := CompileRules(
		[]Endpoint{{Host: "api.example.com", Protocols: []string{"https"}, Methods: []string{"*"}, Paths: []string{"/api/**"}}},
		[]Endpoint{{Host: "api.example.com", Protocols: []string{"*"}, Methods: []string{"*"}, Paths: []string{"/api/admin/**"}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		raw     string
		allowed bool
	}{
		{"/api/users", true},
		{"/api/x/../users", true},
		{"/api/administrator", true},
		{"/api/admin", false},
		{"/api/admin/", false},
		{"/api/admin/users", false},
		{"/api/x/../admin/users", false},
		{"/api/%2e%2e/api/admin", false},
		{"/ap%69/admin", false},
		{"/api/%61dmin", false},
		{"/api/./admin", false},
		{"/api//admin", false},
		{"/api;/admin", false},
		{"/api/admin;x", false},
		{"/api/%2fadmin", false},
		{"/api/x/..%2fadmin", false},
		{"/admin", false},
		{"/api/../admin", false},
		{"/api/..", false},
		{"/API/users", false},
		// What case-insensitive and Windows origins (Express by default, IIS) route as /api/admin/.
		{"/api/ADMIN/x", false},
		{"/api/Admin/x", false},
		{"/api/%41dmin/x", false},
		{"/api/admin./x", false},
		{"/api/admin../x", false},
		{"/api/admin%20/x", false},
		{"/api/admin.%20./x", false},
		{"/api/admin%C2%A0/x", false},
		{"/api/admin::$DATA/x", false},
		{"/api/ADMIN::$data", false},
		{"/api/admin::$INDEX_ALLOCATION/x", false},
		{"/api/admin:$I30:$INDEX_ALLOCATION/x", false},
		{"/api/%EF%BD%81%EF%BD%84%EF%BD%8D%EF%BD%89%EF%BD%8E/x", false},
		{"/api/%EF%BC%A1DMIN", false},
		{"/api/adm%C4%B1n/x", false},
		{"/api/%C0%AE%C0%AE/admin", false},
		{"/api%EF%BC%8Fadmin/x", false},
		{"/api/administrator.", true},
		{"/api/Users", true},
		{"/api/admin/..%2F..", false},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			d := Decision{Reason: "refused by NormalizePath"}
			if p, err := NormalizePath(tt.raw); err == nil {
				d = rules.Match(Request{Scheme: "https", Host: "api.example.com", Method: "GET", Path: p})
			}
			if d.Allowed != tt.allowed {
				t.Errorf("%q: Allowed = %v (%s), want %v", tt.raw, d.Allowed, d.Reason, tt.allowed)
			}
		})
	}
}
