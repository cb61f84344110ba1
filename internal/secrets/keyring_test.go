package secrets

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
)

func testKeyring(t testing.TB, fill byte) *Keyring {
	t.Helper()
	k, err := NewKeyring(bytes.Repeat([]byte{fill}, MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewKeyringRejectsBadLength(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := NewKeyring(make([]byte, n)); err == nil {
			t.Errorf("NewKeyring(%d bytes) = nil error, want error", n)
		}
	}
}

func TestKeyIDFormat(t *testing.T) {
	a, b := testKeyring(t, 1), testKeyring(t, 2)
	if len(a.KeyID()) != 8 || strings.Trim(a.KeyID(), "0123456789abcdef") != "" {
		t.Errorf("KeyID() = %q, want 8 lower-case hex digits", a.KeyID())
	}
	if a.KeyID() == b.KeyID() {
		t.Errorf("different master keys share key id %q", a.KeyID())
	}
	if again := testKeyring(t, 1); again.KeyID() != a.KeyID() {
		t.Errorf("key id not stable: %q then %q", a.KeyID(), again.KeyID())
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	k := testKeyring(t, 1)
	tests := []struct {
		name       string
		plain, aad []byte
	}{
		{"empty", nil, nil},
		{"text", []byte("s3cr3t-token"), []byte("target:1:credential")},
		{"binary", []byte{0, 1, 2, 0xff, ':'}, []byte("a:b")},
		{"large", bytes.Repeat([]byte("x"), 1<<16), []byte("big")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := k.Seal(tt.plain, tt.aad)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(sealed, []byte("v1:"+k.KeyID()+":")) {
				t.Errorf("sealed value %.30q lacks the v1:<keyid>: prefix", sealed)
			}
			if len(tt.plain) > 3 && bytes.Contains(sealed, tt.plain) {
				t.Error("sealed value contains the plaintext")
			}
			got, err := k.Open(sealed, tt.aad)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.plain) {
				t.Errorf("Open = %q, want %q", got, tt.plain)
			}
		})
	}
}

func TestSealUsesFreshNonce(t *testing.T) {
	k := testKeyring(t, 1)
	a, _ := k.Seal([]byte("same"), []byte("aad"))
	b, _ := k.Seal([]byte("same"), []byte("aad"))
	if bytes.Equal(a, b) {
		t.Error("two seals of the same plaintext are identical; nonce reused")
	}
}

func TestSealStringRoundTrip(t *testing.T) {
	k := testKeyring(t, 1)
	s, err := k.SealString("hunter2", "user:7:password")
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.OpenString(s, "user:7:password")
	if err != nil || got != "hunter2" {
		t.Errorf("OpenString = %q, %v; want hunter2, nil", got, err)
	}
}

func TestOpenRejects(t *testing.T) {
	k := testKeyring(t, 1)
	sealed, err := k.Seal([]byte("secret"), []byte("target:1:cred"))
	if err != nil {
		t.Fatal(err)
	}
	body := string(sealed[len("v1:")+9:])
	raw, _ := base64.StdEncoding.DecodeString(body)
	flipped := bytes.Clone(raw)
	flipped[len(flipped)-1] ^= 1
	flippedNonce := bytes.Clone(raw)
	flippedNonce[0] ^= 1
	reencode := func(b []byte) []byte {
		return []byte("v1:" + k.KeyID() + ":" + base64.StdEncoding.EncodeToString(b))
	}

	tests := []struct {
		name   string
		keyr   *Keyring
		sealed []byte
		aad    string
		want   error
	}{
		{"wrong aad", k, sealed, "target:2:cred", ErrDecrypt},
		{"empty aad", k, sealed, "", ErrDecrypt},
		{"wrong key", testKeyring(t, 2), sealed, "target:1:cred", ErrUnknownKey},
		{"forged key id", k, []byte("v1:00000000:" + body), "target:1:cred", ErrUnknownKey},
		{"tampered tag", k, reencode(flipped), "target:1:cred", ErrDecrypt},
		{"tampered nonce", k, reencode(flippedNonce), "target:1:cred", ErrDecrypt},
		{"truncated", k, reencode(raw[:20]), "target:1:cred", ErrDecrypt},
		{"other version", k, append([]byte("v2"), sealed[2:]...), "target:1:cred", ErrDecrypt},
		{"no separators", k, []byte("v1"), "", ErrDecrypt},
		{"bad base64", k, []byte("v1:" + k.KeyID() + ":!!!!"), "", ErrDecrypt},
		{"empty", k, nil, "", ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.keyr.Open(tt.sealed, []byte(tt.aad))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open = %q, %v; want error %v", got, err, tt.want)
			}
			if got != nil {
				t.Errorf("Open returned plaintext %q alongside error", got)
			}
		})
	}
}

