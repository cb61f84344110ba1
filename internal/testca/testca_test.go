package testca

import (
	"crypto/x509"
	"testing"
)

// TestIssueVerifies: what the CA issues verifies against its pool for each name it was issued for, IP literals
// included, for the usage asked for, and for no other name.
func TestIssueVerifies(t *testing.T) {
	ca := New(t, "test CA")
	leaf := ca.Server(t, "api.example", "127.0.0.1")
	for _, name := range []string{"api.example", "127.0.0.1"} {
		if _, err := leaf.TLS.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool, DNSName: name}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.TLS.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool, DNSName: "other.example"}); err == nil {
		t.Error("the leaf verifies for a name it was not issued for")
	}
	client, err := ca.Issue(x509.ExtKeyUsageClientAuth, "alice")
	if err != nil {
		t.Fatal(err)
	}
	opts := x509.VerifyOptions{Roots: ca.Pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := client.TLS.Leaf.Verify(opts); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	if _, err := New(t, "another CA").Server(t, "api.example").TLS.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool}); err == nil {
		t.Error("another CA's leaf verifies against this pool")
	}
}
