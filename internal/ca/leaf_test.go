package ca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/ca"
	"github.com/gatehouse-dev/gatehouse/internal/limits"
	"github.com/google/go-cmp/cmp"
)

// tlsServer starts an HTTPS server on addr (a loopback address with port 0)
// whose certificates come from getCert.
func tlsServer(t *testing.T, addr string, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) net.Addr {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if addr[0] == '[' {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from "+r.Host)
	}))
	// httptest's StartTLS would add its own certificate, which crypto/tls
	// prefers over GetCertificate for clients that send no SNI; wrapping the
	// listener keeps GetCertificate the only source.
	// Handshake failures are what some tests expect; the client's error is
	// what they check.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.Listener.Close()
	s.Listener = tls.NewListener(ln, &tls.Config{GetCertificate: getCert})
	s.Start()
	t.Cleanup(s.Close)
	return ln.Addr()
}

// trustingClient trusts only root and dials dialAddr whatever the URL says,
// so certificates for names without DNS entries can be tested.
func trustingClient(t *testing.T, root *x509.Certificate, dialAddr net.Addr) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(root)
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, dialAddr.String())
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func TestInterceptionHandshake(t *testing.T) {
	c := openCA(t, t.TempDir())
	tests := []struct {
		name   string
		listen string
		host   string // URL host; empty means the listener's IP
		wantIP bool
	}{
		{"dns name via SNI", "127.0.0.1:0", "api.gatehouse.test", false},
		{"ipv4 without SNI", "127.0.0.1:0", "", true},
		{"ipv6 without SNI", "[::1]:0", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := tlsServer(t, tt.listen, c.GetCertificate)
			_, port, _ := net.SplitHostPort(addr.String())
			host := tt.host
			if host == "" {
				ap := netip.MustParseAddrPort(addr.String())
				host = ap.Addr().String()
			}
			url := "https://" + net.JoinHostPort(host, port) + "/"
			resp, err := trustingClient(t, c.Root(), addr).Get(url)
			if err != nil {
				t.Fatalf("GET %s: %v", url, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || len(body) == 0 {
				t.Fatalf("GET %s: %s %q", url, resp.Status, body)
			}
			chain := resp.TLS.VerifiedChains[0]
			if len(chain) != 3 || !chain[1].Equal(c.Chain()[0]) || !chain[2].Equal(c.Root()) {
				t.Fatalf("verified chain has %d certs, want leaf, intermediate, root", len(chain))
			}
			leaf := chain[0]
			if tt.wantIP {
				if len(leaf.IPAddresses) != 1 || leaf.IPAddresses[0].String() != host || len(leaf.DNSNames) != 0 {
					t.Errorf("leaf SANs IP=%v DNS=%v, want only IP %s", leaf.IPAddresses, leaf.DNSNames, host)
				}
			} else if diff := cmp.Diff([]string{host}, leaf.DNSNames); diff != "" || len(leaf.IPAddresses) != 0 {
				t.Errorf("leaf SANs mismatch (-want +got):\n%s IPs=%v", diff, leaf.IPAddresses)
			}
		})
	}
}

// TestHandshakeFailures pins that the client really verifies what it is
// served: an untrusted root or a leaf for another name must fail.
func TestHandshakeFailures(t *testing.T) {
	c := openCA(t, t.TempDir())
	other := openCA(t, t.TempDir())

	t.Run("untrusted root", func(t *testing.T) {
		addr := tlsServer(t, "127.0.0.1:0", c.GetCertificate)
		_, port, _ := net.SplitHostPort(addr.String())
		_, err := trustingClient(t, other.Root(), addr).Get("https://api.gatehouse.test:" + port + "/")
		var uae x509.UnknownAuthorityError
		if !errors.As(err, &uae) {
			t.Fatalf("err = %v, want x509.UnknownAuthorityError", err)
		}
	})
	t.Run("leaf for another host", func(t *testing.T) {
		addr := tlsServer(t, "127.0.0.1:0", func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.LeafFor("elsewhere.test")
		})
		_, port, _ := net.SplitHostPort(addr.String())
		_, err := trustingClient(t, c.Root(), addr).Get("https://api.gatehouse.test:" + port + "/")
		var he x509.HostnameError
		if !errors.As(err, &he) {
			t.Fatalf("err = %v, want x509.HostnameError", err)
		}
	})
}

