package console

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseServices(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []hostService
		err  string
	}{
		{"", []hostService{}, ""},
		{"https", []hostService{{Service: "HTTPS"}}, ""},
		{"HTTPS 8443\n\nSSH 10.0.0.5 2222\r\nrdp db.internal", []hostService{{Service: "HTTPS", Port: 8443}, {Service: "SSH", Address: "10.0.0.5", Port: 2222}, {Service: "RDP", Address: "db.internal"}}, ""},
		{"HTTPS a b", nil, `"b" is not a port`},
		{"HTTPS a 1 2", nil, "SERVICE [address] [port]"},
		{"HTTPS 0", nil, "out of range"},
		{"HTTPS 10.0.0.5 65536", nil, "out of range"},
	} {
		got, err := parseServices(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseServices(%q) error = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || !cmp.Equal(got, c.want) {
			t.Errorf("parseServices(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

// FuzzParseServices: the parser never panics, and what it accepts it gives back unchanged when formatted and read
// again.
func FuzzParseServices(f *testing.F) {
	for _, s := range []string{"HTTPS 8443", "SSH 10.0.0.5 22\nRDP", "x 1 2 3", "HTTPS [::1] 443", "\n\n", "a 99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := parseServices(in)
		if err != nil {
			return
		}
		var lines []string
		for _, s := range got {
			lines = append(lines, formatService(s))
		}
		again, err := parseServices(strings.Join(lines, "\n"))
		if err != nil || !cmp.Equal(again, got) {
			t.Fatalf("round trip of %q: %+v then %+v, %v", in, got, again, err)
		}
	})
}

func TestPolicyPath(t *testing.T) {
	const lists = "/api/configuration/policies/userlists"
	for _, c := range []struct {
		in      string
		key     string
		allowed bool
	}{
		{lists, "", true},
		{lists + "/-4", "-4", true},
		{lists + "/4f1c", "4f1c", true},
		{lists + "/", "", false},
		{lists + "/a/b", "", false},
		{lists + "/..", "", false},
		{lists + "/%2e%2e", "", false},
		{lists + "/a?x=1", "", false},
		{lists + "x", "", false},
		{"/api/configuration/aaa/settings", "", false},
		{"/local-user-store/api/v1/users", "", false},
	} {
		_, key, _, ok := policyPath(c.in)
		if ok != c.allowed || key != c.key {
			t.Errorf("policyPath(%q) = %q, %v; want %q, %v", c.in, key, ok, c.key, c.allowed)
		}
	}
}

// FuzzPolicyPath: whatever the form sends, an accepted path is one of the policy lists or one key below it.
func FuzzPolicyPath(f *testing.F) {
	for _, s := range []string{"/api/configuration/http/connections/-1", "/api/configuration/policies/userlists/../x", "/api/x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		kind, key, _, ok := policyPath(in)
		if !ok {
			return
		}
		want := kind
		if key != "" {
			want += "/" + key
		}
		if want != in || strings.ContainsAny(key, "/?#%\\") {
			t.Fatalf("policyPath(%q) accepted kind %q key %q", in, kind, key)
		}
	})
}
