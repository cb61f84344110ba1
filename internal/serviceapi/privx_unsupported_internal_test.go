package serviceapi

import (
	"regexp"
	"strings"
	"testing"
)

func TestMatchSegments(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{"/a/b", "/a/b", true},
		{"/a/b", "/a/b/", false},
		{"/a/b", "/a/c", false},
		{"/a/{id}/c", "/a/x/c", true},
		{"/a/{id}/c", "/a//c", false},
		{"/a/{id}/c", "/a/x/c/d", false},
		{"/a/b/", "/a/b", true},
		{"/a/b/", "/a/b/", true},
		{"/a/b/", "/a/b/c/d", true},
		{"/a/b/", "/a/bc", false},
		{"/a/{id}/b/", "/a/x/b/y", true},
		{"/a/{id}/b/", "/a/x/c/y", false},
	} {
		if got := matchSegments(c.pattern, c.path); got != c.want {
			t.Errorf("matchSegments(%q, %q) = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
}

// patternRegexp is an independent statement of matchSegments' rule, as a regular expression.
func patternRegexp(pattern string) *regexp.Regexp {
	subtree := strings.HasSuffix(pattern, "/")
	var b strings.Builder
	b.WriteString("^")
	for i, seg := range strings.Split(strings.TrimSuffix(pattern, "/"), "/") {
		if i > 0 {
			b.WriteString("/")
		}
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			b.WriteString("[^/]+")
		} else {
			b.WriteString(regexp.QuoteMeta(seg))
		}
	}
	if subtree {
		b.WriteString("(/.*)?")
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// FuzzMatchSegments checks the matcher against the regular expression of every listed pattern.
func FuzzMatchSegments(f *testing.F) {
	for _, u := range privxUnsupported {
		f.Add(strings.ReplaceAll(u.pattern, "{id}", "x"))
	}
	f.Add("/role-store/api/v1/users//settings")
	f.Add("/settings/api/v1/settings/a/b/c")
	f.Fuzz(func(t *testing.T, path string) {
		for _, u := range privxUnsupported {
			if got, want := matchSegments(u.pattern, path), patternRegexp(u.pattern).MatchString(path); got != want {
				t.Fatalf("matchSegments(%q, %q) = %v, the rule says %v", u.pattern, path, got, want)
			}
		}
	})
}
