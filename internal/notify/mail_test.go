package notify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/notify/smtptest"
)

func mailEvent() Event {
	return Event{Kind: KindRequested, Source: "session", RequestID: "req-4711", Requester: "alice", ClientAddress: "127.0.0.2:4000",
		Target: "orders", RequestLine: "GET https://orders.test/v1/items",
		Comment: "please\r\nBcc: mallory@evil.test", Time: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
}

func TestMailPlain(t *testing.T) {
	srv := smtptest.Start(t, "", "")
	m := SMTP{Enabled: true, Host: srv.Host, Port: srv.Port, From: "gatehouse@example.test", To: []string{"ops@example.test", "sec@example.test"}, TLSMode: TLSNone}
	if err := (Settings{SMTP: m}).Check(); err != nil {
		t.Fatal(err)
	}
	n := New(static(Settings{SMTP: m}), nil)
	if err := n.Deliver(context.Background(), mailEvent()); err != nil {
		t.Fatal(err)
	}
	out := srv.WaitFor(t, "Subject: [Gatehouse] session approval requested: alice for orders", "Request: req-4711",
		"First request: GET https://orders.test/v1/items", "To: ops@example.test, sec@example.test", "Comment: please\n  Bcc: mallory@evil.test")
	// The comment's line break did not become a header of the message.
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Bcc:") {
			t.Fatalf("a comment added a header: %q", l)
		}
	}
}

func TestMailStartTLS(t *testing.T) {
	certPEM, certFile, keyFile := selfSigned(t)
	srv := smtptest.Start(t, certFile, keyFile)
	m := SMTP{Enabled: true, Host: srv.Host, Port: srv.Port, From: "gatehouse@example.test", To: []string{"ops@example.test"},
		TLSMode: TLSStartTLS, CACertificate: certPEM}
	n := New(static(Settings{SMTP: m}), nil)
	n.Attempts = 1
	ev := mailEvent()
	ev.Kind, ev.Decider, ev.Comment = KindApproved, "bob", "ok"
	if err := n.Deliver(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	srv.WaitFor(t, "session approval approved: alice for orders", "Decided by: bob")

	// Without the server's CA the certificate is refused and nothing is sent.
	m.CACertificate = ""
	n = New(static(Settings{SMTP: m}), nil)
	n.Attempts = 1
	ev.RequestID = "req-untrusted"
	if err := n.Deliver(context.Background(), ev); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted STARTTLS certificate: %v", err)
	}
	if strings.Contains(srv.Output(), "req-untrusted") {
		t.Fatal("a message went through an unverified TLS session")
	}
}

func TestMailStartTLSRequired(t *testing.T) {
	srv := smtptest.Start(t, "", "") // offers no STARTTLS
	m := SMTP{Enabled: true, Host: srv.Host, Port: srv.Port, From: "gatehouse@example.test", To: []string{"ops@example.test"}, TLSMode: TLSStartTLS}
	n := New(static(Settings{SMTP: m}), nil)
	n.Attempts = 1
	if err := n.Deliver(context.Background(), mailEvent()); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("tls_mode starttls against a plain server: %v", err)
	}
	if strings.Contains(srv.Output(), "req-4711") {
		t.Fatal("a message was sent in clear although starttls was required")
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and returns its PEM and the files.
func selfSigned(t *testing.T) (certPEM, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtp test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, []byte(certPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPEM, certFile, keyFile
}
