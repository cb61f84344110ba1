package mfa

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// rfcSecret is the SHA-1 seed of RFC 6238 appendix B and RFC 4226 appendix D: ASCII "12345678901234567890".
var rfcSecret = []byte("12345678901234567890")

func TestHOTPVectorsRFC4226(t *testing.T) {
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	for i, w := range want {
		if got := hotp(rfcSecret, int64(i), 6); got != w {
			t.Errorf("HOTP count %d = %s, want %s", i, got, w)
		}
	}
}

func TestTOTPVectorsRFC6238(t *testing.T) {
	// Appendix B, the SHA1 column, 8 digits.
	cases := []struct {
		unix int64
		want string
	}{
		{59, "94287082"}, {1111111109, "07081804"}, {1111111111, "14050471"},
		{1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000, "65353130"},
	}
	for _, c := range cases {
		if got := hotp(rfcSecret, Step(time.Unix(c.unix, 0)), 8); got != c.want {
			t.Errorf("TOTP at %d = %s, want %s", c.unix, got, c.want)
		}
	}
	// The six-digit code apps show is the last six digits of the same value.
	if got := Code(rfcSecret, time.Unix(59, 0)); got != "287082" {
		t.Errorf("six-digit code at 59 = %s, want 287082", got)
	}
}

func TestVerifyWindowAndReplay(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	cur := Step(now)
	code := func(d int64) string { return hotp(rfcSecret, cur+d, Digits) }
	cases := []struct {
		name     string
		code     string
		last     int64
		wantOK   bool
		wantStep int64
	}{
		{"current step", code(0), 0, true, cur},
		{"previous step (clock drift)", code(-1), 0, true, cur - 1},
		{"next step", code(1), 0, true, cur + 1},
		{"two steps old", code(-2), 0, false, 0},
		{"two steps ahead", code(2), 0, false, 0},
		{"replay of the step just used", code(0), cur, false, 0},
		{"an older code after a newer one", code(-1), cur, false, 0},
		{"newer code after an older one", code(1), cur, true, cur + 1},
		{"spaces are ignored", code(0)[:3] + " " + code(0)[3:], 0, true, cur},
		{"wrong code", "000000", 0, false, 0},
		{"too short", code(0)[:5], 0, false, 0},
		{"letters", "12a456", 0, false, 0},
		{"empty", "", 0, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			step, ok := Verify(rfcSecret, c.code, now, c.last)
			if ok != c.wantOK || step != c.wantStep {
				t.Fatalf("Verify(%q, last %d) = %d, %v; want %d, %v", c.code, c.last, step, ok, c.wantStep, c.wantOK)
			}
		})
	}
	if _, ok := Verify(nil, code(0), now, 0); ok {
		t.Fatal("an empty secret verified a code")
	}
}

func TestSecretAndURI(t *testing.T) {
	s := NewSecret()
	if len(s) != SecretBytes {
		t.Fatalf("secret has %d bytes", len(s))
	}
	enc := EncodeSecret(s)
	back, err := DecodeSecret(strings.ToLower(enc[:8]) + " " + enc[8:])
	if err != nil || string(back) != string(s) {
		t.Fatalf("DecodeSecret round trip: %v", err)
	}
	if _, err := DecodeSecret("not base32!"); err == nil {
		t.Fatal("bad base32 decoded")
	}
	u, err := url.Parse(URI("Gatehouse", "alice@example.com", s))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/Gatehouse:alice@example.com" ||
		q.Get("secret") != enc || q.Get("issuer") != "Gatehouse" || q.Get("digits") != "6" || q.Get("period") != "30" || q.Get("algorithm") != "SHA1" {
		t.Fatalf("unexpected URI %s", u)
	}
}

// FuzzVerify checks that no input makes Verify accept a code that is not one of the window's codes, or panic.
func FuzzVerify(f *testing.F) {
	for _, s := range []string{"287082", "287 082", "28708-2", "", "0000000", "١٢٣٤٥٦", "\x00\x00\x00\x00\x00\x00"} {
		f.Add(s, int64(0))
	}
	f.Fuzz(func(t *testing.T, code string, last int64) {
		now := time.Unix(59, 0)
		step, ok := Verify(rfcSecret, code, now, last)
		if !ok {
			return
		}
		n := NormalizeCode(code)
		if step <= last || step < Step(now)-Skew || step > Step(now)+Skew || hotp(rfcSecret, step, Digits) != n {
			t.Fatalf("Verify accepted %q at step %d (last %d)", code, step, last)
		}
	})
}

// TestVerifyRefusesWithoutASecret: with no secret every code could be computed by anyone (HMAC under an empty
// key), so a missing secret refuses even the code it would "match".
func TestVerifyRefusesWithoutASecret(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, secret := range [][]byte{nil, {}} {
		if _, ok := Verify(secret, Code(secret, now), now, 0); ok {
			t.Errorf("Verify with secret %q accepted the code computed for it", secret)
		}
	}
}

// TestNormalizeCode: spaces and dashes go, and anything but six digits is no code.
func TestNormalizeCode(t *testing.T) {
	for in, want := range map[string]string{
		"123456": "123456", "123 456": "123456", "123-456": "123456", " 1 2 3 4 5 6 ": "123456",
		"12345": "", "1234567": "", "12345a": "", "": "", "١٢٣٤٥٦": "",
	} {
		if got := NormalizeCode(in); got != want {
			t.Errorf("NormalizeCode(%q) = %q, want %q", in, got, want)
		}
	}
}
