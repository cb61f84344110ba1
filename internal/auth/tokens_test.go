package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestTokenVerify: an issued token verifies until it expires; every way of making one without the key, or of
// bending a real one, is refused with ErrInvalidToken.
func TestTokenVerify(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	iss := &TokenIssuer{key: key, TTL: 10 * time.Minute, Now: func() time.Time { return now }}
	tok, ttl, err := iss.Issue(KindUser, "u-1")
	if err != nil || ttl != 10*time.Minute {
		t.Fatalf("Issue = %v, %v", ttl, err)
	}
	c, err := iss.Verify(tok)
	if err != nil || c.Subject != "u-1" || c.Kind != KindUser || c.Expires != now.Add(10*time.Minute).Unix() || c.ID == "" {
		t.Fatalf("Verify of a fresh token = %+v, %v", c, err)
	}

	// signed makes a token for claims with the issuer's key, as only Gatehouse can.
	signed := func(c Claims) string {
		body, _ := json.Marshal(c)
		p := base64.RawURLEncoding.EncodeToString(body)
		m := hmac.New(sha256.New, key)
		m.Write([]byte(tokenPrefix + p))
		return tokenPrefix + p + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	// The construction itself (so that the refusals below are refusals of what they name, not of a wrong MAC).
	if c, err := iss.Verify(signed(Claims{Kind: KindUser, Subject: "u-2", Expires: now.Add(time.Hour).Unix()})); err != nil || c.Subject != "u-2" {
		t.Fatalf("Verify of a token signed as the issuer signs = %+v, %v", c, err)
	}
	payload, sig, _ := strings.Cut(strings.TrimPrefix(tok, tokenPrefix), ".")
	other := &TokenIssuer{key: []byte(strings.Repeat("o", 32)), Now: iss.Now}
	forged, _, _ := other.Issue(KindUser, "u-1")
	admin, _ := json.Marshal(Claims{Kind: KindUser, Subject: "admin", Expires: now.Add(time.Hour).Unix()})
	for _, tc := range []struct{ name, token string }{
		{"no prefix", strings.TrimPrefix(tok, tokenPrefix)},
		{"another prefix", "gha2." + payload + "." + sig},
		{"no signature", tokenPrefix + payload},
		{"empty signature", tokenPrefix + payload + "."},
		{"another key", forged},
		{"payload swapped under the signature", tokenPrefix + base64.RawURLEncoding.EncodeToString(admin) + "." + sig},
		{"signature cut short", tok[:len(tok)-1]},
		{"payload not base64", signed(Claims{}) + "!"},
		{"no subject", signed(Claims{Kind: KindUser, Expires: now.Add(time.Hour).Unix()})},
		{"unknown kind", signed(Claims{Kind: "root", Subject: "u-1", Expires: now.Add(time.Hour).Unix()})},
		{"expired", signed(Claims{Kind: KindUser, Subject: "u-1", Expires: now.Unix()})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := iss.Verify(tc.token); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %+v, %v; want ErrInvalidToken", c, err)
			}
		})
	}
	// The same token, once its time has passed.
	now = now.Add(10 * time.Minute)
	if _, err := iss.Verify(tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Verify at expiry = %v, want ErrInvalidToken", err)
	}
	// An API client's token verifies as one.
	now = now.Add(-10 * time.Minute)
	api, _, _ := iss.Issue(KindAPIClient, "c-1")
	if c, err := iss.Verify(api); err != nil || c.Kind != KindAPIClient {
		t.Fatalf("API client token = %+v, %v", c, err)
	}
}
