package connpolicy

import (
	"fmt"
	"net/netip"
	"strings"
)

// Target is one element of a policy's network.targets (or of an inband domain list): a CIDR prefix or address,
// or a domain name, "*.suffix" or "*".
type Target struct {
	prefix netip.Prefix
	domain string
}

// ParseTarget parses a target entry; names are compared lower-case and without a trailing dot.
func ParseTarget(s string) (Target, error) {
	s = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Masked() != p {
			return Target{}, fmt.Errorf("host bits are set; did you mean %s?", p.Masked())
		}
		return Target{prefix: p}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return Target{prefix: netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())}, nil
	}
	if s == "*" {
		return Target{domain: "*"}, nil
	}
	if err := checkName(strings.TrimPrefix(s, "*.")); err != nil {
		return Target{}, fmt.Errorf("must be an IP address, a CIDR prefix, a domain name, *.domain or *")
	}
	return Target{domain: s}, nil
}

// ParseAddressTarget parses an entry that must be an address or CIDR prefix (a domain list's "address" entries).
func ParseAddressTarget(s string) (Target, error) {
	t, err := ParseTarget(s)
	if err == nil && !t.prefix.IsValid() {
		err = fmt.Errorf("must be an IP address or a CIDR prefix")
	}
	return t, err
}

// ParseHostName checks a plain host name (no wildcard), as a fixed server address may be.
func ParseHostName(s string) error {
	if s == "" || strings.HasPrefix(s, "*") {
		return fmt.Errorf("bad host name")
	}
	return checkName(strings.ToLower(strings.TrimSuffix(s, ".")))
}

func checkName(name string) error {
	for _, l := range strings.Split(name, ".") {
		if l == "" || len(l) > 63 || strings.ContainsFunc(l, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-')
		}) || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("bad host name")
		}
	}
	return nil
}

// Matches reports whether the entry covers the target, given as a host name (lower-case, no trailing dot) or an
// IP literal (addr valid).
func (t Target) Matches(host string, addr netip.Addr) bool {
	if t.prefix.IsValid() {
		return addr.IsValid() && t.prefix.Contains(addr)
	}
	if addr.IsValid() {
		// Domain entries match names only: a request for an address never matches a name rule, so a name rule
		// cannot be side-stepped or widened by a DNS answer.
		return false
	}
	switch {
	case t.domain == "*":
		return true
	case strings.HasPrefix(t.domain, "*."):
		return strings.HasSuffix(host, t.domain[1:])
	}
	return host == t.domain
}

// ParseClient parses one network.clients entry: an address or a CIDR prefix.
func ParseClient(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Masked() != p {
			return p, fmt.Errorf("host bits are set; did you mean %s?", p.Masked())
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("must be an IP address or CIDR prefix")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// normalizeHost lower-cases a requested host, strips brackets and a trailing dot, and parses an IP literal.
func normalizeHost(targetHost string) (string, netip.Addr) {
	host := strings.ToLower(strings.TrimSuffix(strings.Trim(targetHost, "[]"), "."))
	addr, err := netip.ParseAddr(host)
	if err == nil {
		addr = addr.Unmap().WithZone("")
	}
	return host, addr
}
