package configapi

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/ca"
	"github.com/gatehouse-dev/gatehouse/internal/connpolicy"
)

// trustedCAList is /api/configuration/policies/trusted_ca_lists: the CA certificates a connection policy's
// server_certificate_check trusts.
type trustedCAList struct {
	Name         string   `json:"name"`
	Certificates []string `json:"certificates"`
}

func (l *trustedCAList) check(c *checker) {
	c.name("name", l.Name)
	if len(l.Certificates) == 0 {
		c.fail("certificates", "must list at least one PEM CA certificate")
	}
	for i, p := range l.Certificates {
		certs, err := parseCertificates(p)
		if err == nil && len(certs) != 1 {
			err = fmt.Errorf("must hold exactly one certificate, found %d", len(certs))
		}
		if err == nil && !certs[0].IsCA {
			err = fmt.Errorf("%q is not a CA certificate", certs[0].Subject.CommonName)
		}
		if err != nil {
			c.fail(fmt.Sprintf("certificates[%d]", i), "%v", err)
		}
	}
}

// keyPair is the shape of signing CAs and X.509 identities: a certificate (chain) and its private key. The key is
// write-only: a write seals it into SealedKey (bound to the object's path) and clears it, answers show null, and
// a write that leaves it null keeps the sealed one.
type keyPair struct {
	Name string `json:"name"`
	// Certificate is PEM: the certificate first, then (for identities) its intermediates.
	Certificate string `json:"certificate"`
	// PrivateKey is PEM (PKCS #8, PKCS #1 or SEC 1), accepted on writes only.
	PrivateKey string `json:"private_key,omitempty"`
	// SealedKey is set by Gatehouse; a client sending it is refused.
	SealedKey string `json:"sealed_private_key,omitempty"`
}

// signingCA is /api/configuration/policies/signing_cas: a CA whose key mints the certificates shown to clients
// when a policy's host_certification_method is generate.
type signingCA struct{ keyPair }

// x509Identity is /api/configuration/policies/x509_identities: one certificate and key shown to every client
// when a policy's host_certification_method is fix.
type x509Identity struct{ keyPair }

func (p *signingCA) check(c *checker) {
	p.keyPair.check(c)
	if certs, err := parseCertificates(p.Certificate); err == nil && (!certs[0].IsCA || certs[0].KeyUsage != 0 && certs[0].KeyUsage&x509.KeyUsageCertSign == 0) {
		c.fail("certificate", "must be a CA certificate allowed to sign certificates")
	}
}

func (p *x509Identity) check(c *checker) {
	p.keyPair.check(c)
	if certs, err := parseCertificates(p.Certificate); err == nil && certs[0].IsCA {
		c.fail("certificate", "must be a server certificate, not a CA (upload a CA as a signing CA)")
	}
}

func (p *keyPair) check(c *checker) {
	c.name("name", p.Name)
	if _, err := parseCertificates(p.Certificate); err != nil {
		c.fail("certificate", "%v", err)
	}
}

func (p *keyPair) pair() *keyPair { return p }

// sealable is a body holding a private key.
type sealable interface{ pair() *keyPair }

func keyAAD(k *kind, key string) string { return "configapi/" + k.name + "/" + key + "/private_key" }

// sealKey runs on every client write of a signing CA or identity: it checks the key against the certificate,
// seals it, and carries the sealed key of the stored object over when the write leaves private_key out.
func (s *Service) sealKey(ctx context.Context, k *kind, key string, b body, old json.RawMessage) error {
	p := b.(sealable).pair()
	if p.SealedKey != "" {
		return syntactic("sealed_private_key", "is set by Gatehouse; send the key as private_key")
	}
	plain := p.PrivateKey
	if plain == "" {
		var prev keyPair
		if old == nil || json.Unmarshal(old, &prev) != nil || prev.SealedKey == "" {
			return semantic("private_key", "is required (PEM)")
		}
		var err error
		if plain, err = s.Store.Unseal(prev.SealedKey, keyAAD(k, key)); err != nil {
			return fmt.Errorf("unseal the stored key of %s: %w", k.href(key), err)
		}
	}
	if _, err := tls.X509KeyPair([]byte(p.Certificate), []byte(plain)); err != nil {
		// The key pair error names no key material.
		return semantic("private_key", "does not match the certificate or is not a PEM private key: "+err.Error())
	}
	sealed, err := s.Store.Seal(plain, keyAAD(k, key))
	if err != nil {
		return err
	}
	p.PrivateKey, p.SealedKey = "", sealed
	return nil
}

// presentKeyPair is what GET shows of a stored signing CA or identity: the sealed key never leaves.
func presentKeyPair(b json.RawMessage) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return b
	}
	delete(m, "sealed_private_key")
	m["private_key"] = json.RawMessage("null")
	return mustJSON(m)
}

// loadKeyPair opens a stored signing CA or identity into a TLS certificate.
func (s *Service) loadKeyPair(v *configView, k *kind, ref *Ref) (*tls.Certificate, error) {
	var p keyPair
	if err := unmarshalRef(v, k, ref, &p); err != nil {
		return nil, err
	}
	plain, err := s.Store.Unseal(p.SealedKey, keyAAD(k, ref.Key))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.href(ref.Key), err)
	}
	crt, err := tls.X509KeyPair([]byte(p.Certificate), []byte(plain))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.href(ref.Key), err)
	}
	return &crt, nil
}

// certSource builds what a host_certification_method shows clients; nil means Gatehouse's own CA.
func (s *Service) certSource(v *configView, m *hostCertMethod) (connpolicy.CertSource, error) {
	switch {
	case m == nil, m.Selection == "generate" && m.SigningCA == nil:
		return nil, nil
	case m.Selection == "generate":
		crt, err := s.loadKeyPair(v, kindSigningCAs, m.SigningCA)
		if err != nil {
			return nil, err
		}
		signer, ok := crt.PrivateKey.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("signing ca %s: the key cannot sign", m.SigningCA.Key)
		}
		return ca.FromSigner(crt.Leaf, signer)
	default:
		crt, err := s.loadKeyPair(v, kindX509Identities, m.X509Identity)
		if err != nil {
			return nil, err
		}
		return fixedCert{crt}, nil
	}
}

// fixedCert shows the same certificate to every client.
type fixedCert struct{ crt *tls.Certificate }

func (f fixedCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) { return f.crt, nil }

// trustedPool parses a trusted CA list into a pool and its PEM (the pool's identity for connection reuse).
func trustedPool(v *configView, ref *Ref) (*x509.CertPool, string, error) {
	var l trustedCAList
	if err := unmarshalRef(v, kindTrustedCALists, ref, &l); err != nil {
		return nil, "", err
	}
	pool := x509.NewCertPool()
	for _, p := range l.Certificates {
		certs, err := parseCertificates(p)
		if err != nil {
			return nil, "", fmt.Errorf("trusted ca list %s: %w", ref.Key, err)
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
	}
	return pool, strings.Join(l.Certificates, "\n"), nil
}

// parseCertificates parses PEM holding one or more certificates and nothing else.
func parseCertificates(s string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(s)
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("must hold only CERTIFICATE PEM blocks, found %s", blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %v", len(out), err)
		}
		out = append(out, c)
	}
	if len(out) == 0 || strings.TrimSpace(string(rest)) != "" {
		return nil, fmt.Errorf("must be PEM-encoded certificates")
	}
	return out, nil
}