func TestLeafForNames(t *testing.T) {
	c := openCA(t, t.TempDir())
	tests := []struct {
		in      string
		wantDNS []string
		wantIP  string
	}{
		{in: "example.com", wantDNS: []string{"example.com"}},
		{in: "Example.COM.", wantDNS: []string{"example.com"}},
		{in: "my_host.corp.internal", wantDNS: []string{"my_host.corp.internal"}},
		{in: "localhost", wantDNS: []string{"localhost"}},
		{in: "10.1.2.3", wantIP: "10.1.2.3"},
		{in: "::ffff:10.1.2.3", wantIP: "10.1.2.3"},
		{in: "2001:db8::1", wantIP: "2001:db8::1"},
		{in: "[2001:db8::1]", wantIP: "2001:db8::1"},
		{in: "[::1]", wantIP: "::1"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			crt, err := c.LeafFor(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			leaf := crt.Leaf
			if diff := cmp.Diff(tt.wantDNS, leaf.DNSNames); diff != "" {
				t.Errorf("DNSNames mismatch (-want +got):\n%s", diff)
			}
			var gotIP string
			if len(leaf.IPAddresses) == 1 {
				gotIP = leaf.IPAddresses[0].String()
			}
			if gotIP != tt.wantIP || len(leaf.IPAddresses) > 1 {
				t.Errorf("IPAddresses = %v, want %q", leaf.IPAddresses, tt.wantIP)
			}
			host := tt.wantIP
			if host == "" {
				host = tt.wantDNS[0]
			}
			if err := leaf.VerifyHostname(host); err != nil {
				t.Error(err)
			}
		})
	}

	for _, bad := range []string{
		"", ".", "*.example.com", "a..b", "-a.example.com", "a-.example.com", "host:443",
		"fe80::1%eth0", "127.1", "[1.2.3.4]", "[example.com]", "exa mple.com", "ex\x00ample.com",
		"ünicode.example", string(make([]byte, 300)),
		strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("a", 63), // 255 bytes of good labels
	} {
		if crt, err := c.LeafFor(bad); !errors.Is(err, ca.ErrInvalidName) {
			t.Errorf("LeafFor(%q) = %v, %v; want ErrInvalidName", bad, crt != nil, err)
		}
	}
}

// TestLeafNameAtTheLengthLimit: a name of exactly 253 bytes is a name.
func TestLeafNameAtTheLengthLimit(t *testing.T) {
	name := strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("a", 61)
	if crt, err := openCA(t, t.TempDir()).LeafFor(name); err != nil || crt.Leaf.DNSNames[0] != name {
		t.Fatalf("LeafFor(253 bytes) = %v", err)
	}
}

// TestLeafNeverOutlivesIntermediate: near the intermediate's expiry a leaf ends with it, not a validity period
// later, since no verifier accepts a leaf past its issuer's end.
func TestLeafNeverOutlivesIntermediate(t *testing.T) {
	c := openCA(t, t.TempDir())
	inter := c.Chain()[0]
	c.Now = func() time.Time { return inter.NotAfter.Add(-time.Hour) }
	crt, err := c.LeafFor("late.example")
	if err != nil {
		t.Fatal(err)
	}
	if !crt.Leaf.NotAfter.Equal(inter.NotAfter) {
		t.Fatalf("leaf ends %v, intermediate %v", crt.Leaf.NotAfter, inter.NotAfter)
	}
}

