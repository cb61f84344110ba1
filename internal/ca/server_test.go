package ca_test

import (
	"crypto/tls"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestServerCertificateNames(t *testing.T) {
	c := openCA(t, t.TempDir())
	crt, err := c.ServerCertificate([]string{"gatehouse.example.com:8443", "0.0.0.0", "192.0.2.10", "", "LOCALHOST"})
	if err != nil {
		t.Fatal(err)
	}
	leaf := crt.Leaf
	if diff := cmp.Diff([]string{"gatehouse.example.com", "localhost"}, leaf.DNSNames); diff != "" {
		t.Errorf("DNSNames mismatch (-want +got):\n%s", diff)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	slices.Sort(ips)
	if diff := cmp.Diff([]string{"127.0.0.1", "192.0.2.10", "::1"}, ips); diff != "" {
		t.Errorf("IPAddresses mismatch (-want +got):\n%s", diff)
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d < 365*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("validity %v, want about one year", d)
	}
	if len(crt.Certificate) != 2 {
		t.Errorf("chain length %d, want leaf + intermediate", len(crt.Certificate))
	}
	if _, err := c.ServerCertificate([]string{"bad host"}); err == nil {
		t.Error("invalid host accepted")
	}
}

func TestServerCertificatePersistence(t *testing.T) {
	dir := t.TempDir()
	first, err := openCA(t, dir).ServerCertificate([]string{"mgmt.test"})
	if err != nil {
		t.Fatal(err)
	}
	serial := first.Leaf.SerialNumber

	c := openCA(t, dir)
	start := time.Now()
	now := start
	c.Now = func() time.Time { return now }
	tests := []struct {
		name    string
		after   time.Duration
		hosts   []string
		wantNew bool
	}{
		{"restart reuses", 0, []string{"mgmt.test"}, false},
		{"same set, other order and case", 0, []string{"::1", "MGMT.test", "localhost"}, false},
		{"host added", 0, []string{"mgmt.test", "other.test"}, true},
		{"back to original set", 0, []string{"mgmt.test"}, true},
		{"near expiry", 340 * 24 * time.Hour, []string{"mgmt.test"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = start.Add(tt.after)
			crt, err := c.ServerCertificate(tt.hosts)
			if err != nil {
				t.Fatal(err)
			}
			if isNew := crt.Leaf.SerialNumber.Cmp(serial) != 0; isNew != tt.wantNew {
				t.Errorf("new certificate = %v, want %v", isNew, tt.wantNew)
			}
			serial = crt.Leaf.SerialNumber
		})
	}
}

// TestServerCertificateHandshake serves the management certificate and
// connects the way the CLI would: to localhost and to 127.0.0.1, trusting the
// root only.
func TestServerCertificateHandshake(t *testing.T) {
	c := openCA(t, t.TempDir())
	crt, err := c.ServerCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := tlsServer(t, "127.0.0.1:0", func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return crt, nil })
	_, port, _ := net.SplitHostPort(addr.String())
	for _, host := range []string{"localhost", "127.0.0.1"} {
		resp, err := trustingClient(t, c.Root(), addr).Get("https://" + net.JoinHostPort(host, port) + "/")
		if err != nil {
			t.Fatalf("GET via %s: %v", host, err)
		}
		resp.Body.Close()
	}
}
