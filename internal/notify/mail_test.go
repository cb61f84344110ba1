package notify

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/notify/smtptest"
	"github.com/gatehouse-dev/gatehouse/internal/testca"
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
	certPEM, certFile, keyFile := serverCert(t) // certPEM is the CA that verifies the server
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

// serverCert writes a server certificate for 127.0.0.1 and its key to files, and returns the PEM of the CA that
// verifies it.
func serverCert(t *testing.T) (caPEM, certFile, keyFile string) {
	t.Helper()
	ca := testca.New(t, "smtp test CA")
	leaf := ca.Server(t, "127.0.0.1")
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, leaf.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, leaf.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return string(ca.PEM), certFile, keyFile
}
