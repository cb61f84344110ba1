package policy

import (
	"errors"
	"strings"
)

// ExtenderNATPrefix starts a NAT target host that routes through an extender.
const ExtenderNATPrefix = "extender:"

var errExtenderPrefix = errors.New("extender routing prefix must be 1-64 letters, digits, '-', '_' or '.'")

// ParseExtenderNAT splits a NAT target host of the form extender:<prefix> or extender:<prefix>/host[:port]. ok is
// false when nat does not name an extender at all; addr is the canonical host[:port] to dial inside the segment,
// or "" to dial the endpoint's own host:port there.
func ParseExtenderNAT(nat string) (prefix, addr string, ok bool, err error) {
	rest, ok := strings.CutPrefix(strings.ToLower(nat), ExtenderNATPrefix)
	if !ok {
		return "", "", false, nil
	}
	prefix, hostport, hasAddr := strings.Cut(rest, "/")
	if !ValidExtenderPrefix(prefix) {
		return "", "", true, errExtenderPrefix
	}
	if !hasAddr {
		return prefix, "", true, nil
	}
	hp, err := parseHostPort(hostport, false)
	if err != nil {
		return "", "", true, err
	}
	return prefix, hp.String(), true, nil
}

// ValidExtenderPrefix reports whether p can be an extender's routing prefix. Prefixes are compared in lower case.
func ValidExtenderPrefix(p string) bool {
	if p == "" || len(p) > 64 {
		return false
	}
	for _, c := range p {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// normalizeNAT is the canonical form of a valid NAT target host, or nat unchanged when it does not parse.
func normalizeNAT(nat string) string {
	if prefix, addr, ok, err := ParseExtenderNAT(nat); ok {
		if err != nil {
			return nat
		}
		if addr == "" {
			return ExtenderNATPrefix + prefix
		}
		return ExtenderNATPrefix + prefix + "/" + addr
	}
	if hp, err := parseHostPort(nat, false); err == nil {
		return hp.String()
	}
	return nat
}

func validateNAT(nat string) error {
	if _, _, ok, err := ParseExtenderNAT(nat); ok {
		return err
	}
	_, err := parseHostPort(nat, false)
	return err
}
