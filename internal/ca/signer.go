package ca

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
)

// FromSigner returns a CA that mints leaves with an uploaded signing CA (a connection policy's signing_ca)
// instead of Gatehouse's own intermediate: leaves chain to cert, and are served with it. It keeps nothing on disk;
// ServerCertificate is not available on it.
func FromSigner(cert *x509.Certificate, key crypto.Signer) (*CA, error) {
	if !cert.IsCA || cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("signing ca: the certificate is not a CA allowed to sign certificates")
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, errors.New("signing ca: the private key does not belong to the certificate")
	}
	c := &CA{root: cert, inter: cert, interKey: key, log: slog.New(slog.DiscardHandler)}
	c.chainPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	return c, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		panic(fmt.Sprintf("ca: public key type %T has no Equal", a))
	}
	return ak.Equal(b)
}
