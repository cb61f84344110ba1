package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
)

// TestVerifyTrusted: a connection policy's trusted CA list admits a target certificate only when one of its CAs
// issued it for the name asked for; it runs even for targets whose own verification is off, so it must check the
// name itself.
func TestVerifyTrusted(t *testing.T) {
	trusted, other := newTestCA(t), newTestCA(t)
	leaf := func(ca *testCA, name string) []*x509.Certificate {
		c, _, _, err := ca.issue(name, x509.ExtKeyUsageServerAuth)
		if err != nil {
			t.Fatal(err)
		}
		return []*x509.Certificate{c.Leaf}
	}
	verify := verifyTrusted(trusted.Pool)
	for _, tc := range []struct {
		name, server string
		chain        []*x509.Certificate
		refused      string // "" admits
	}{
		{"issued by a trusted CA for the name", "api.example", leaf(trusted, "api.example"), ""},
		{"issued for another name", "api.example", leaf(trusted, "evil.example"), "not trusted"},
		{"issued by another CA", "api.example", leaf(other, "api.example"), "not trusted"},
		{"no certificate", "api.example", nil, "no certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verify(tls.ConnectionState{ServerName: tc.server, PeerCertificates: tc.chain})
			if tc.refused == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)) {
				t.Fatalf("err = %v, want a refusal saying %q", err, tc.refused)
			}
		})
	}
}

// TestTransportFollowsTargetChanges: a changed target (a new version: other trust anchors, verification turned
// on, another client certificate) gets a transport of its own, so connections made under the old settings are not
// reused for it.
func TestTransportFollowsTargetChanges(t *testing.T) {
	s := &Server{}
	c := &transportCache{srv: s}
	ctx := context.Background()
	tg := &Target{ID: "t1", Name: "api", Version: 1, InsecureSkipVerify: true}
	a, err := c.get(ctx, tg, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := c.get(ctx, tg, "", nil); again != a {
		t.Fatal("the same target version got a new transport")
	}
	changed := *tg
	changed.Version, changed.InsecureSkipVerify = 2, false
	b, err := c.get(ctx, &changed, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if b == a || b.TLSClientConfig.InsecureSkipVerify {
		t.Fatalf("after the change: same transport %v, skip-verify %v", b == a, b.TLSClientConfig.InsecureSkipVerify)
	}
	if b.Proxy != nil {
		t.Fatal("the upstream transport follows a proxy from the environment")
	}
}
