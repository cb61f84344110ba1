package e2e_test

import (
	"bytes"
	"crypto/tls"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestServerCertificateCheck: with server_certificate_check naming a trusted CA list that lacks the origin's CA,
// requests fail with 502 before anything reaches the origin, although the target itself trusts that CA; with the
// CA in the list they pass. A list that is missing at commit, or holds no CA, is refused.
func TestServerCertificateCheck(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	a := newCfgAdmin(t, f.gh)
	c := f.credential(f.alpha, "cert-check", nil)
	other := newTestCA(t)

	list := a.create(cfgTrustedCAs, map[string]any{"name": "others", "certificates": []string{other.pem}})
	a.editDefault(func(b map[string]any) {
		b["transport_security"] = map[string]any{"selection": "client-server", "allow_non_encrypted": true,
			"server_certificate_check": map[string]any{"enabled": true, "trusted_ca": list}}
	})
	get := func() (int, string) {
		st, body, _, err := proxiedGet(t, f.proxyURL().String(), f.https.URL+"/api/items", c.Secret, f.proxyPool, nil)
		if err != nil {
			t.Fatal(err)
		}
		return st, body
	}
	t.Run("list lacks the origin's CA", func(t *testing.T) {
		f.https.Reset()
		if st, body := get(); st != http.StatusBadGateway || errorCode(body) != "UPSTREAM_TLS" {
			t.Fatalf("got %d %s, want 502 UPSTREAM_TLS", st, body)
		}
		wantOrigin(t, f.https, 0, "untrusted origin")
	})
	t.Run("list holds the origin's CA", func(t *testing.T) {
		a.edit(cfgTrustedCAs+"/"+list, func(b map[string]any) { b["certificates"] = []string{other.pem, f.ca.pem} })
		a.commit()
		f.https.Reset()
		if st, body := get(); st != http.StatusOK {
			t.Fatalf("got %d %s, want 200", st, body)
		}
		checkInjected(t, only(t, f.https), alphaToken, c.Secret)
	})
	t.Run("check disabled adds nothing but keeps the target's own check", func(t *testing.T) {
		a.editDefault(func(b map[string]any) {
			b["transport_security"] = map[string]any{"selection": "client-server", "server_certificate_check": map[string]any{"enabled": false}}
		})
		f.https.Reset()
		if st, body := get(); st != http.StatusOK {
			t.Fatalf("got %d %s, want 200", st, body)
		}
		// beta trusts f.ca too; a target whose anchors lack the origin's CA still fails: the policy never loosens it.
		id := f.gh.Create(proxyAPI+"/api-targets", f.adm, map[string]any{"name": "no-anchor", "roles": []map[string]string{{"id": f.roleID}},
			"authorized_endpoints": []map[string]any{{"host": f.other.HostPort, "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/**"}}},
			"target_credential":    map[string]any{"type": "token", "bearer_token": "x-token"}})
		c2 := f.credential(id, "no-anchor", nil)
		f.other.Reset()
		st, body, _, err := proxiedGet(t, f.proxyURL().String(), f.other.URL+"/x", c2.Secret, f.proxyPool, nil)
		if err != nil || st != http.StatusBadGateway {
			t.Fatalf("target without anchors: %d %s %v, want 502", st, body, err)
		}
		wantOrigin(t, f.other, 0, "target without anchors")
	})
	t.Run("references and contents are validated", func(t *testing.T) {
		a.refused("PUT", cfgDefaultConn, map[string]any{"name": "default", "active": true,
			"network":            map[string]any{"clients": []string{"0.0.0.0/0"}, "targets": []string{"*"}},
			"transport_security": map[string]any{"selection": "client-server", "server_certificate_check": map[string]any{"enabled": true, "trusted_ca": "no-such-list"}},
		}, "SemanticError", "transport_security.server_certificate_check.trusted_ca")
		a.refused("POST", cfgTrustedCAs, map[string]any{"name": "bad", "certificates": []string{"not PEM"}}, "SemanticError", "certificates[0]")
		leaf := f.ca.leaf(t)
		a.refused("POST", cfgTrustedCAs, map[string]any{"name": "leaf", "certificates": []string{certPEM(leaf)}}, "SemanticError", "certificates[0]")
		a.refused("PUT", cfgDefaultConn, map[string]any{"name": "default", "active": true,
			"network":            map[string]any{"clients": []string{"0.0.0.0/0"}, "targets": []string{"*"}},
			"transport_security": map[string]any{"selection": "client-only", "server_certificate_check": map[string]any{"enabled": true}},
		}, "SemanticError", "transport_security.server_certificate_check")
		// A list deleted in the same transaction as the policy that names it fails the commit, not later traffic.
		l2 := a.create(cfgTrustedCAs, map[string]any{"name": "doomed", "certificates": []string{f.ca.pem}})
		a.edit(cfgDefaultConn, func(b map[string]any) {
			b["transport_security"] = map[string]any{"selection": "client-server", "server_certificate_check": map[string]any{"enabled": true, "trusted_ca": l2}}
		})
		a.call("DELETE", cfgTrustedCAs+"/"+l2, nil, http.StatusOK)
		msg := string(a.call("PUT", "/api/transaction", map[string]string{"status": "commit"}, http.StatusBadRequest))
		if !strings.Contains(msg, "transport_security.server_certificate_check.trusted_ca") {
			t.Fatalf("commit with a missing list: %s", msg)
		}
		a.call("DELETE", "/api/transaction", nil, http.StatusOK)
	})
}

