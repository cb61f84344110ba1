package cli_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExtenders(t *testing.T) {
	h := newHarness(t)
	h.loginAdmin()
	var created struct{ ID, Token string }
	h.jsonOut(&created, "extenders", "create", "--name", "site-a-1", "--prefix", "site-a")
	if created.ID == "" || !strings.HasPrefix(created.Token, "gx_") {
		t.Fatalf("create: %+v", created)
	}
	out := h.ok("", "extenders", "list")
	if !strings.Contains(out, "site-a-1") || !strings.Contains(out, "PREFIX") || strings.Contains(out, created.Token) {
		t.Fatalf("list:\n%s", out)
	}
	var rotated struct{ ID, Token string }
	h.jsonOut(&rotated, "extenders", "token", "site-a-1")
	if rotated.ID != created.ID || rotated.Token == "" || rotated.Token == created.Token {
		t.Fatalf("token: %+v after %+v", rotated, created)
	}
	if out := h.ok("", "extenders", "token", "site-a-1"); !strings.Contains(out, "token: gx_") {
		t.Fatalf("token in table mode:\n%s", out)
	}
	h.ok("", "extenders", "delete", "site-a-1")
	if out := h.ok("", "extenders", "list"); strings.Contains(out, "site-a-1") {
		t.Fatalf("deleted extender still listed:\n%s", out)
	}
}

func TestExtenderCertificates(t *testing.T) {
	h := newHarness(t)
	h.loginAdmin()
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "ext.crt"), filepath.Join(dir, "ext.key")
	h.fails(1, []string{"--cert-out"}, "", "extenders", "create", "--name", "site-c-1", "--prefix", "site-c", "--certificate")
	out := h.ok("", "extenders", "create", "--name", "site-c-1", "--prefix", "site-c", "--certificate", "--cert-out", crt, "--key-out", key)
	pair, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		t.Fatalf("the written certificate and key: %v\n%s", err, out)
	}
	if st, _ := os.Stat(key); st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	got := h.listJSON("extenders", "list")
	if len(got) != 1 || got[0]["authentication"] != "certificate" {
		t.Fatalf("list: %v", got)
	}
	first := got[0]["certificate"].(map[string]any)["fingerprint_sha256"]
	if !strings.Contains(out, first.(string)) || leaf.Subject.CommonName != got[0]["id"] {
		t.Fatalf("create output %q, certificate CN %q, listed %v", out, leaf.Subject.CommonName, got[0])
	}
	// A reissue never overwrites a key file: the old key may be the only copy someone still needs.
	h.fails(1, []string{"exists"}, "", "extenders", "certificate", "site-c-1", "--cert-out", filepath.Join(dir, "new.crt"), "--key-out", key)
	if fp := h.listJSON("extenders", "list")[0]["certificate"].(map[string]any)["fingerprint_sha256"]; fp != first {
		t.Fatal("a reissue refused for its output files still revoked the certificate")
	}
	if _, err := os.Stat(filepath.Join(dir, "new.crt")); err == nil {
		t.Fatal("a refused reissue wrote a certificate file")
	}
	h.ok("", "extenders", "certificate", "site-c-1", "--cert-out", filepath.Join(dir, "new2.crt"), "--key-out", filepath.Join(dir, "new2.key"))
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, "new2.crt"), filepath.Join(dir, "new2.key")); err != nil {
		t.Fatal(err)
	}
	again := h.listJSON("extenders", "list")[0]["certificate"].(map[string]any)["fingerprint_sha256"]
	if again == first {
		t.Fatal("the reissue kept the old certificate")
	}
	h.fails(1, []string{"certificate"}, "", "extenders", "token", "site-c-1")
}
