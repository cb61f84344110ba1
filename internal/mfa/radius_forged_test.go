package mfa

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2869"
)

// answering runs a RADIUS server on loopback that accepts every request, its answer made by sign: the shared
// secret is right, so the answer's Response Authenticator verifies; only its Message-Authenticator differs.
func answering(t *testing.T, secret string, sign func(resp *radius.Packet, reqAuth [16]byte)) (string, int) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &radius.PacketServer{SecretSource: radius.StaticSecretSource([]byte(secret)),
		Handler: radius.HandlerFunc(func(w radius.ResponseWriter, r *radius.Request) {
			resp := r.Response(radius.CodeAccessAccept)
			sign(resp, r.Authenticator)
			w.Write(resp)
		})}
	go srv.Serve(pc)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	host, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	p, _ := strconv.Atoi(port)
	return host, p
}

// TestRADIUSRequireMessageAuthenticator: an answer without a Message-Authenticator is an accept only when the
// source does not require one.
func TestRADIUSRequireMessageAuthenticator(t *testing.T) {
	const secret = "s3cret-shared"
	addr, port := answering(t, secret, func(*radius.Packet, [16]byte) {})
	r := &RADIUS{Address: addr, Port: port, Secret: secret, Timeout: 3 * time.Second}
	if err := r.Check(context.Background(), "bob", "424242"); err != nil {
		t.Fatalf("not required: %v", err)
	}
	r.RequireMessageAuthenticator = true
	if err := r.Check(context.Background(), "bob", "424242"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("required: %v, want ErrUnavailable", err)
	}
}

// TestRADIUSForgedMessageAuthenticator: an Access-Accept whose Message-Authenticator does not verify (what a
// Blast-RADIUS forgery looks like, CVE-2024-3596) is no accept; one that verifies is.
func TestRADIUSForgedMessageAuthenticator(t *testing.T) {
	const secret = "s3cret-shared"
	for _, tc := range []struct {
		name   string
		forged bool
	}{{"signed with the shared secret", false}, {"signed with another key", true}} {
		t.Run(tc.name, func(t *testing.T) {
			addr, port := answering(t, secret, func(resp *radius.Packet, reqAuth [16]byte) {
				key := []byte(secret)
				if tc.forged {
					key = []byte("attacker")
				}
				rfc2869.MessageAuthenticator_Set(resp, make([]byte, 16))
				c := *resp
				c.Authenticator = reqAuth
				wire, err := c.MarshalBinary()
				if err != nil {
					t.Error(err)
					return
				}
				m := hmac.New(md5.New, key)
				m.Write(wire)
				rfc2869.MessageAuthenticator_Set(resp, m.Sum(nil))
			})
			err := (&RADIUS{Address: addr, Port: port, Secret: secret, Timeout: 3 * time.Second}).Check(context.Background(), "bob", "424242")
			if tc.forged && !errors.Is(err, ErrUnavailable) {
				t.Fatalf("forged answer: %v, want ErrUnavailable", err)
			}
			if !tc.forged && err != nil {
				t.Fatalf("genuine answer: %v", err)
			}
		})
	}
}