// TestHostCertificationMethod: generate with an uploaded signing CA shows clients leaves that chain to it; fix
// with an uploaded identity shows that very certificate. Keys are sealed: neither the API nor the data directory
// holds them in clear.
func TestHostCertificationMethod(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	a := newCfgAdmin(t, f.gh)
	c := f.credential(f.alpha, "host-cert", nil)
	signer := newTestCA(t)
	signerKey := keyPEM(t, signer.key)

	a.refused("POST", cfgSigningCAs, map[string]any{"name": "wrong-key", "certificate": signer.pem, "private_key": keyPEM(t, f.ca.key)},
		"SemanticError", "private_key")
	a.refused("POST", cfgSigningCAs, map[string]any{"name": "no-key", "certificate": signer.pem}, "SemanticError", "private_key")
	a.refused("POST", cfgSigningCAs, map[string]any{"name": "sneaky", "certificate": signer.pem, "sealed_private_key": "x"},
		"SyntacticError", "sealed_private_key")
	sca := a.create(cfgSigningCAs, map[string]any{"name": "corp-signing", "certificate": signer.pem, "private_key": signerKey})
	shown := a.call("GET", cfgSigningCAs+"/"+sca, nil, http.StatusOK)
	keyBody := strings.Join(strings.Split(strings.TrimSpace(signerKey), "\n")[1:3], "")
	if bytes.Contains(shown, []byte(keyBody[:40])) || bytes.Contains(shown, []byte("sealed")) || !bytes.Contains(shown, []byte(`"private_key": null`)) {
		t.Fatalf("GET shows the key: %s", shown)
	}
	if ch := a.call("GET", "/api/transaction/changes", nil, http.StatusOK); bytes.Contains(ch, []byte(keyBody[:40])) {
		t.Fatalf("the change list shows the key: %s", ch)
	}
	// A PUT that leaves the key out keeps it.
	a.edit(cfgSigningCAs+"/"+sca, func(b map[string]any) { b["name"] = "corp-signing-ca" })
	a.editDefault(func(b map[string]any) {
		b["transport_security"] = map[string]any{"selection": "client-server", "allow_non_encrypted": true,
			"host_certification_method": map[string]any{"selection": "generate", "signing_ca": sca}}
	})

	t.Run("generate with the signing CA", func(t *testing.T) {
		st, body, leaf, err := proxiedGet(t, f.proxyURL().String(), f.https.URL+"/api/items", c.Secret, poolOf(t, signer.pem), nil)
		if err != nil || st != http.StatusOK {
			t.Fatalf("client trusting the signing CA: %d %s %v", st, body, err)
		}
		if err := leaf.CheckSignatureFrom(signer.Cert); err != nil {
			t.Fatalf("the leaf %q is not signed by the uploaded CA: %v", leaf.Subject, err)
		}
		if _, _, _, err := proxiedGet(t, f.proxyURL().String(), f.https.URL+"/api/items", c.Secret, f.proxyPool, nil); err == nil {
			t.Fatal("a client trusting only Gatehouse's CA accepted the tunnel")
		}
	})

	t.Run("fix with an identity", func(t *testing.T) {
		idCert := f.ca.leaf(t)
		id := a.create(cfgIdentities, map[string]any{"name": "fixed", "certificate": certPEM(idCert), "private_key": keyPEM(t, idCert.PrivateKey)})
		a.editDefault(func(b map[string]any) {
			b["transport_security"] = map[string]any{"selection": "client-server", "allow_non_encrypted": true,
				"host_certification_method": map[string]any{"selection": "fix", "x509_identity": id}}
		})
		st, body, leaf, err := proxiedGet(t, f.proxyURL().String(), f.https.URL+"/api/items", c.Secret, poolOf(t, f.ca.pem), nil)
		if err != nil || st != http.StatusOK {
			t.Fatalf("client trusting the identity's CA: %d %s %v", st, body, err)
		}
		if !bytes.Equal(leaf.Raw, idCert.Certificate[0]) {
			t.Fatalf("client saw %q, not the uploaded identity", leaf.Subject)
		}
		a.refused("POST", cfgIdentities, map[string]any{"name": "ca-as-identity", "certificate": signer.pem, "private_key": signerKey},
			"SemanticError", "certificate")
		a.refused("PUT", cfgDefaultConn, map[string]any{"name": "default", "active": true,
			"network":            map[string]any{"clients": []string{"0.0.0.0/0"}, "targets": []string{"*"}},
			"transport_security": map[string]any{"selection": "client-server", "host_certification_method": map[string]any{"selection": "fix"}},
		}, "SemanticError", "transport_security.host_certification_method.x509_identity")
	})

	t.Run("keys are sealed at rest", func(t *testing.T) {
		f.gh.Stop()
		defer f.gh.Restart()
		needle := []byte(keyBody[:40])
		filepath.WalkDir(f.gh.Cfg.DataDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, needle) {
				t.Errorf("%s holds the signing CA key in clear", p)
			}
			return nil
		})
	})
}