func TestLeafProperties(t *testing.T) {
	c := openCA(t, t.TempDir())
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c.Now = func() time.Time { return now }
	crt, err := c.LeafFor("props.test")
	if err != nil {
		t.Fatal(err)
	}
	leaf := crt.Leaf
	if leaf.IsCA {
		t.Error("leaf is a CA")
	}
	if diff := cmp.Diff([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, leaf.ExtKeyUsage); diff != "" {
		t.Errorf("ExtKeyUsage mismatch (-want +got):\n%s", diff)
	}
	if !leaf.NotBefore.Equal(now.Add(-time.Hour)) || !leaf.NotAfter.Equal(now.Add(24*time.Hour)) {
		t.Errorf("validity %v..%v, want now-1h..now+24h", leaf.NotBefore, leaf.NotAfter)
	}
	if len(crt.Certificate) != 2 || !c.Chain()[0].Equal(mustParse(t, crt.Certificate[1])) {
		t.Error("served chain is not leaf + intermediate")
	}
	key, ok := crt.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() || !key.PublicKey.Equal(leaf.PublicKey) {
		t.Errorf("leaf key %T is not the P-256 key of the certificate", crt.PrivateKey)
	}
	other, err := c.LeafFor("props2.test")
	if err != nil {
		t.Fatal(err)
	}
	if other.PrivateKey.(*ecdsa.PrivateKey).Equal(key) {
		t.Error("two leaves share a private key")
	}

	c.LeafValidity = 2 * time.Hour
	short, err := c.LeafFor("short.test")
	if err != nil {
		t.Fatal(err)
	}
	if !short.Leaf.NotAfter.Equal(now.Add(2 * time.Hour)) {
		t.Errorf("LeafValidity=2h gave NotAfter %v", short.Leaf.NotAfter)
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	crt, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return crt
}

func TestLeafForConn(t *testing.T) {
	c := openCA(t, t.TempDir())
	tests := []struct {
		sni, fallback string
		wantDNS       []string
		wantIPs       int
	}{
		{"a.test", "10.0.0.1", []string{"a.test"}, 0},
		{"", "b.test", []string{"b.test"}, 0},
		{"", "10.0.0.1", nil, 1},
		{"", "[2001:db8::2]", nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.sni+"|"+tt.fallback, func(t *testing.T) {
			crt, err := c.LeafForConn(tt.sni, tt.fallback)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantDNS, crt.Leaf.DNSNames); diff != "" || len(crt.Leaf.IPAddresses) != tt.wantIPs {
				t.Errorf("SANs DNS diff %s IPs %v", diff, crt.Leaf.IPAddresses)
			}
		})
	}
	if _, err := c.LeafForConn("", ""); !errors.Is(err, ca.ErrInvalidName) {
		t.Errorf("LeafForConn with no names: err = %v, want ErrInvalidName", err)
	}
}

func TestLeafCache(t *testing.T) {
	c := openCA(t, t.TempDir())
	a, err := c.LeafFor("cache.test")
	if err != nil {
		t.Fatal(err)
	}
	for _, alias := range []string{"cache.test", "CACHE.test", "cache.test."} {
		b, err := c.LeafFor(alias)
		if err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Errorf("LeafFor(%q) minted a new leaf instead of using the cache", alias)
		}
	}
	v4, _ := c.LeafFor("10.9.8.7")
	mapped, _ := c.LeafFor("::ffff:10.9.8.7")
	if v4 != mapped {
		t.Error("IPv4 and IPv4-mapped IPv6 forms got different leaves")
	}
}

func TestLeafCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := openCA(t, t.TempDir())
	c.CacheSize = 2
	get := func(name string) *tls.Certificate {
		t.Helper()
		crt, err := c.LeafFor(name)
		if err != nil {
			t.Fatal(err)
		}
		return crt
	}
	a, b := get("a.test"), get("b.test")
	if get("a.test") != a { // a is now most recently used
		t.Fatal("a.test not cached")
	}
	get("c.test") // evicts b
	if get("a.test") != a {
		t.Error("a.test evicted although more recently used than b.test")
	}
	if get("b.test") == b {
		t.Error("b.test still cached beyond CacheSize")
	}
}

func TestLeafRemintedNearExpiry(t *testing.T) {
	c := openCA(t, t.TempDir())
	start := time.Now()
	now := start
	c.Now = func() time.Time { return now }
	first, err := c.LeafFor("expiry.test")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		after   time.Duration
		wantNew bool
	}{
		{22*time.Hour + 59*time.Minute, false},
		{23*time.Hour + 1*time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.after.String(), func(t *testing.T) {
			now = start.Add(tt.after)
			got, err := c.LeafFor("expiry.test")
			if err != nil {
				t.Fatal(err)
			}
			if (got != first) != tt.wantNew {
				t.Errorf("new leaf = %v, want %v", got != first, tt.wantNew)
			}
			// Certificates carry whole seconds.
			if want := now.Add(24 * time.Hour).Truncate(time.Second); tt.wantNew && !got.Leaf.NotAfter.Equal(want) {
				t.Errorf("re-minted leaf expires %v, want %v", got.Leaf.NotAfter, want)
			}
		})
	}
}

