package secrets

import (
	"encoding/base64"
	"testing"
)

func TestRandomToken(t *testing.T) {
	for _, n := range []int{1, 16, 32, 33} {
		tok := RandomToken(n)
		b, err := base64.RawURLEncoding.Strict().DecodeString(tok)
		if err != nil {
			t.Fatalf("RandomToken(%d) = %q, not unpadded base64url: %v", n, tok, err)
		}
		if len(b) != n {
			t.Errorf("RandomToken(%d) decodes to %d bytes", n, len(b))
		}
	}
	seen := make(map[string]bool)
	for range 100 {
		tok := RandomToken(16)
		if seen[tok] {
			t.Fatalf("RandomToken repeated %q", tok)
		}
		seen[tok] = true
	}
	defer func() {
		if recover() == nil {
			t.Error("RandomToken(0) did not panic")
		}
	}()
	RandomToken(0)
}

func TestEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"", "", true},
		{"secret", "secret", true},
		{"secret", "Secret", false},
		{"secret", "secret2", false},
		{"secret", "", false},
		{"a\x00", "a", false},
	}
	for _, tt := range tests {
		t.Run(tt.a+"|"+tt.b, func(t *testing.T) {
			if got := Equal(tt.a, tt.b); got != tt.want {
				t.Errorf("Equal(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
}