// TestTransportSecurityModes: disabled refuses tunnels and forwards plain HTTP; client-only takes TLS from the
// client and forwards plain HTTP; client-server without allow_non_encrypted refuses plain requests; the settings
// policy's TLS minimum versions apply to the client and the target side.
func TestTransportSecurityModes(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	a := newCfgAdmin(t, f.gh)
	// A target that clients reach over TLS while the origin speaks plain HTTP (client-only).
	half := f.gh.Create(proxyAPI+"/api-targets", f.adm, map[string]any{"name": "half", "roles": []map[string]string{{"id": f.roleID}},
		"authorized_endpoints": []map[string]any{
			{"host": f.http.HostPort, "protocols": []string{"https", "http"}, "methods": []string{"GET"}, "paths": []string{"/api/**"}},
			{"host": f.https.HostPort, "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/api/**"}}},
		"tls_trust_anchors": f.ca.pem,
		"target_credential": map[string]any{"type": "token", "bearer_token": betaToken}})
	c := f.credential(half, "modes", nil)
	proxy := f.proxyURL().String()
	mode := func(ts map[string]any) { a.editDefault(func(b map[string]any) { b["transport_security"] = ts }) }
	tlsGet := func(t *testing.T, rawURL string) (int, string) {
		st, body, _, err := proxiedGet(t, proxy, rawURL, c.Secret, f.proxyPool, nil)
		if err != nil {
			t.Fatal(err)
		}
		return st, body
	}
	tlsToPlain := "https://" + f.http.HostPort + "/api/items"

	t.Run("disabled", func(t *testing.T) {
		mode(map[string]any{"selection": "disabled"})
		f.https.Reset()
		if st, _ := connect(t, f, "", f.https.HostPort); st != http.StatusForbidden {
			t.Fatalf("CONNECT: %d, want 403", st)
		}
		wantOrigin(t, f.https, 0, "refused tunnel")
		f.http.Reset()
		if st := plainGet(t, f, "", f.http.URL+"/api/items", c.Secret); st != http.StatusOK {
			t.Fatalf("plain: %d, want 200", st)
		}
		wantOrigin(t, f.http, 1, "plain request")
	})
	t.Run("client-only", func(t *testing.T) {
		mode(map[string]any{"selection": "client-only"})
		f.http.Reset()
		if st := plainGet(t, f, "", f.http.URL+"/api/items", c.Secret); st != http.StatusForbidden {
			t.Fatalf("plain: %d, want 403", st)
		}
		wantOrigin(t, f.http, 0, "refused plain request")
		// TLS from the client to the plain origin's port: the origin gets plain HTTP with the Host as asked.
		if st, body := tlsGet(t, tlsToPlain); st != http.StatusOK {
			t.Fatalf("TLS to a plain origin: %d %s", st, body)
		}
		got := only(t, f.http)
		if got.Proto != "HTTP/1.1" || got.Host != f.http.HostPort {
			t.Errorf("origin got %s Host %s", got.Proto, got.Host)
		}
		checkInjected(t, got, betaToken, c.Secret)
	})
	t.Run("client-server strict", func(t *testing.T) {
		mode(map[string]any{"selection": "client-server", "allow_non_encrypted": false})
		f.http.Reset()
		if st := plainGet(t, f, "", f.http.URL+"/api/items", c.Secret); st != http.StatusForbidden {
			t.Fatalf("plain: %d, want 403", st)
		}
		wantOrigin(t, f.http, 0, "refused plain request")
		f.https.Reset()
		if st, body := tlsGet(t, f.https.URL+"/api/items"); st != http.StatusOK {
			t.Fatalf("TLS: %d %s", st, body)
		}
		wantOrigin(t, f.https, 1, "TLS request")
		// The TLS origin is not reached in plain HTTP in this mode: a TLS-speaking port stays TLS.
		if st, _ := tlsGet(t, tlsToPlain); st != http.StatusBadGateway {
			t.Fatalf("TLS to a plain origin in client-server: %d, want 502", st)
		}
	})
	t.Run("refused combinations", func(t *testing.T) {
		body := func(ts map[string]any) map[string]any {
			return map[string]any{"name": "default", "active": true,
				"network": map[string]any{"clients": []string{"0.0.0.0/0"}, "targets": []string{"*"}}, "transport_security": ts}
		}
		a.refused("PUT", cfgDefaultConn, body(map[string]any{"selection": "disabled", "allow_non_encrypted": true}), "SemanticError", "transport_security.allow_non_encrypted")
		a.refused("PUT", cfgDefaultConn, body(map[string]any{"selection": "disabled", "host_certification_method": map[string]any{"selection": "generate"}}),
			"SemanticError", "transport_security.host_certification_method")
		a.refused("PUT", cfgDefaultConn, body(map[string]any{"selection": "tls-everywhere"}), "SemanticError", "transport_security.selection")
	})
	t.Run("TLS minimum versions", func(t *testing.T) {
		mode(map[string]any{"selection": "client-server", "allow_non_encrypted": true})
		sp := a.create(cfgSettings, map[string]any{"name": "tls13", "idle_timeout": 900, "session_timeout": 0,
			"client_tls_min_version": "TLSv1_3", "server_tls_min_version": "TLSv1_2"})
		a.editDefault(func(b map[string]any) { b["policies"].(map[string]any)["settings"] = sp })
		tls12 := func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }
		f.https.Reset()
		if _, _, _, err := proxiedGet(t, proxy, f.https.URL+"/api/items", c.Secret, f.proxyPool, tls12); err == nil {
			t.Fatal("a TLS 1.2 client passed a TLS 1.3 minimum")
		}
		wantOrigin(t, f.https, 0, "TLS 1.2 client")
		if st, body := tlsGet(t, f.https.URL+"/api/items"); st != http.StatusOK {
			t.Fatalf("TLS 1.3 client: %d %s", st, body)
		}
		// The target side: an origin that speaks at most TLS 1.2 fails a TLS 1.3 server minimum.
		old := startTLS12Origin(t, f)
		oldTarget := f.gh.Create(proxyAPI+"/api-targets", f.adm, map[string]any{"name": "old-tls", "roles": []map[string]string{{"id": f.roleID}},
			"authorized_endpoints": []map[string]any{{"host": old, "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/**"}}},
			"tls_trust_anchors":    f.ca.pem, "target_credential": map[string]any{"type": "token", "bearer_token": "old-token"}})
		oc := f.credential(oldTarget, "old", nil)
		getOld := func() int {
			st, _, _, err := proxiedGet(t, proxy, "https://"+old+"/x", oc.Secret, f.proxyPool, nil)
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
		if st := getOld(); st != http.StatusOK {
			t.Fatalf("TLS 1.2 origin with a TLS 1.2 minimum: %d", st)
		}
		a.edit(cfgSettings+"/"+sp, func(b map[string]any) { b["server_tls_min_version"] = "TLSv1_3" })
		a.commit()
		if st := getOld(); st != http.StatusBadGateway {
			t.Fatalf("TLS 1.2 origin with a TLS 1.3 minimum: %d, want 502", st)
		}
	})
}

// startTLS12Origin serves "old" over TLS 1.2 at most, with a certificate the fixture's CA issued.
func startTLS12Origin(t *testing.T, f *fixture) string {
	t.Helper()
	cert := f.ca.leaf(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("old")) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