func TestLeafForConcurrent(t *testing.T) {
	c := openCA(t, t.TempDir())
	c.CacheSize = 3 // evictions while other goroutines read
	const workers = 32
	results := make([]*tls.Certificate, workers)
	var wg, minted sync.WaitGroup
	minted.Add(workers)
	start := make(chan struct{})
	for i := range workers {
		wg.Go(func() {
			<-start
			crt, err := c.LeafFor("burst.test")
			if err != nil {
				t.Error(err)
			}
			results[i] = crt
			// Churn other names only once every worker holds its leaf, so
			// an eviction of burst.test cannot explain a second mint.
			minted.Done()
			minted.Wait()
			if _, err := c.LeafFor(fmt.Sprintf("n%d.test", i%5)); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	for i, r := range results {
		if r != results[0] {
			t.Fatalf("worker %d got a different leaf: concurrent requests minted more than once", i)
		}
	}
}

// TestOpenSSLVerifiesChain checks the chain with an independent verifier.
func TestOpenSSLVerifiesChain(t *testing.T) {
	openssl := lookOpenSSL(t)
	dir := t.TempDir()
	c := openCA(t, filepath.Join(dir, "ca"))
	leaf, err := c.LeafFor("openssl.test")
	if err != nil {
		t.Fatal(err)
	}
	server, err := c.ServerCertificate([]string{"mgmt.test"})
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, crt ...*x509.Certificate) string {
		p := filepath.Join(dir, name)
		var b []byte
		for _, x := range crt {
			b = append(b, pemBlock(x.Raw)...)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	root := write("root.pem", c.Root())
	inter := write("inter.pem", c.Chain()[0])
	for _, tc := range []struct {
		name, host string
		crt        *x509.Certificate
	}{
		{"leaf", "openssl.test", leaf.Leaf},
		{"server", "localhost", server.Leaf},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(tc.name+".pem", tc.crt)
			out, err := exec.Command(openssl, "verify", "-x509_strict", "-purpose", "sslserver",
				"-verify_hostname", tc.host, "-CAfile", root, "-untrusted", inter, p).CombinedOutput()
			if err != nil {
				t.Fatalf("openssl verify: %v\n%s", err, out)
			}
			// Without the root, the same chain must be refused.
			out, err = exec.Command(openssl, "verify", "-CAfile", inter, p).CombinedOutput()
			if err == nil {
				t.Fatalf("openssl verified against the intermediate alone (partial chain accepted):\n%s", out)
			}
		})
	}
}

func pemBlock(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestLeafMintLimit pins the mint budget: new names beyond the bucket are refused, cached leaves are still served,
// and the bucket refills with time (a fake clock).
func TestLeafMintLimit(t *testing.T) {
	c := openCA(t, t.TempDir())
	now := time.Now()
	var limited int
	c.MintLimit = &limits.Bucket{Rate: 1, Burst: 2, Now: func() time.Time { return now }}
	c.OnMintLimited = func() { limited++ }
	for _, name := range []string{"one.test", "two.test"} {
		if _, err := c.LeafFor(name); err != nil {
			t.Fatalf("LeafFor(%s) within the burst: %v", name, err)
		}
	}
	if _, err := c.LeafFor("three.test"); !errors.Is(err, ca.ErrMintLimited) {
		t.Fatalf("third new name: %v, want ErrMintLimited", err)
	}
	if _, err := c.LeafFor("one.test"); err != nil {
		t.Fatalf("a cached leaf counts against the limit: %v", err)
	}
	now = now.Add(time.Second)
	if _, err := c.LeafFor("three.test"); err != nil {
		t.Fatalf("after the bucket refilled: %v", err)
	}
	if c.Minted() != 3 || limited != 1 {
		t.Fatalf("minted %d, limited %d; want 3 and 1", c.Minted(), limited)
	}
}
