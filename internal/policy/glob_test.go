package policy

import (
	"strings"
	"testing"
)

func TestCompileGlob(t *testing.T) {
	tests := []struct {
		pattern string
		want    string // canonical String(); empty means an error is expected
		errHas  string
	}{
		{pattern: "**", want: "/**"},
		{pattern: "*", want: "/*"},
		{pattern: "/", want: "/"},
		{pattern: "/**", want: "/**"},
		{pattern: "/api/**", want: "/api/**"},
		{pattern: "/api/*/status", want: "/api/*/status"},
		{pattern: "/api/**/**/x", want: "/api/**/x"},
		{pattern: "/a%7Eb", want: "/a~b"},
		{pattern: "/a%7eb/%41", want: "/a~b/A"},
		{pattern: "/a%2bb", want: "/a%2Bb"},
		{pattern: "/api/x/", want: "/api/x/"},
		{pattern: "/**/", want: "/**/"},

		{pattern: "", errHas: "empty pattern"},
		{pattern: "api/**", errHas: "must start with /"},
		{pattern: "***", errHas: "must start with /"},
		{pattern: "/api/v*", errHas: "whole segment"},
		{pattern: "/api/***", errHas: "whole segment"},
		{pattern: "/a*b", errHas: "whole segment"},
		{pattern: "//a", errHas: "empty path segment"},
		{pattern: "/a//b", errHas: "empty path segment"},
		{pattern: "/a/../b", errHas: "dot segments"},
		{pattern: "/a/./b", errHas: "dot segments"},
		{pattern: "/a/%2e%2e/b", errHas: "dot segments"},
		{pattern: "/a%2fb", errHas: "encoded slash"},
		{pattern: "/a;b", errHas: "path parameters"},
		{pattern: "/a b", errHas: "percent-encoded"},
		{pattern: "/a%zz", errHas: "invalid percent-encoding"},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			g, err := CompileGlob(tt.pattern)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("CompileGlob(%q) = %q, %v; want error containing %q", tt.pattern, g, err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("CompileGlob(%q): %v", tt.pattern, err)
			}
			if g.String() != tt.want {
				t.Errorf("CompileGlob(%q).String() = %q, want %q", tt.pattern, g, tt.want)
			}
			again, err := CompileGlob(g.String())
			if err != nil || again.String() != g.String() {
				t.Errorf("recompiling %q gave %q, %v", g, again, err)
			}
		})
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern string
		yes     []string
		no      []string
	}{
		{
			pattern: "**",
			yes:     []string{"/", "/a", "/a/", "/a/b/c", "/a/b/c/"},
			no:      []string{"", "a", "*"},
		},
		{
			pattern: "*",
			yes:     []string{"/a", "/xyz"},
			no:      []string{"/", "/a/", "/a/b"},
		},
		{
			pattern: "/",
			yes:     []string{"/"},
			no:      []string{"/a", ""},
		},
		{
			pattern: "/api/**",
			yes:     []string{"/api", "/api/", "/api/x", "/api/x/y/z"},
			no:      []string{"/", "/apix", "/ap", "/API", "/v1/api", "/admin"},
		},
		{
			pattern: "/api/*",
			yes:     []string{"/api/x", "/api/..b"},
			no:      []string{"/api", "/api/", "/api/x/", "/api/x/y"},
		},
		{
			pattern: "/api/x",
			yes:     []string{"/api/x"},
			no:      []string{"/api/x/", "/api/X", "/api/x/y", "/api"},
		},
		{
			pattern: "/api/x/",
			yes:     []string{"/api/x/"},
			no:      []string{"/api/x", "/api/x/y"},
		},
		{
			pattern: "/api/**/status",
			yes:     []string{"/api/status", "/api/a/status", "/api/a/b/c/status", "/api/status/status"},
			no:      []string{"/api/status/", "/api/a/status/x", "/status", "/api"},
		},
		{
			pattern: "/**/status",
			yes:     []string{"/status", "/a/status", "/a/b/status"},
			no:      []string{"/", "/status/", "/statuses"},
		},
		{
			pattern: "/api/*/users/**",
			yes:     []string{"/api/v1/users", "/api/v2/users/7", "/api/v2/users/7/keys"},
			no:      []string{"/api/users", "/api/v1/v2/users", "/api/v1/user"},
		},
		{
			pattern: "/a/**/b/**/c",
			yes:     []string{"/a/b/c", "/a/x/b/y/c", "/a/b/b/c", "/a/x/y/b/c"},
			no:      []string{"/a/c", "/a/b", "/a/x/c", "/a/b/c/d"},
		},
		{
			pattern: "/a%7Eb",
			yes:     []string{"/a~b"},
			no:      []string{"/a%7Eb", "/a%7eb", "/ab"},
		},
		{
			pattern: "/files/%2A",
			yes:     []string{"/files/%2A"},
			no:      []string{"/files/*", "/files/x"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			g, err := CompileGlob(tt.pattern)
			if err != nil {
				t.Fatalf("CompileGlob(%q): %v", tt.pattern, err)
			}
			for _, p := range tt.yes {
				if !g.Match(p) {
					t.Errorf("%q.Match(%q) = false, want true", tt.pattern, p)
				}
			}
			for _, p := range tt.no {
				if g.Match(p) {
					t.Errorf("%q.Match(%q) = true, want false", tt.pattern, p)
				}
			}
		})
	}
}

func TestZeroGlobMatchesNothing(t *testing.T) {
	var g Glob
	for _, p := range []string{"", "/", "/a"} {
		if g.Match(p) {
			t.Errorf("zero Glob matched %q", p)
		}
	}
}