func TestIndex(t *testing.T) {
	k := testKeyring(t, 1)
	a := k.Index("proxy-credential", []byte("tok"))
	if len(a) != 64 {
		t.Errorf("Index length = %d, want 64 hex digits", len(a))
	}
	if b := k.Index("proxy-credential", []byte("tok")); a != b {
		t.Error("Index not deterministic")
	}
	for name, other := range map[string]string{
		"other secret":  k.Index("proxy-credential", []byte("tok2")),
		"other purpose": k.Index("api-client", []byte("tok")),
		"other key":     testKeyring(t, 2).Index("proxy-credential", []byte("tok")),
	} {
		if other == a {
			t.Errorf("%s gives the same index", name)
		}
	}
}

// TestIndexIsKeyedHash pins the index to HMAC-SHA256 under the HKDF-derived
// purpose key, computed here from scratch: indexes are stored in databases,
// so reusing pooled HMAC states must not change a single one of them, and
// concurrent callers must not see each other's state.
func TestIndexIsKeyedHash(t *testing.T) {
	master := bytes.Repeat([]byte{1}, MasterKeySize)
	k := testKeyring(t, 1)
	want := func(purpose, secret string) string {
		base, err := hkdf.Key(sha256.New, master, nil, infoIndex, 32)
		if err != nil {
			t.Fatal(err)
		}
		key, err := hkdf.Expand(sha256.New, base, purpose, 32)
		if err != nil {
			t.Fatal(err)
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte(secret))
		return hex.EncodeToString(m.Sum(nil))
	}
	var cases [][2]string
	for i := range 40 {
		cases = append(cases, [2]string{[]string{"proxy-credential", "api-client", "refresh-token"}[i%3],
			strings.Repeat("s", i*7)})
	}
	expected := make([]string, len(cases))
	for i, c := range cases {
		expected[i] = want(c[0], c[1])
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 50 {
				i := (g*13 + n) % len(cases)
				if got := k.Index(cases[i][0], []byte(cases[i][1])); got != expected[i] {
					t.Errorf("Index(%q, %d bytes) = %s, want %s", cases[i][0], len(cases[i][1]), got, expected[i])
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestSigningKey(t *testing.T) {
	k := testKeyring(t, 1)
	a := k.SigningKey("access-token")
	if len(a) != 32 {
		t.Fatalf("SigningKey length = %d, want 32", len(a))
	}
	if !bytes.Equal(a, k.SigningKey("access-token")) {
		t.Error("SigningKey not deterministic")
	}
	if bytes.Equal(a, k.SigningKey("trail")) {
		t.Error("different purposes give the same key")
	}
	if bytes.Equal(a, testKeyring(t, 2).SigningKey("access-token")) {
		t.Error("different master keys give the same signing key")
	}
}

func FuzzOpen(f *testing.F) {
	k := testKeyring(f, 1)
	good, _ := k.Seal([]byte("secret"), []byte("aad"))
	f.Add(good, []byte("aad"))
	f.Add([]byte("v1:"+k.KeyID()+":"), []byte(""))
	f.Add([]byte("v1:"+k.KeyID()+":AAAA"), []byte(""))
	f.Add([]byte("v1::"), []byte("x"))
	f.Add([]byte(":::"), []byte(""))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, sealed, aad []byte) {
		plain, err := k.Open(sealed, aad)
		if err == nil {
			// Anything that opens must be something we sealed: re-sealing
			// and opening round-trips.
			again, err := k.Seal(plain, aad)
			if err != nil {
				t.Fatal(err)
			}
			if p2, err := k.Open(again, aad); err != nil || !bytes.Equal(p2, plain) {
				t.Fatalf("round trip after fuzz open failed: %v", err)
			}
		} else if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("Open error %v wraps neither ErrDecrypt nor ErrUnknownKey", err)
		}
	})
}
