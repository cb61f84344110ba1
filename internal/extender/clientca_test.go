package extender

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func newTestCA(t *testing.T) *ClientCA {
	t.Helper()
	cp, kp, err := NewClientCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ca, err := ParseClientCA(cp, kp)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func parseLeaf(t *testing.T, certPEM string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(certPEM))
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientCAVerify(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	now := time.Now()
	good, err := ca.Issue("ext-1", "site", now)
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := other.Issue("ext-1", "site", now)
	// A certificate of our CA's key but for servers only: the proxy CA's leaves look like this.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "ext-1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
		ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	serverOnly, _ := x509.ParseCertificate(der)
	for _, c := range []struct {
		name string
		cert *x509.Certificate
		at   time.Time
		ok   bool
	}{
		{"issued by this CA", parseLeaf(t, good.CertPEM), now, true},
		{"issued by another CA", parseLeaf(t, foreign.CertPEM), now, false},
		{"expired", parseLeaf(t, good.CertPEM), now.Add(ClientCertValidity + time.Hour), false},
		{"not yet valid", parseLeaf(t, good.CertPEM), now.Add(-time.Hour), false},
		{"server certificate of this CA", serverOnly, now, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			fp, err := ca.Verify([]*x509.Certificate{c.cert}, c.at)
			if (err == nil) != c.ok {
				t.Fatalf("Verify: %v, want ok=%v", err, c.ok)
			}
			if c.ok && fp != good.Fingerprint {
				t.Fatalf("fingerprint %s, want %s", fp, good.Fingerprint)
			}
		})
	}
	if _, err := ca.Verify(nil, now); err == nil {
		t.Fatal("Verify with no certificate succeeded")
	}
	if _, err := ParseClientCA([]byte(good.CertPEM), []byte(good.KeyPEM)); err == nil {
		t.Fatal("a leaf with another key loaded as the CA")
	}
}

// TestHubAuthenticatesClientCertificates runs the handshake for real: the hub's listener asks for (never
// requires) a client certificate, as the API listener does, and the agent presents its own.
func TestHubAuthenticatesClientCertificates(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	h := &Hub{
		Authenticate: func(context.Context, string) (Identity, error) {
			return Identity{}, &Refusal{Reason: "unknown or revoked token"}
		},
		AuthenticateCert: func(_ context.Context, chain []*x509.Certificate) (Identity, error) {
			fp, err := ca.Verify(chain, time.Now())
			if err != nil {
				return Identity{}, &Refusal{Reason: "untrusted or expired certificate"}
			}
			return Identity{ID: chain[0].Subject.CommonName, Name: "e", Prefix: "site", Credential: "cert:" + fp}, nil
		},
	}
	var refused []RefusedConnect
	h.OnRefused = func(_ context.Context, r RefusedConnect) { refused = append(refused, r) }
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	pair := func(c *ClientCA) *tls.Certificate {
		ic, err := c.Issue("ext-9", "e", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		p, err := tls.X509KeyPair([]byte(ic.CertPEM), []byte(ic.KeyPEM))
		if err != nil {
			t.Fatal(err)
		}
		return &p
	}
	ctx := context.Background()
	sess, err := (&Agent{Gateway: srv.URL, Certificate: pair(ca), RootCAs: pool}).Connect(ctx)
	if err != nil {
		t.Fatalf("agent with a certificate of the CA: %v", err)
	}
	waitLinks(t, h, "site", 1)
	sess.Close()

	var re *RefusedError
	if _, err := (&Agent{Gateway: srv.URL, Certificate: pair(other), RootCAs: pool}).Connect(ctx); !errors.As(err, &re) || re.Status != http.StatusUnauthorized {
		t.Fatalf("agent with another CA's certificate: %v, want refused", err)
	}
	if _, err := (&Agent{Gateway: srv.URL, RootCAs: pool}).Connect(ctx); !errors.As(err, &re) {
		t.Fatalf("agent with neither token nor certificate: %v, want refused", err)
	}
	if len(refused) != 1 || refused[0].Kind != "certificate" || refused[0].Reason != "untrusted or expired certificate" || refused[0].Remote == "" {
		t.Fatalf("refusals reported: %+v", refused)
	}
}

// TestRefusalGate pins the rate limit of refusal reports on a fake clock: one report per source and reason per
// interval, the held-back count carried into the next report, and a bounded table under a flood of sources.
func TestRefusalGate(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	type step struct {
		key        string
		at         time.Duration
		ok         bool
		suppressed int
	}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"first report passes, repeats within the interval are held", []step{
			{"a", 0, true, 0}, {"a", time.Second, false, 0}, {"a", 59 * time.Second, false, 0},
			{"a", refusalInterval, true, 2}, {"a", refusalInterval + time.Second, false, 0}}},
		{"sources and reasons are apart", []step{
			{"a r1", 0, true, 0}, {"a r2", 0, true, 0}, {"b r1", 0, true, 0}, {"a r1", time.Second, false, 0}}},
		{"quiet source is reported again without a count", []step{
			{"a", 0, true, 0}, {"a", 10 * refusalInterval, true, 0}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var g refusalGate
			for i, s := range c.steps {
				ok, n := g.admit(s.key, t0.Add(s.at))
				if ok != s.ok || n != s.suppressed {
					t.Fatalf("step %d (%s at %v): %v %d, want %v %d", i, s.key, s.at, ok, n, s.ok, s.suppressed)
				}
			}
		})
	}
	t.Run("a flood of sources stays bounded", func(t *testing.T) {
		var g refusalGate
		reported := 0
		for i := range 3 * refusalSources {
			if ok, _ := g.admit(big.NewInt(int64(i)).String(), t0); ok {
				reported++
			}
		}
		if len(g.seen) > refusalSources || reported > refusalSources+1 {
			t.Fatalf("%d entries, %d reports for %d sources in one instant", len(g.seen), reported, 3*refusalSources)
		}
	})
}
