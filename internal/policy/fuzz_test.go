package policy

import (
	"net/netip"
	"strings"
	"testing"
)

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{
		"", "/", "/a/b", "/a/./b/../c", "/a/%2e%2E/b", "/..", "//a", "/a%2fb", "/a%5C", "/a;b",
		"/a%00", "/%41%7e", "/a%25", "/a%252e", "/a/..", "/a/.", "/é", "/a%zz", "/a/b/",
		"/api/%2e%2e/admin", "/ap%69/admin", "/a%25%32%65", "/.%2e/x", "/a/...",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizePath(in)
		if err != nil {
			if _, ok := err.(*PathError); !ok {
				t.Fatalf("NormalizePath(%q) error %T %v, want *PathError", in, err, err)
			}
			return
		}
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("NormalizePath(%q) = %q, not absolute", in, out)
		}
		for _, bad := range []string{"/../", "/./", "//", "%2F", "%2f", "%5C", "%5c", ";", "\\"} {
			if strings.Contains(out, bad) {
				t.Fatalf("NormalizePath(%q) = %q contains %q", in, out, bad)
			}
		}
		if strings.HasSuffix(out, "/..") || strings.HasSuffix(out, "/.") {
			t.Fatalf("NormalizePath(%q) = %q ends in a dot segment", in, out)
		}
		again, err := NormalizePath(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: NormalizePath(%q) = %q, NormalizePath(%q) = %q, %v", in, out, out, again, err)
		}
		decodedIn, ok := percentDecode(in)
		if !ok {
			t.Fatalf("NormalizePath accepted invalid escapes in %q", in)
		}
		decodedOut, ok := percentDecode(out)
		if !ok {
			t.Fatalf("NormalizePath(%q) = %q has invalid escapes", in, out)
		}
		if in == "" {
			decodedIn = "/"
		}
		if want := removeDotSegments(decodedIn); decodedOut != want {
			t.Fatalf("NormalizePath(%q) = %q decodes to %q, but resolving the decoded input gives %q", in, out, decodedOut, want)
		}
		if !strings.Contains(out, "*") {
			// A canonical path without wildcards is a valid literal pattern
			// that matches exactly itself.
			g, err := CompileGlob(out)
			if err != nil {
				t.Fatalf("CompileGlob(%q): %v", out, err)
			}
			if !g.Match(out) {
				t.Fatalf("literal pattern %q does not match itself", out)
			}
		}
	})
}

// percentDecode decodes every %XX escape, the way a target server would
// read the path.
func percentDecode(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", false
		}
		b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
		i += 2
	}
	return b.String(), true
}

// removeDotSegments is RFC 3986 section 5.2.4 written as the RFC states it,
// as an independent reference for NormalizePath.
func removeDotSegments(in string) string {
	var out string
	for in != "" {
		switch {
		case strings.HasPrefix(in, "../"):
			in = in[3:]
		case strings.HasPrefix(in, "./"):
			in = in[2:]
		case strings.HasPrefix(in, "/./"):
			in = in[2:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../"):
			in = in[3:]
			out = out[:max(strings.LastIndexByte(out, '/'), 0)]
		case in == "/..":
			in = "/"
			out = out[:max(strings.LastIndexByte(out, '/'), 0)]
		case in == "." || in == "..":
			in = ""
		default:
			start := 0
			if in[0] == '/' {
				start = 1
			}
			end := strings.IndexByte(in[start:], '/')
			if end < 0 {
				end = len(in)
			} else {
				end += start
			}
			out += in[:end]
			in = in[end:]
		}
	}
	return out
}

func FuzzGlobMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"**", "/"}, {"/api/**", "/api"}, {"/api/**/status", "/api/a/b/status"}, {"/a/*/c", "/a/b/c"},
		{"/a/**/b/**/c", "/a/x/b/y/b/c"}, {"/a%7Eb", "/a~b"}, {"/x/", "/x"}, {"*", "/a/"},
		{"/**/**/a", "/a/a/a"}, {"/a*", "/ab"}, {"/", "/"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, path string) {
		g, err := CompileGlob(pattern)
		if err != nil {
			return
		}
		g2, err := CompileGlob(g.String())
		if err != nil || g2.String() != g.String() {
			t.Fatalf("CompileGlob(%q).String() = %q does not recompile to itself: %q, %v", pattern, g, g2, err)
		}
		p, err := NormalizePath(path)
		if err != nil {
			return
		}
		if got, want := g.Match(p), refMatch(g.segs, strings.Split(p[1:], "/")); got != want {
			t.Fatalf("%q.Match(%q) = %v, reference matcher says %v", g, p, got, want)
		}
	})
}

