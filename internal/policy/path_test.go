package policy

import (
	"errors"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		in     string
		want   string
		reason string // non-empty: a *PathError with this reason is expected
	}{
		{in: "", want: "/"},
		{in: "/", want: "/"},
		{in: "/api", want: "/api"},
		{in: "/api/", want: "/api/"},
		{in: "/api/v1/users", want: "/api/v1/users"},
		{in: "/Api/V1", want: "/Api/V1"},
		{in: "/a-b.c_d~e", want: "/a-b.c_d~e"},
		{in: "/!$&'()*+,=:@", want: "/!$&'()*+,=:@"},
		{in: "/%41%62%7e%2D%2e%5F", want: "/Ab~-._"},
		{in: "/a%7Eb", want: "/a~b"},
		{in: "/a%20b", want: "/a%20b"},
		{in: "/a%2bb", want: "/a%2Bb"},
		{in: "/a%3bb", want: "/a%3Bb"},
		{in: "/a%3fb%23c", want: "/a%3Fb%23c"},
		{in: "/%c3%a9t%C3%A9", want: "/%C3%A9t%C3%A9"},
		{in: "/a%25", want: "/a%25"},
		{in: "/a%25zz", want: "/a%25zz"},
		{in: "/.", want: "/"},
		{in: "/./", want: "/"},
		{in: "/./a", want: "/a"},
		{in: "/a/.", want: "/a/"},
		{in: "/a/./b", want: "/a/b"},
		{in: "/a/..", want: "/"},
		{in: "/a/../", want: "/"},
		{in: "/a/b/../c", want: "/a/c"},
		{in: "/a/b/../../c", want: "/c"},
		{in: "/a/%2e%2E/c", want: "/c"},
		{in: "/a/%2e/c", want: "/a/c"},
		{in: "/a/.%2e/c", want: "/c"},
		{in: "/a/.../c", reason: reasonDotsAndSpaces},
		{in: "/a/.%20/c", reason: reasonDotsAndSpaces},
		{in: "/a/%20/c", reason: reasonDotsAndSpaces},
		{in: "/a/%C2%A0/c", reason: reasonDotsAndSpaces},
		{in: "/a/b./c", want: "/a/b./c"},
		{in: "/a/b%20/c", want: "/a/b%20/c"},
		{in: "/api/%C0%AE%C0%AE/admin", reason: reasonBadUTF8},
		{in: "/api/%C0%AF", reason: reasonBadUTF8},
		{in: "/api/%E0%80%AE", reason: reasonBadUTF8},
		{in: "/api/%ED%A0%80", reason: reasonBadUTF8},
		{in: "/api/%FF", reason: reasonBadUTF8},
		{in: "/api/%C3", reason: reasonBadUTF8},
		{in: "/api%EF%BC%8Fadmin", reason: reasonLookalike},
		{in: "/api/%EF%BC%BCadmin", reason: reasonLookalike},
		{in: "/api/%E2%88%95admin", reason: reasonLookalike},
		{in: "/api/%E2%81%84admin", reason: reasonLookalike},
		{in: "/api/%E2%80%A4%E2%80%A4/admin", reason: reasonLookalike},
		{in: "/api/%EF%BC%8E%EF%BC%8E/admin", reason: reasonLookalike},
		{in: "/api/%C2%A5admin", reason: reasonLookalike},
		{in: "/api/%EF%BD%A1%EF%BD%A1/admin", reason: reasonLookalike},
		{in: "/api/%EF%B8%92", reason: reasonLookalike},
		{in: "/api/%EF%B9%A8admin", reason: reasonLookalike},
		{in: "/api/%E2%80%8Badmin", reason: reasonControl},
		{in: "/api/%C2%85", reason: reasonControl},
		{in: "/api/%EF%BD%81dmin", want: "/api/%EF%BD%81dmin"},
		{in: "/a/..b/c", want: "/a/..b/c"},
		{in: "/a/.b/", want: "/a/.b/"},
		{in: "/a/b/..", want: "/a/"},

		{in: "api", reason: reasonNotAbsolute},
		{in: "*", reason: reasonNotAbsolute},
		{in: "http://x/a", reason: reasonNotAbsolute},
		{in: "/..", reason: reasonAboveRoot},
		{in: "/../a", reason: reasonAboveRoot},
		{in: "/a/../..", reason: reasonAboveRoot},
		{in: "/a/../../b", reason: reasonAboveRoot},
		{in: "/%2e%2e/a", reason: reasonAboveRoot},
		{in: "//", reason: reasonEmptySegment},
		{in: "//a", reason: reasonEmptySegment},
		{in: "/a//b", reason: reasonEmptySegment},
		{in: "/a/.//b", reason: reasonEmptySegment},
		{in: "/a%2fb", reason: reasonEncodedSlash},
		{in: "/a%2Fb", reason: reasonEncodedSlash},
		{in: "/a%5cb", reason: reasonEncodedBSlash},
		{in: "/a%5Cb", reason: reasonEncodedBSlash},
		{in: "/a\\b", reason: reasonBackslash},
		{in: "/a;b", reason: reasonParam},
		{in: "/a;x=1/b", reason: reasonParam},
		{in: "/a?b", reason: reasonQuery},
		{in: "/a#b", reason: reasonQuery},
		{in: "/a%00", reason: reasonControl},
		{in: "/a%0a", reason: reasonControl},
		{in: "/a%7F", reason: reasonControl},
		{in: "/a\x00", reason: reasonControl},
		{in: "/a\r\n", reason: reasonControl},
		{in: "/a\x7f", reason: reasonControl},
		{in: "/é", reason: reasonNonASCII},
		{in: "/a\xff", reason: reasonNonASCII},
		{in: "/a b", reason: reasonBadChar},
		{in: "/a{b}", reason: reasonBadChar},
		{in: "/a|b", reason: reasonBadChar},
		{in: "/[::1]", reason: reasonBadChar},
		{in: "/a%", reason: reasonBadEscape},
		{in: "/a%4", reason: reasonBadEscape},
		{in: "/a%zz", reason: reasonBadEscape},
		{in: "/a%4g", reason: reasonBadEscape},
		{in: "/a%%41", reason: reasonBadEscape},
		{in: "/a%252e", reason: reasonDoubleEncoding},
		{in: "/a%252F", reason: reasonDoubleEncoding},
		{in: "/a%25%32%65", reason: reasonDoubleEncoding},
		{in: "/a%2525", reason: reasonDoubleEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizePath(tt.in)
			if tt.reason != "" {
				var pe *PathError
				if !errors.As(err, &pe) {
					t.Fatalf("NormalizePath(%q) = %q, %v; want PathError %q", tt.in, got, err, tt.reason)
				}
				if pe.Reason != tt.reason {
					t.Errorf("NormalizePath(%q) reason = %q, want %q", tt.in, pe.Reason, tt.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("NormalizePath(%q) error: %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("NormalizePath(%q) = %q, want %q", tt.in, got, tt.want)
			}
			again, err := NormalizePath(got)
			if err != nil || again != got {
				t.Errorf("NormalizePath(%q) = %q, %v; not idempotent", got, again, err)
			}
		})
	}
}

func TestPathErrorMessage(t *testing.T) {
	_, err := NormalizePath("/a%2fb")
	if got, want := err.Error(), "normalize path: encoded slash in path"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
