package httpauth

import (
	"strings"
	"testing"
)

func TestIsToken(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"GET", true}, {"Bearer", true}, {"x-api-key", true}, {"!#$%&'*+-.^_`|~09azAZ", true},
		{"", false}, {"a b", false}, {"a:b", false}, {"a/b", false}, {"a\"b", false}, {"a\x7f", false},
		{"caf\xc3\xa9", false}, {"a\tb", false}, {"(x)", false}, {"a,b", false}, {"a=b", false},
	} {
		if got := IsToken(tc.s); got != tc.want {
			t.Errorf("IsToken(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}

func TestCredentials(t *testing.T) {
	for _, tc := range []struct {
		v, scheme, want string
		ok              bool
	}{
		{"Bearer abc", "Bearer", "abc", true},
		{"bearer abc", "Bearer", "abc", true},
		{"BEARER  abc  ", "Bearer", "abc", true},
		{"Bearer", "Bearer", "", false},
		{"Bearer ", "Bearer", "", false},
		{"Bearer   ", "Bearer", "", false},
		{"Bearerabc", "Bearer", "", false},
		{"Basic abc", "Bearer", "", false},
		{"Bearer\tabc", "Bearer", "", false},
		{"", "Bearer", "", false},
	} {
		got, ok := Credentials(tc.v, tc.scheme)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Credentials(%q, %q) = %q, %v; want %q, %v", tc.v, tc.scheme, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzCredentials holds Credentials to a plain reading of the rule: the scheme in any case, one space, then
// credentials that are not empty once trimmed.
func FuzzCredentials(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  x ", "Bearer", "Basic dXNlcjpwdw==", "Bearer\t x", "Bearerx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, ok := Credentials(v, "Bearer")
		scheme, rest, found := strings.Cut(v, " ")
		want := strings.Trim(rest, " \t")
		wantOK := found && strings.EqualFold(scheme, "Bearer") && want != ""
		if ok != wantOK || (ok && got != want) {
			t.Fatalf("Credentials(%q) = %q, %v; want %q, %v", v, got, ok, want, wantOK)
		}
	})
}
