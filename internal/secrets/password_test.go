package secrets

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHashPasswordFormat(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q lacks the OWASP argon2id parameters", h)
	}
	p, err := parsePHC(h)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.salt) != argonSaltLen || len(p.key) != argonKeyLen {
		t.Errorf("salt %d bytes, key %d bytes; want %d, %d", len(p.salt), len(p.key), argonSaltLen, argonKeyLen)
	}
	if h2, _ := HashPassword("correct horse"); h2 == h {
		t.Error("two hashes of one password are identical; salt not random")
	}
}

func TestVerifyPassword(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		pw   string
		want bool
	}{
		{"correct horse", true},
		{"correct horse ", false},
		{"Correct horse", false},
		{"", false},
		{"correct hors", false},
	}
	for _, tt := range tests {
		t.Run(tt.pw, func(t *testing.T) {
			got, err := VerifyPassword(h, tt.pw)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("VerifyPassword(%q) = %v, want %v", tt.pw, got, tt.want)
			}
		})
	}
}

// TestVerifyPasswordWholeKey: the whole derived key is compared, so a stored hash that differs from the password's
// in any one byte, the last included, does not match. A wrong password differs in every byte with near certainty,
// which is why the table above cannot show this.
func TestVerifyPasswordWholeKey(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	p, err := parsePHC(h)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, len(p.key) / 2, len(p.key) - 1} {
		q := p
		q.key = slices.Clone(p.key)
		q.key[i] ^= 1
		if ok, err := VerifyPassword(q.encode(), "correct horse"); err != nil || ok {
			t.Errorf("a hash with byte %d of its key changed = %v, %v; want no match", i, ok, err)
		}
	}
}

// TestVerifyPasswordKnownVector pins the encoding and the algorithm with a
// hash made under other parameters than today's (m=64 KiB, t=1, p=1): they are
// read from the string, so parameter upgrades do not lock users out.
func TestVerifyPasswordKnownVector(t *testing.T) {
	const vector = "$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$Hgsbc6FDwl/qbUWxDrr+ZjetYYKE+7fDe5btmNdDfm0"
	tests := []struct {
		pw   string
		want bool
	}{
		{"pw", true},
		{"pW", false},
	}
	for _, tt := range tests {
		ok, err := VerifyPassword(vector, tt.pw)
		if err != nil || ok != tt.want {
			t.Errorf("VerifyPassword(vector, %q) = %v, %v; want %v, nil", tt.pw, ok, err, tt.want)
		}
	}
}

func TestParsePHCErrors(t *testing.T) {
	const salt, key = "MDEyMzQ1Njc4OWFiY2RlZg", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"no leading dollar", "argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"bcrypt", "$2b$10$abcdefghijklmnopqrstuv"},
		{"old version", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key},
		{"missing version", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key},
		{"params out of order", "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key},
		{"missing param", "$argon2id$v=19$m=64,t=1$" + salt + "$" + key},
		{"extra param", "$argon2id$v=19$m=64,t=1,p=1,k=2$" + salt + "$" + key},
		{"zero time", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key},
		{"negative", "$argon2id$v=19$m=-64,t=1,p=1$" + salt + "$" + key},
		{"plus sign", "$argon2id$v=19$m=+64,t=1,p=1$" + salt + "$" + key},
		{"leading zero", "$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key},
		{"huge memory", "$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key},
		{"overflow", "$argon2id$v=19$m=99999999999,t=1,p=1$" + salt + "$" + key},
		{"too many threads", "$argon2id$v=19$m=4096,t=1,p=255$" + salt + "$" + key},
		{"memory below lanes", "$argon2id$v=19$m=8,t=1,p=2$" + salt + "$" + key},
		{"padded salt", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key},
		{"short salt", "$argon2id$v=19$m=64,t=1,p=1$MDEy$" + key},
		{"short hash", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$MDEyMzQ1Njc"},
		{"empty hash", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$"},
		{"bad base64", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$!!!!"},
		{"trailing field", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parsePHC(tt.in); !errors.Is(err, ErrBadHash) {
				t.Errorf("parsePHC(%q) error = %v, want ErrBadHash", tt.in, err)
			}
			ok, err := VerifyPassword(tt.in, "pw")
			if ok || !errors.Is(err, ErrBadHash) {
				t.Errorf("VerifyPassword = %v, %v; want false, ErrBadHash", ok, err)
			}
		})
	}
}

func TestParsePHCRoundTrip(t *testing.T) {
	want := argonParams{memory: 19456, time: 2, threads: 1, salt: []byte("saltsaltsaltsalt"), key: []byte("keykeykeykeykeykeykeykeykeykeyke")}
	got, err := parsePHC(want.encode())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(argonParams{})); diff != "" {
		t.Errorf("parsePHC(encode(p)) mismatch (-want +got):\n%s", diff)
	}
}

func TestDummyVerifyUsesCurrentParameters(t *testing.T) {
	// DummyVerify only equalizes timing if it does the same work as a real
	// verification, so its hash must carry today's parameters.
	p, err := parsePHC(dummyHash())
	if err != nil {
		t.Fatal(err)
	}
	if p.memory != argonMemoryKiB || p.time != argonTime || p.threads != argonThreads || len(p.key) != argonKeyLen {
		t.Errorf("dummy hash parameters m=%d t=%d p=%d len=%d differ from HashPassword's", p.memory, p.time, p.threads, len(p.key))
	}
	DummyVerify("anything")
}

func FuzzVerifyPassword(f *testing.F) {
	f.Add("$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY", "pw")
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", "")
	f.Add("$argon2id$v=19$m=,t=,p=$$", "x")
	f.Add("$$$$$", "")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, encoded, pw string) {
		p, err := parsePHC(encoded)
		if err != nil {
			if !errors.Is(err, ErrBadHash) {
				t.Fatalf("parse error %v does not wrap ErrBadHash", err)
			}
			return
		}
		if p.encode() != encoded {
			t.Fatalf("accepted non-canonical hash %q (canonical %q)", encoded, p.encode())
		}
		// Keep the fuzzer fast: only run argon2 on cheap parameters.
		if p.memory*p.time > 1024 {
			return
		}
		if _, err := VerifyPassword(encoded, pw); err != nil {
			t.Fatalf("VerifyPassword on parsable hash: %v", err)
		}
	})
}
