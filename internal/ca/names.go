package ca

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrInvalidName reports a host name that no certificate will be minted for.
var ErrInvalidName = errors.New("invalid host name")

// certName is a validated certificate subject: an IP address or a DNS name.
type certName struct {
	ip  netip.Addr // valid if the name is an IP address
	dns string     // lower case, no trailing dot; empty for IPs
}

// key returns the canonical form, used as the cache key, so "Example.COM.",
// "example.com" and "[::ffff:1.2.3.4]" vs "1.2.3.4" share one leaf.
func (n certName) key() string {
	if n.ip.IsValid() {
		return n.ip.String()
	}
	return n.dns
}

// parseName validates and canonicalizes a host as it appears in SNI, a CONNECT
// authority (without port) or a listen address: a DNS name, an IPv4 address,
// or an IPv6 address with or without brackets. Wildcards, zones, ports and
// anything else a certificate SAN cannot carry are refused.
func parseName(s string) (certName, error) {
	orig := s
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
		ip, err := netip.ParseAddr(s)
		if err != nil || !ip.Is6() {
			return certName{}, fmt.Errorf("%w: %q", ErrInvalidName, orig)
		}
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		if ip.Zone() != "" {
			return certName{}, fmt.Errorf("%w: %q: zoned address", ErrInvalidName, orig)
		}
		return certName{ip: ip.Unmap()}, nil
	}
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	if err := checkDNSName(s); err != nil {
		return certName{}, fmt.Errorf("%w: %q: %s", ErrInvalidName, orig, err)
	}
	return certName{dns: s}, nil
}

// checkDNSName accepts LDH labels, plus '_' which internal host names use and
// Go's and OpenSSL's verifiers accept. A name of only digits and dots is
// refused: it would be an IPv4 address in disguise (e.g. "127.1").
func checkDNSName(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > 253 {
		return errors.New("longer than 253 bytes")
	}
	allNumeric := true
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("empty or over-long label")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("label starts or ends with '-'")
		}
		for i := 0; i < len(label); i++ {
			switch b := label[i]; {
			case b >= 'a' && b <= 'z', b == '-', b == '_':
				allNumeric = false
			case b >= '0' && b <= '9':
			default:
				return fmt.Errorf("invalid character %q", b)
			}
		}
	}
	if allNumeric {
		return errors.New("numeric name that is not an IP address")
	}
	return nil
}
