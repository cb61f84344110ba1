package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"slices"
	"time"
)

const (
	serverValidity = 365 * 24 * time.Hour
	// renewServerBefore leaves a month of margin for a process that runs
	// without restart: ServerCertificate is normally called at start-up.
	renewServerBefore = 30 * 24 * time.Hour
)

// defaultServerHosts are always in the management certificate so that local
// tools (the CLI, health checks) can connect without extra configuration.
var defaultServerHosts = []string{"localhost", "127.0.0.1", "::1"}

// ServerCertificate returns a certificate for the management API, valid one
// year for hosts plus localhost, 127.0.0.1 and ::1. hosts are DNS names or IP
// addresses; a ":port" suffix is ignored and unspecified addresses (0.0.0.0,
// ::) are skipped, so the host part of a listen address can be passed as is.
//
// The certificate and its sealed key are kept in the CA directory and reused
// across restarts; a new one is issued when the set of names differs, when it
// is within 30 days of expiry, or when it was not issued by the current
// intermediate.
func (c *CA) ServerCertificate(hosts []string) (*tls.Certificate, error) {
	if c.dir == "" {
		return nil, errors.New("server certificate: this CA has no directory (a signing CA from FromSigner)")
	}
	names, err := serverNames(hosts)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	c.serverMu.Lock()
	defer c.serverMu.Unlock()
	now := c.now()
	if c.serverCrt != nil && c.serverCertUsable(c.serverCrt.Leaf, names, now) {
		return c.serverCrt, nil
	}
	crt, err := c.readServerCert()
	switch {
	case err == nil && c.serverCertUsable(crt.Leaf, names, now):
		c.serverCrt = crt
		return crt, nil
	case err == nil:
		c.log.Info("ca: server certificate names changed or expiry near, re-issuing")
	case errors.Is(err, fs.ErrNotExist):
	default:
		// The certificate is ours to replace at will; a damaged one is
		// reported and re-issued rather than blocking start-up.
		c.log.Warn("ca: cannot load server certificate, re-issuing", "err", err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("server certificate: generate key: %w", err)
	}
	crt, err = c.mintWithKey(names[0], now, key, now.Add(serverValidity), names[1:]...)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	if err := c.writeKey(Dir(c.dir), serverKeyFile, aadServerKey, key); err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	if err := Dir(c.dir).WriteFile(serverCertFile, pemCert(crt.Certificate...), 0o644); err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	c.log.Info("ca: issued server certificate", "dns_names", crt.Leaf.DNSNames, "ip_addresses", crt.Leaf.IPAddresses, "not_after", crt.Leaf.NotAfter)
	c.serverCrt = crt
	return crt, nil
}

// serverNames parses hosts and appends the defaults, in order, without
// duplicates.
func serverNames(hosts []string) ([]certName, error) {
	var names []certName
	seen := make(map[string]bool)
	for _, h := range append(slices.Clone(hosts), defaultServerHosts...) {
		if h == "" {
			continue
		}
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		n, err := parseName(h)
		if err != nil {
			return nil, err
		}
		if n.ip.IsUnspecified() || seen[n.key()] {
			continue
		}
		seen[n.key()] = true
		names = append(names, n)
	}
	return names, nil
}

func (c *CA) serverCertUsable(leaf *x509.Certificate, want []certName, now time.Time) bool {
	if now.Before(leaf.NotBefore) || !now.Before(leaf.NotAfter.Add(-renewServerBefore)) {
		return false
	}
	if leaf.CheckSignatureFrom(c.inter) != nil {
		return false
	}
	have := slices.Clone(leaf.DNSNames)
	for _, ip := range leaf.IPAddresses {
		a, _ := netip.AddrFromSlice(ip)
		have = append(have, a.Unmap().String())
	}
	var wantKeys []string
	for _, n := range want {
		wantKeys = append(wantKeys, n.key())
	}
	slices.Sort(have)
	slices.Sort(wantKeys)
	return slices.Equal(have, wantKeys)
}

func (c *CA) readServerCert() (*tls.Certificate, error) {
	certs, err := readCerts(Dir(c.dir), serverCertFile)
	if err != nil {
		return nil, err
	}
	key, err := c.readKey(Dir(c.dir), serverKeyFile, aadServerKey, certs[0])
	if err != nil {
		return nil, err
	}
	crt := &tls.Certificate{PrivateKey: key, Leaf: certs[0]}
	for _, x := range certs {
		crt.Certificate = append(crt.Certificate, x.Raw)
	}
	return crt, nil
}
