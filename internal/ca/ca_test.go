package ca_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/ca"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/google/go-cmp/cmp"
)

var _ ca.Sealer = (*secrets.Keyring)(nil)

func keyring(t testing.TB, fill byte) *secrets.Keyring {
	t.Helper()
	k, err := secrets.NewKeyring(bytes.Repeat([]byte{fill}, secrets.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func openCA(t testing.TB, dir string) *ca.CA {
	t.Helper()
	c, err := ca.Open(dir, keyring(t, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOpenCreatesCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	c := openCA(t, dir)

	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("CA dir mode %04o, want 0700", st.Mode().Perm())
	}
	root, inter := c.Root(), c.Chain()[0]
	if got := c.Chain()[1]; got != root {
		t.Error("Chain()[1] is not the root")
	}
	if root.Subject.CommonName != "Gatehouse Root CA" || !root.IsCA {
		t.Errorf("root subject %q IsCA=%v", root.Subject, root.IsCA)
	}
	if inter.Subject.CommonName != "Gatehouse Proxy CA" || !inter.IsCA || inter.MaxPathLen != 0 || !inter.MaxPathLenZero {
		t.Errorf("intermediate subject %q IsCA=%v MaxPathLen=%d zero=%v", inter.Subject, inter.IsCA, inter.MaxPathLen, inter.MaxPathLenZero)
	}
	if err := inter.CheckSignatureFrom(root); err != nil {
		t.Errorf("intermediate not signed by root: %v", err)
	}
	if y := root.NotAfter.Year() - root.NotBefore.Year(); y != 10 {
		t.Errorf("root valid %d years, want 10", y)
	}
	if y := inter.NotAfter.Year() - inter.NotBefore.Year(); y != 5 {
		t.Errorf("intermediate valid %d years, want 5", y)
	}
	for _, name := range []string{"root.key.sealed", "intermediate.key.sealed"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %04o, want 0600", name, st.Mode().Perm())
		}
	}
}

func TestReopenLoadsSameCA(t *testing.T) {
	dir := t.TempDir()
	a := openCA(t, dir)
	b := openCA(t, dir)
	if !a.Root().Equal(b.Root()) {
		t.Error("reopened CA has a different root")
	}
	if !a.Chain()[0].Equal(b.Chain()[0]) {
		t.Error("reopened CA has a different intermediate")
	}
	if a.ChainPEM() != b.ChainPEM() {
		t.Error("reopened CA has a different chain PEM")
	}
	// A leaf from the reopened CA must verify against the first one's root:
	// the intermediate key really was restored, not regenerated.
	leaf, err := b.LeafFor("reopen.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.Leaf.CheckSignatureFrom(a.Chain()[0]); err != nil {
		t.Errorf("leaf from reopened CA not signed by original intermediate: %v", err)
	}
}

func TestOpenWithWrongMasterKeyFails(t *testing.T) {
	dir := t.TempDir()
	openCA(t, dir)
	_, err := ca.Open(dir, keyring(t, 2), nil)
	if !errors.Is(err, secrets.ErrUnknownKey) {
		t.Fatalf("Open with another master key: err = %v, want ErrUnknownKey", err)
	}
}

func TestOpenRejectsSwappedKeyFiles(t *testing.T) {
	dir := t.TempDir()
	openCA(t, dir)
	rootKey, err := os.ReadFile(filepath.Join(dir, "root.key.sealed"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "intermediate.key.sealed"), rootKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Open(dir, keyring(t, 1), nil); !errors.Is(err, secrets.ErrDecrypt) {
		t.Fatalf("Open with root key in place of intermediate key: err = %v, want ErrDecrypt", err)
	}
}

func TestOpenReissuesMissingIntermediate(t *testing.T) {
	dir := t.TempDir()
	a := openCA(t, dir)
	if err := os.Remove(filepath.Join(dir, "intermediate.crt")); err != nil {
		t.Fatal(err)
	}
	b := openCA(t, dir)
	if !a.Root().Equal(b.Root()) {
		t.Fatal("root changed when only the intermediate was missing")
	}
	if b.Chain()[0].Equal(a.Chain()[0]) {
		t.Fatal("intermediate not re-issued")
	}
	if err := b.Chain()[0].CheckSignatureFrom(a.Root()); err != nil {
		t.Errorf("re-issued intermediate not signed by the root: %v", err)
	}
}

func TestNoPrivateKeyInClearOnDisk(t *testing.T) {
	dir := t.TempDir()
	c := openCA(t, dir)
	if _, err := c.ServerCertificate([]string{"gatehouse.test"}); err != nil {
		t.Fatal(err)
	}
	var sealed int
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("PRIVATE KEY")) {
			t.Errorf("%s contains a PEM private key", d.Name())
		}
		if strings.HasSuffix(d.Name(), ".sealed") {
			sealed++
			if !bytes.HasPrefix(b, []byte("v1:")) {
				t.Errorf("%s is not a sealed value", d.Name())
			}
			if _, err := x509.ParsePKCS8PrivateKey(b); err == nil {
				t.Errorf("%s parses as a clear PKCS #8 key", d.Name())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if sealed != 3 {
		t.Errorf("found %d sealed key files, want 3 (root, intermediate, server)", sealed)
	}
}

func TestChainPEM(t *testing.T) {
	c := openCA(t, t.TempDir())
	rest := []byte(c.ChainPEM())
	var got []*x509.Certificate
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		crt, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, crt)
	}
	if len(got) != 2 || !got[0].Equal(c.Chain()[0]) || !got[1].Equal(c.Root()) {
		t.Fatalf("ChainPEM holds %d certificates, want intermediate then root", len(got))
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		t.Errorf("trailing data after PEM blocks: %q", rest)
	}
}

// TestInfoMatchesOpenSSL checks the displayed fingerprints against what an
// administrator comparing with `openssl x509 -fingerprint` would see.
func TestInfoMatchesOpenSSL(t *testing.T) {
	openssl := lookOpenSSL(t)
	dir := t.TempDir()
	c := openCA(t, dir)
	info := c.Info()
	root := filepath.Join(dir, "root.crt")
	field := func(args ...string) string {
		out, err := exec.Command(openssl, append([]string{"x509", "-noout", "-in", root}, args...)...).Output()
		if err != nil {
			t.Fatalf("openssl %v: %v", args, err)
		}
		_, v, _ := strings.Cut(strings.TrimSpace(string(out)), "=")
		return v
	}
	want := ca.Info{
		Subject:           c.Root().Subject.String(),
		Issuer:            c.Root().Subject.String(),
		Serial:            strings.TrimLeft(field("-serial"), "0"),
		NotBefore:         c.Root().NotBefore,
		NotAfter:          c.Root().NotAfter,
		FingerprintSHA1:   field("-fingerprint", "-sha1"),
		FingerprintSHA256: field("-fingerprint", "-sha256"),
	}
	if diff := cmp.Diff(want, info); diff != "" {
		t.Errorf("Info() mismatch (-openssl +got):\n%s", diff)
	}
	if !strings.Contains(info.Subject, "Gatehouse Root CA") {
		t.Errorf("Info().Subject = %q", info.Subject)
	}
}

func lookOpenSSL(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is not on PATH; ./scripts/test.sh installs it")
	}
	return p
}
