package extender

import (
	"crypto/tls"
	"net"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testca"
)

// handshake runs a real TLS handshake over a pipe, at most version max, and returns the client's state.
func handshake(t *testing.T, max uint16) tls.ConnectionState {
	t.Helper()
	ca := testca.New(t, "relay test CA")
	leaf := ca.Server(t, "node.test")
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MaxVersion: max})
	go srv.Handshake()
	cl := tls.Client(b, &tls.Config{RootCAs: ca.Pool, ServerName: "node.test", MaxVersion: max})
	if err := cl.Handshake(); err != nil {
		t.Fatal(err)
	}
	return cl.ConnectionState()
}

// TestRelayProofNeedsTLS13: a relay's proof binds the cluster key to the TLS session's exported keying material,
// which only TLS 1.3 makes safe to rely on; under TLS 1.2 no proof is made, so no relay is admitted.
func TestRelayProofNeedsTLS13(t *testing.T) {
	key := []byte("cluster-key-0123456789abcdef0123")
	cs13 := handshake(t, tls.VersionTLS13)
	p, err := relayProof(key, &cs13, "client", "n1")
	if err != nil || p == "" || !proofMatches(key, &cs13, "client", "n1", p) {
		t.Fatalf("TLS 1.3 proof: %q, %v", p, err)
	}
	if proofMatches(key, &cs13, "server", "n1", p) || proofMatches(key, &cs13, "client", "n2", p) {
		t.Fatal("a proof made for one role and node matches another")
	}
	cs12 := handshake(t, tls.VersionTLS12)
	if p, err := relayProof(key, &cs12, "client", "n1"); err == nil {
		t.Fatalf("TLS 1.2 made a proof: %q", p)
	}
}
