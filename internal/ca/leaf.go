package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// renewLeafBefore is how long before a cached leaf expires it is replaced, so
// a leaf handed out is always good for a while longer than one connection.
const renewLeafBefore = time.Hour

var errMintPanicked = errors.New("leaf minting panicked")

// ErrMintLimited is returned when a leaf would have to be minted beyond MintLimit; the handshake that asked fails.
var ErrMintLimited = errors.New("ca: leaf minting rate limit reached")

// LeafFor returns a leaf certificate for name, a DNS name or an IP address
// (IPv6 with or without brackets), chained to the intermediate. Leaves are
// cached by canonical name and re-minted within an hour of expiry; concurrent
// calls for the same name mint once. Invalid names give ErrInvalidName.
func (c *CA) LeafFor(name string) (*tls.Certificate, error) {
	n, err := parseName(name)
	if err != nil {
		return nil, fmt.Errorf("leaf for %q: %w", name, err)
	}
	now := c.now()
	size := c.CacheSize
	if size <= 0 {
		size = DefaultCacheSize
	}
	return c.leaves.get(n.key(), now, size, func() (*tls.Certificate, time.Time, error) {
		if !c.MintLimit.Allow() {
			if c.OnMintLimited != nil {
				c.OnMintLimited()
			}
			return nil, time.Time{}, fmt.Errorf("leaf for %q: %w", name, ErrMintLimited)
		}
		c.minted.Add(1)
		crt, err := c.mint(n, now)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("leaf for %q: %w", name, err)
		}
		window := min(renewLeafBefore, c.leafValidity()/2)
		return crt, crt.Leaf.NotAfter.Add(-window), nil
	})
}

// LeafForConn returns the leaf to serve on an intercepted connection: for
// serverName (the client's SNI) when the client sent one, else for
// fallbackHost (the host of the CONNECT request, without port). Clients send
// no SNI when they connect to an IP address, and some old clients never do.
//
// The proxy uses it in a per-connection tls.Config:
//
//	GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
//		return ca.LeafForConn(h.ServerName, connectHost)
//	}
//
// Whether an SNI that differs from the CONNECT host is acceptable is the
// proxy's policy, not the CA's.
func (c *CA) LeafForConn(serverName, fallbackHost string) (*tls.Certificate, error) {
	if serverName != "" {
		return c.LeafFor(serverName)
	}
	return c.LeafFor(fallbackHost)
}

// GetCertificate mints or fetches the leaf for the client's SNI and can be used
// directly as tls.Config.GetCertificate. Without SNI it falls back to the
// local IP address the client connected to, which is right when the client
// dialled that address; an intercepting proxy that knows the requested host
// should use LeafForConn instead.
func (c *CA) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if hello.ServerName != "" {
		return c.LeafFor(hello.ServerName)
	}
	if hello.Conn != nil {
		if ap, err := netip.ParseAddrPort(hello.Conn.LocalAddr().String()); err == nil {
			return c.LeafFor(ap.Addr().WithZone("").String())
		}
	}
	return nil, fmt.Errorf("get certificate: no server name and no local address: %w", ErrInvalidName)
}

func (c *CA) leafValidity() time.Duration {
	if c.LeafValidity > 0 {
		return c.LeafValidity
	}
	return DefaultLeafValidity
}

// mint issues a leaf for n under a fresh P-256 key. A key per leaf keeps one
// leaked key from impersonating every host. BenchmarkLeafFor shows key
// generation adds about a quarter to the cost of a mint, which the cache pays
// once per host per day, so sharing one key would buy little.
func (c *CA) mint(n certName, now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate leaf key: %w", err)
	}
	return c.mintWithKey(n, now, key, now.Add(c.leafValidity()))
}

// mintWithKey signs a server certificate for n (and any more names) with the
// intermediate, valid from an hour before now until notAfter (capped at the
// intermediate's expiry, which no leaf may outlive).
func (c *CA) mintWithKey(n certName, now time.Time, key crypto.Signer, notAfter time.Time, more ...certName) (*tls.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: n.key()},
		NotBefore:             now.Add(-backdate),
		NotAfter:              earliest(notAfter, c.inter.NotAfter),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, m := range append([]certName{n}, more...) {
		if m.ip.IsValid() {
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(m.ip.AsSlice()))
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, m.dns)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.inter, key.Public(), c.interKey)
	if err != nil {
		return nil, fmt.Errorf("sign leaf: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("sign leaf: %w", err)
	}
	return &tls.Certificate{
		Certificate: [][]byte{der, c.inter.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}, nil
}