// refMatch is a memoized recursive matcher used to check Glob.Match's
// backtracking against the definition.
func refMatch(pat []globSeg, path []string) bool {
	memo := map[[2]int]bool{}
	var m func(i, j int) bool
	m = func(i, j int) bool {
		k := [2]int{i, j}
		if v, ok := memo[k]; ok {
			return v
		}
		var r bool
		switch {
		case i == len(pat):
			r = j == len(path)
		case pat[i].kind == segAny:
			r = m(i+1, j) || j < len(path) && m(i, j+1)
		default:
			r = j < len(path) && pat[i].matches(path[j]) && m(i+1, j+1)
		}
		memo[k] = r
		return r
	}
	return m(0, 0)
}

func FuzzValidateEndpoint(f *testing.F) {
	f.Add("api.example.com", "https", "GET", "/api/**", "")
	f.Add("*.Example.com:8443", "*", "*", "**", "10.0.0.1:443")
	f.Add("[::1]", "HTTP", "delete", "/a%7e/*", "[::1]:80")
	f.Add("bad host", "ftp", "FETCH", "api", "*.x")
	f.Add("", "", "", "", "")
	f.Fuzz(func(t *testing.T, host, proto, method, path, nat string) {
		e := Endpoint{Host: host, Protocols: []string{proto}, Methods: []string{method}, Paths: []string{path}, NATTargetHost: nat}
		errs := ValidateEndpoint(e)
		_, err := CompileRules([]Endpoint{e}, []Endpoint{e})
		if (len(errs) == 0) != (err == nil) {
			t.Fatalf("ValidateEndpoint = %v but CompileRules error = %v", errs, err)
		}
		if len(errs) > 0 {
			return
		}
		n := NormalizeEndpoint(e)
		if errs := ValidateEndpoint(n); len(errs) > 0 {
			t.Fatalf("normalized endpoint %+v is invalid: %v", n, errs)
		}
		if n2 := NormalizeEndpoint(n); n2.Host != n.Host || n2.NATTargetHost != n.NATTargetHost ||
			n2.Methods[0] != n.Methods[0] || n2.Protocols[0] != n.Protocols[0] || n2.Paths[0] != n.Paths[0] {
			t.Fatalf("NormalizeEndpoint not idempotent: %+v then %+v", n, n2)
		}
	})
}

func FuzzParseAuthority(f *testing.F) {
	for _, s := range []string{"example.com", "Example.COM.:443", "[::1]:8443", "10.0.0.1", "127.1", "a_b", "[fe80::1%25x]", "x:0443"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		hp, err := ParseAuthority(in)
		if err != nil {
			return
		}
		again, err := ParseAuthority(hp.String())
		if err != nil || again != hp {
			t.Fatalf("ParseAuthority(%q) = %+v; String %q parses to %+v, %v", in, hp, hp.String(), again, err)
		}
		if hp.Host != strings.ToLower(hp.Host) || strings.HasSuffix(hp.Host, ".") {
			t.Fatalf("ParseAuthority(%q) host %q is not canonical", in, hp.Host)
		}
	})
}

func FuzzValidateCIDRList(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "10.0.0.1/8,::1", "::ffff:1.2.3.4", "fe80::1%eth0", "2001:db8::/32, 1.2.3.4", ""} {
		f.Add(s, "10.1.2.3")
	}
	f.Fuzz(func(t *testing.T, list, addr string) {
		items := strings.Split(list, ",")
		prefixes, errs := ValidateCIDRList(items)
		if len(prefixes)+len(errs) != len(items) {
			t.Fatalf("%d prefixes and %d errors for %d items", len(prefixes), len(errs), len(items))
		}
		for _, p := range prefixes {
			if !p.IsValid() || p.Masked() != p || p.Addr().Zone() != "" || p.Addr().Is4In6() {
				t.Fatalf("ValidateCIDRList(%q) returned non-canonical prefix %v", list, p)
			}
			if !AddrAllowed([]netip.Prefix{p}, p.Addr()) {
				t.Fatalf("prefix %v does not allow its own address", p)
			}
		}
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return
		}
		if got, want := AddrAllowed(prefixes, a), AddrAllowed(prefixes, a.Unmap()); got != want {
			t.Fatalf("AddrAllowed(%v) = %v but unmapped %v = %v", a, got, a.Unmap(), want)
		}
	})
}
