package policy

import (
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// denyOracleRules allow everything on one host and deny three patterns, which FuzzDenyHoldsLoose attacks.
var denyOraclePatterns = []string{"/api/admin/**", "/api/*/secret", "/files/report.txt", "/Config/**", "/reports/", "/"}

func denyOracleRules(t testing.TB) *Rules {
	r, err := CompileRules(
		[]Endpoint{{Host: "api.example.com", Protocols: []string{"https"}, Methods: []string{"*"}, Paths: []string{"/**"}}},
		[]Endpoint{{Host: "api.example.com", Protocols: []string{"*"}, Methods: []string{"*"}, Paths: denyOraclePatterns}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// FuzzDenyHoldsLoose checks the deny list against an oracle that reads a path the way the loosest common origins
// do: IIS and Windows (decode, backslash and lookalike slashes are separators, ";" parameters dropped by Tomcat,
// "//" collapsed, case-insensitive, trailing dots and spaces and "::$DATA" dropped, then dot segments resolved)
// and Express (case-insensitive, a trailing slash optional). Whenever that reading falls under a deny pattern, the proxy's decision on the
// same raw path must be a denial, whether by the deny rule or by NormalizePath refusing the path.
func FuzzDenyHoldsLoose(f *testing.F) {
	for _, s := range []string{
		"/api/ADMIN/x", "/api/Admin/x", "/api/admin./x", "/api/admin%20/x", "/api/%C0%AE%C0%AE/admin",
		"/api%EF%BC%8Fadmin/x", "/api/admin%EF%BC%8Fx", "/api/%EF%BD%81%EF%BD%84%EF%BD%8D%EF%BD%89%EF%BD%8E/x",
		"/api/admin%C2%A0/x", "/api/x/SECRET", "/api/x/secret.", "/Files/REPORT.TXT.", "/files/report.txt::$DATA",
		"/api/admin..%20/x", "/api/adm%C4%B1n/x", "/con%EF%AC%81g/x", "/CONFIG", "/api/x/%E2%80%A4%E2%80%A4/admin",
		"/api/admin::$INDEX_ALLOCATION/x", "/api/admin:$i30:$index_allocation/x", "/api/admin;x/y", "/api\\admin", "/api//admin", "/api/%2e%2e/api/admin", "/%E2%84%AA", "/api/%E2%84%AAdmin",
		"/files/report%2Etxt", "/files/report%E3%80%82txt", "/api/x/.%20/admin", "/api/users", "/",
		"/reports", "/REPORTS/", "/reports./", "/api/x/secret/", "/files/report.txt/", "/%20", "/.",
	} {
		f.Add(s)
	}
	rules := denyOracleRules(f)
	f.Fuzz(func(t *testing.T, raw string) {
		canon, err := NormalizePath(raw)
		denied := err != nil
		if err == nil {
			denied = !rules.Match(Request{Scheme: "https", Host: "api.example.com", Method: "GET", Path: canon}).Allowed
		}
		decoded, ok := percentDecode(raw)
		if ok && !utf8.ValidString(decoded) && err == nil {
			t.Fatalf("NormalizePath(%q) accepted invalid UTF-8", raw)
		}
		for _, variant := range []func(string) string{strings.ToLower, strings.ToUpper} {
			segs := oracleLoose(raw, variant)
			if segs == nil {
				continue
			}
			for _, p := range denyOraclePatterns {
				if oracleMatch(trimTrailingSlash(strings.Split(variant(p)[1:], "/")), segs) && !denied {
					t.Fatalf("%q reads as %q at a loose origin, under deny pattern %q, but the proxy allows it (normalized %q)",
						raw, "/"+strings.Join(segs, "/"), p, canon)
				}
			}
		}
	})
}

// oracleLoose is the loose origin's reading of a raw path, written independently of looseSegment: nil when the
// origin would refuse it too (bad escapes).
func oracleLoose(raw string, caseMap func(string) string) []string {
	s, ok := percentDecode(raw)
	if !ok || !strings.HasPrefix(raw, "/") {
		return nil
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = norm.NFKC.String(s)
	s = strings.NewReplacer("\\", "/", "\u2215", "/", "\u2044", "/", "\u29F8", "/", "\u00A5", "/", "\u20A9", "/",
		"\u3002", ".", "\u2024", ".").Replace(s)
	var out []string
	for _, seg := range strings.Split(s, "/") {
		if i := strings.IndexByte(seg, ';'); i >= 0 {
			seg = seg[:i]
		}
		seg = caseMap(seg)
		trimmed := seg
		for {
			t := strings.TrimRight(trimmed, ". ")
			for _, stream := range []string{"::$DATA", "::$INDEX_ALLOCATION", ":$I30:$INDEX_ALLOCATION"} {
				t = strings.TrimSuffix(t, caseMap(stream))
			}
			if t == trimmed {
				break
			}
			trimmed = t
		}
		switch {
		case trimmed == "" && strings.Contains(seg, ".."):
			trimmed = ".."
		case trimmed == "" && strings.Contains(seg, "."):
			trimmed = "."
		}
		switch trimmed {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, trimmed)
		}
	}
	// A trailing slash is not a segment to these origins (Express with strict: false); the root stays "/".
	if len(out) == 0 {
		out = []string{""}
	}
	return out
}

func trimTrailingSlash(segs []string) []string {
	if n := len(segs); n > 1 && segs[n-1] == "" {
		return segs[:n-1]
	}
	return segs
}

// oracleMatch is the glob definition over plain strings: "*" one non-empty segment, "**" any number.
func oracleMatch(pat, path []string) bool {
	switch {
	case len(pat) == 0:
		return len(path) == 0
	case pat[0] == "**":
		return oracleMatch(pat[1:], path) || len(path) > 0 && oracleMatch(pat, path[1:])
	case len(path) == 0:
		return false
	case pat[0] == "*":
		return path[0] != "" && oracleMatch(pat[1:], path[1:])
	default:
		return pat[0] == path[0] && oracleMatch(pat[1:], path[1:])
	}
}

func TestLooseSegment(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"admin", "admin"},
		{"ADMIN", "admin"},
		{"admin.", "admin"},
		{"admin%20", "admin"},
		{"admin.%20.", "admin"},
		{"admin::$DATA", "admin"},
		{"admin::$INDEX_ALLOCATION", "admin"},
		{"ADMIN:$I30:$INDEX_ALLOCATION", "admin"},
		{"admin.::$DATA.", "admin"},
		{"%EF%BD%81dmin", "admin"},
		{"adm%C4%B1n", "admin"},
		{"%E2%84%AA", "k"},
		{"%C3%89t%C3%A9", "été"},
		{"v1.2", "v1.2"},
	} {
		if got := looseSegment(tc.in); got != tc.want {
			t.Errorf("looseSegment(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = looseSegments([]string{"api", "v1", "users"}) }); n != 0 {
		t.Errorf("looseSegments of plain segments allocates %v times", n)
	}
}

// TestDenyTrailingSlash: Express (strict: false) routes "/x/" as "/x" and back, so a deny rule covers both
// spellings; allow rules keep the trailing slash exact.
func TestDenyTrailingSlash(t *testing.T) {
	rules, err := CompileRules([]Endpoint{ep("api.example.com", anyOf, anyOf, []string{"/**"}), ep("b.example.com", anyOf, anyOf, []string{"/x"})},
		[]Endpoint{ep("api.example.com", anyOf, anyOf, []string{"/api/admin", "/api/keys/", "/"})})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host, path string
		allowed    bool
	}{
		{"api.example.com", "/api/admin", false},
		{"api.example.com", "/api/admin/", false},
		{"api.example.com", "/api/Admin./", false},
		{"api.example.com", "/api/keys", false},
		{"api.example.com", "/api/keys/", false},
		{"api.example.com", "/", false},
		{"api.example.com", "/api/", true},
		{"api.example.com", "/api/admin/x", true},
		{"b.example.com", "/x", true},
		{"b.example.com", "/x/", false},
	} {
		d := rules.Match(Request{Scheme: "https", Host: tc.host, Method: "GET", Path: tc.path})
		if d.Allowed != tc.allowed {
			t.Errorf("%s%s: allowed %v (%s), want %v", tc.host, tc.path, d.Allowed, d.Reason, tc.allowed)
		}
	}
}

// TestTraceNeedsExplicitEndpoint: TRACE answers with the request, injected credential included, so "*" does not
// authorize it (issue 9); an endpoint that names TRACE does, TRACK never passes, and a deny rule with "*" still
// covers both.
func TestTraceNeedsExplicitEndpoint(t *testing.T) {
	rules, err := CompileRules([]Endpoint{
		ep("api.example.com", anyOf, anyOf, []string{"/**"}),
		ep("api.example.com", anyOf, []string{"TRACE"}, []string{"/debug/**"}),
	}, []Endpoint{ep("api.example.com", anyOf, anyOf, []string{"/debug/private/**"})})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path string
		allowed      bool
	}{
		{"GET", "/x", true},
		{"DELETE", "/x", true},
		{"TRACE", "/x", false},
		{"trace", "/x", false},
		{"TRACK", "/x", false},
		{"TRACE", "/debug/x", true},
		{"TRACK", "/debug/x", false},
		{"TRACE", "/debug/private/x", false},
	} {
		d := rules.Match(Request{Scheme: "https", Host: "api.example.com", Method: tc.method, Path: tc.path})
		if d.Allowed != tc.allowed {
			t.Errorf("%s %s: allowed %v (%s), want %v", tc.method, tc.path, d.Allowed, d.Reason, tc.allowed)
		}
	}
}
