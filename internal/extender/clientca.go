package extender

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// ClientCertValidity is how long an extender's client certificate is valid; reissuing it revokes the old one.
const ClientCertValidity = 2 * 365 * 24 * time.Hour

// clientCAValidity outlives every certificate it issues.
const clientCAValidity = 20 * 365 * 24 * time.Hour

// ClientCA issues the client certificates agents may authenticate with instead of an enrolment token, and
// verifies them. It is a CA of its own, apart from the proxy CA that mints the leaves clients see, so no
// certificate made for one purpose is ever accepted for the other.
type ClientCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

// NewClientCA makes a new CA and returns its certificate and key in PEM; the caller seals the key at rest.
func NewClientCA(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: "Gatehouse extender client CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(clientCAValidity),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("extender client ca: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

// ParseClientCA loads a CA made by NewClientCA.
func ParseClientCA(certPEM, keyPEM []byte) (*ClientCA, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, errors.New("extender client ca: no PEM block")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("extender client ca: %w", err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("extender client ca key: %w", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("extender client ca: key does not match the certificate")
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &ClientCA{cert: cert, key: key, pool: pool}, nil
}

// IssuedCert is a new client certificate with its key: the key is shown to the creator once and never stored.
type IssuedCert struct {
	CertPEM, KeyPEM     string
	Serial, Fingerprint string
	NotAfter            time.Time
}

// Issue makes a client certificate for extender id.
func (c *ClientCA) Issue(id, name string, now time.Time) (IssuedCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return IssuedCert{}, err
	}
	serial := randomSerial()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: id, OrganizationalUnit: []string{"gatehouse extender " + truncate(name)}},
		NotBefore: now.Add(-5 * time.Minute), NotAfter: now.Add(ClientCertValidity),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return IssuedCert{}, fmt.Errorf("issue extender certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return IssuedCert{}, err
	}
	sum := sha256.Sum256(der)
	return IssuedCert{
		CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})),
		Serial:  serial.Text(16), Fingerprint: hex.EncodeToString(sum[:]), NotAfter: tmpl.NotAfter,
	}, nil
}

// Verify checks that the leaf of chain was issued by this CA for client authentication and is valid at now, and
// returns its fingerprint, by which the store finds the extender it belongs to (and which a reissue replaces).
func (c *ClientCA) Verify(chain []*x509.Certificate, now time.Time) (string, error) {
	if len(chain) == 0 {
		return "", errors.New("no client certificate")
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: c.pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return "", err
	}
	return CertFingerprint(chain[0]), nil
}

// CertFingerprint is the hex SHA-256 of a certificate's DER.
func CertFingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic("extender: random serial: " + err.Error())
	}
	return n.Add(n, big.NewInt(1))
}
