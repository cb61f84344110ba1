// Package mfa holds Gatehouse's second factors: built-in TOTP (RFC 6238) codes and a RADIUS (RFC 2865) client that
// asks a RADIUS server to check a code. The TOTP functions are pure; replay protection needs the caller to keep the
// last accepted time step per user, which the store does atomically.
package mfa

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// TOTP parameters. They are the values every authenticator app supports, and the defaults of the otpauth URI
// format, so a URI that leaves them out means the same thing.
const (
	Period = 30 * time.Second
	Digits = 6
	// Skew is how many steps before or after the current one a code is still accepted, for clock drift and typing
	// time. RFC 6238 section 5.2 recommends at most one.
	Skew = 1
	// SecretBytes is the length of generated secrets: 160 bits, the HMAC-SHA1 block RFC 4226 recommends.
	SecretBytes = 20
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret returns a random TOTP secret.
func NewSecret() []byte {
	b := make([]byte, SecretBytes)
	rand.Read(b) // never fails (crypto/rand documents that it crashes the program instead)
	return b
}

// EncodeSecret is the secret in the unpadded base32 that authenticator apps take.
func EncodeSecret(secret []byte) string { return b32.EncodeToString(secret) }

// DecodeSecret reverses EncodeSecret; it accepts lower case, spaces and padding as people type them.
func DecodeSecret(s string) ([]byte, error) {
	s = strings.ToUpper(strings.TrimRight(strings.ReplaceAll(s, " ", ""), "="))
	b, err := b32.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("totp secret must be base32")
	}
	return b, nil
}

// Step is the RFC 6238 time step counter of t.
func Step(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// hotp is RFC 4226's HOTP with HMAC-SHA1: dynamic truncation of the MAC of the big-endian counter.
func hotp(secret []byte, counter int64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(counter))
	m := hmac.New(sha1.New, secret)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}

// Code is the TOTP code of secret at t.
func Code(secret []byte, t time.Time) string { return hotp(secret, Step(t), Digits) }

// NormalizeCode strips the spaces and dashes people put in codes ("123 456"); it returns "" for anything that is
// not then exactly Digits decimal digits.
func NormalizeCode(code string) string {
	code = strings.NewReplacer(" ", "", "-", "").Replace(strings.TrimSpace(code))
	if len(code) != Digits {
		return ""
	}
	for _, c := range code {
		if c < '0' || c > '9' {
			return ""
		}
	}
	return code
}

// Verify checks code against secret at now, within Skew steps, and returns the step it matched. A step at or
// before lastStep is refused: the caller records the returned step as the new lastStep, so a code (or an earlier
// one) cannot be used twice. Every candidate is compared in constant time.
func Verify(secret []byte, code string, now time.Time, lastStep int64) (step int64, ok bool) {
	code = NormalizeCode(code)
	if code == "" || len(secret) == 0 {
		return 0, false
	}
	cur := Step(now)
	for s := cur - Skew; s <= cur+Skew; s++ {
		if hmac.Equal([]byte(hotp(secret, s, Digits)), []byte(code)) && s > lastStep && !ok {
			step, ok = s, true
		}
	}
	return step, ok
}

// URI is the otpauth:// enrolment URI (the Key Uri Format that authenticator apps scan as a QR code) for account
// at issuer.
func URI(issuer, account string, secret []byte) string {
	v := url.Values{}
	v.Set("secret", EncodeSecret(secret))
	v.Set("issuer", issuer)
	v.Set("algorithm", "SHA1")
	v.Set("digits", fmt.Sprint(Digits))
	v.Set("period", fmt.Sprint(int(Period/time.Second)))
	label := url.PathEscape(issuer) + ":" + url.PathEscape(account)
	return "otpauth://totp/" + label + "?" + v.Encode()
}
