package policy

import (
	"net/netip"
	"strings"
)

// ValidateCIDRList parses the source addresses a proxy credential may be used
// from: single IPv4 or IPv6 addresses (which become /32 or /128 prefixes) and
// CIDR prefixes. Surrounding spaces are ignored. It refuses prefixes with host
// bits set ("10.0.0.1/8"), because silently masking them would allow more
// than the admin may have meant; zones; and IPv4-mapped IPv6 forms, because
// AddrAllowed compares IPv4 clients in their IPv4 form. FieldError.Field is
// "[i]"; callers prefix it with the field name.
func ValidateCIDRList(list []string) ([]netip.Prefix, []FieldError) {
	var (
		out  []netip.Prefix
		errs []FieldError
	)
	for i, s := range list {
		s = strings.TrimSpace(s)
		p, msg := parseSource(s)
		if msg != "" {
			errs = append(errs, FieldError{Field: index("", i), Msg: msg})
			continue
		}
		out = append(out, p)
	}
	return out, errs
}

func parseSource(s string) (netip.Prefix, string) {
	if strings.Contains(s, "%") {
		return netip.Prefix{}, "zones are not allowed"
	}
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, "must be an IP address or CIDR prefix"
		}
		if p.Masked() != p {
			return netip.Prefix{}, "host bits are set; did you mean " + p.Masked().String() + "?"
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, "must be an IP address or CIDR prefix"
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, "use the IPv4 form of an IPv4-mapped address"
	}
	return p, ""
}

// AddrAllowed reports whether addr falls within one of prefixes. An empty
// list allows every valid address; an invalid address is never allowed.
// IPv4-mapped IPv6 addresses (as a dual-stack listener reports IPv4 clients)
// are unmapped and zones dropped before the comparison.
func AddrAllowed(prefixes []netip.Prefix, addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	if len(prefixes) == 0 {
		return true
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
