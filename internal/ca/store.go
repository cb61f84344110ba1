package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// Files in the CA directory. Certificates are PEM; keys are PKCS #8 DER sealed
// by the Sealer, so no key is ever written in clear.
const (
	rootCertFile   = "root.crt"
	rootKeyFile    = "root.key.sealed"
	interCertFile  = "intermediate.crt"
	interKeyFile   = "intermediate.key.sealed"
	serverCertFile = "server.crt"
	serverKeyFile  = "server.key.sealed"
)

// AADs binding each sealed key to its role: a root key file copied over the
// intermediate's fails to open instead of being used in its place.
const (
	aadRootKey   = "ca:root:key"
	aadInterKey  = "ca:intermediate:key"
	aadServerKey = "ca:server:key"
)

const (
	rootValidityYears  = 10
	interValidityYears = 5
	// renewInterBefore is how long before expiry Open re-issues the
	// intermediate, so it never lapses while the process runs.
	renewInterBefore = 30 * 24 * time.Hour
	// backdate covers clients whose clocks run slow.
	backdate = time.Hour
)

var errNotIssuedByRoot = errors.New("intermediate not issued by root")

// load reads the CA from c.files, creating what is missing.
func (c *CA) load(now time.Time) error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	root, err := c.readCert(rootCertFile)
	if errors.Is(err, fs.ErrNotExist) {
		// Keys are written before their certificates, so a missing root
		// certificate means no CA was ever completed here; stray key files
		// from an interrupted first start are overwritten.
		return c.create(now)
	}
	if err != nil {
		return err
	}
	if !root.IsCA {
		return fmt.Errorf("%s is not a CA certificate", rootCertFile)
	}
	c.root = root

	inter, err := c.readCert(interCertFile)
	if err == nil {
		err = inter.CheckSignatureFrom(root)
		if err != nil {
			err = fmt.Errorf("%w: %w", errNotIssuedByRoot, err)
		}
	}
	switch {
	case err == nil && now.Before(inter.NotAfter.Add(-renewInterBefore)):
		key, err := c.readKey(c.files, interKeyFile, aadInterKey, inter)
		if err != nil {
			return err
		}
		c.inter, c.interKey = inter, key
		return nil
	case err == nil:
		c.log.Info("ca: intermediate certificate expires soon, re-issuing", "not_after", inter.NotAfter)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, errNotIssuedByRoot):
		c.log.Warn("ca: intermediate certificate missing or not issued by root, re-issuing", "err", err)
	default:
		return err
	}
	rootKey, err := c.readKey(c.files, rootKeyFile, aadRootKey, root)
	if err != nil {
		return err
	}
	return c.issueIntermediate(rootKey, now)
}

// create makes a new root and intermediate. The root key is a local variable
// only: once the intermediate is signed and both keys are sealed to disk, it
// becomes garbage. (Go offers no reliable way to zero key memory.)
func (c *CA) create(now time.Time) error {
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate root key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "Gatehouse Root CA", Organization: []string{"Gatehouse"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.AddDate(rootValidityYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, rootKey.Public(), rootKey)
	if err != nil {
		return fmt.Errorf("create root certificate: %w", err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("create root certificate: %w", err)
	}
	if err := c.writeKey(c.files, rootKeyFile, aadRootKey, rootKey); err != nil {
		return err
	}
	if err := c.files.WriteFile(rootCertFile, pemCert(der), 0o644); err != nil {
		return err
	}
	c.root = root
	c.log.Info("ca: created root certificate", "subject", root.Subject.String(), "not_after", root.NotAfter)
	return c.issueIntermediate(rootKey, now)
}

func (c *CA) issueIntermediate(rootKey crypto.Signer, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate intermediate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "Gatehouse Proxy CA", Organization: []string{"Gatehouse"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              earliest(now.AddDate(interValidityYears, 0, 0), c.root.NotAfter),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.root, key.Public(), rootKey)
	if err != nil {
		return fmt.Errorf("create intermediate certificate: %w", err)
	}
	inter, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("create intermediate certificate: %w", err)
	}
	if err := c.writeKey(c.files, interKeyFile, aadInterKey, key); err != nil {
		return err
	}
	if err := c.files.WriteFile(interCertFile, pemCert(der), 0o644); err != nil {
		return err
	}
	c.inter, c.interKey = inter, key
	c.log.Info("ca: issued intermediate certificate", "subject", inter.Subject.String(), "not_after", inter.NotAfter)
	return nil
}

// readCert reads the first certificate of a PEM file of the CA.
func (c *CA) readCert(name string) (*x509.Certificate, error) {
	certs, err := readCerts(c.files, name)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

func readCerts(files Files, path string) ([]*x509.Certificate, error) {
	b, err := files.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		crt, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("read certificate %s: %w", path, err)
		}
		certs = append(certs, crt)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("read certificate %s: no PEM certificate", path)
	}
	return certs, nil
}

// readKey unseals a private key and checks that it belongs to crt, so a
// mismatched pair fails at startup rather than at the first handshake.
func (c *CA) readKey(files Files, name, aad string, crt *x509.Certificate) (crypto.Signer, error) {
	sealed, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	der, err := c.sealer.Open(sealed, []byte(aad))
	if err != nil {
		return nil, fmt.Errorf("unseal key %s: %w", name, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse key %s: %w", name, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("parse key %s: %T is not a signing key", name, k)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(crt.PublicKey) {
		return nil, fmt.Errorf("key %s does not match its certificate", name)
	}
	return signer, nil
}

func (c *CA) writeKey(files Files, name, aad string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("marshal key %s: %w", name, err)
	}
	sealed, err := c.sealer.Seal(der, []byte(aad))
	if err != nil {
		return fmt.Errorf("seal key %s: %w", name, err)
	}
	return files.WriteFile(name, sealed, 0o600)
}

// Files is where a CA keeps its certificates (PEM) and sealed keys, by file name. ReadFile reports a missing file
// with an error wrapping fs.ErrNotExist. A directory is the default; a cluster keeps its CA in the database so that
// every node serves the same one.
type Files interface {
	ReadFile(name string) ([]byte, error)
	WriteFile(name string, data []byte, perm fs.FileMode) error
}

// Dir is Files in a directory of the local disk, each file replaced atomically.
type Dir string

// ReadFile implements Files.
func (d Dir) ReadFile(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(string(d), name))
}

// WriteFile implements Files.
func (d Dir) WriteFile(name string, data []byte, perm fs.FileMode) error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return err
	}
	return writeFile(filepath.Join(string(d), name), data, perm)
}

// writeFile replaces path atomically, so a crash leaves the old or the new
// content, never a torn file.
func writeFile(path string, data []byte, perm fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func pemCert(der ...[]byte) []byte {
	var out []byte
	for _, d := range der {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	return out
}

// randomSerial returns a random positive 128-bit serial number; CAs must use
// at least 64 bits of randomness (CA/Browser Forum baseline requirements).
func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic("ca: random serial: " + err.Error())
	}
	return n.Add(n, big.NewInt(1))
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
