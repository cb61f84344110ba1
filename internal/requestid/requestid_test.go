package requestid

import (
	"context"
	"strings"
	"testing"
)

func TestFromHeader(t *testing.T) {
	for _, tc := range []struct {
		in   string
		keep bool
	}{
		{"3f2c9a7e-1b2d-4c5e-8f90-a1b2c3d4e5f6", true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"lb.node-7:1234", true},
		{"", false},
		{strings.Repeat("a", 129), false},
		{"evil\nlevel=ERROR msg=forged", false},
		{"<script>", false},
		{"ünïcode", false},
		{"a b", false},
	} {
		got := FromHeader(tc.in)
		if kept := got == tc.in; kept != tc.keep {
			t.Errorf("FromHeader(%q) = %q; kept %v, want %v", tc.in, got, kept, tc.keep)
		}
		if !Sane(got) {
			t.Errorf("FromHeader(%q) = %q is not sane", tc.in, got)
		}
	}
	if a, b := New(), New(); a == b || len(a) != 32 {
		t.Errorf("New: %q %q", a, b)
	}
	if From(With(context.Background(), "x")) != "x" || From(context.Background()) != "" {
		t.Error("context round trip")
	}
}

func FuzzSane(f *testing.F) {
	for _, s := range []string{"abc", "a\nb", "", "3f2c9a7e-1b2d", "\x00", strings.Repeat("z", 128)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := FromHeader(s)
		if !Sane(got) {
			t.Fatalf("FromHeader(%q) = %q, not sane", s, got)
		}
		if strings.ContainsAny(got, "\r\n\"<> ") {
			t.Fatalf("FromHeader(%q) = %q keeps a dangerous character", s, got)
		}
	})
}
