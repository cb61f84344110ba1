package policy

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// HostPort is a canonical host and port: a lower-case DNS name without a
// trailing dot, a wildcard name "*.example.com" (rules only), or an IP address
// in netip form (IPv6 without brackets, IPv4-mapped IPv6 unmapped). Port 0
// means that none was given and the scheme's default port applies.
type HostPort struct {
	Host string
	Port uint16
}

// String returns the authority form: "example.com:8443", "[::1]:443", or the
// bare host when Port is 0.
// AppendTo appends String's form of h to b (a caller on the request path appends to a stack buffer).
func (h HostPort) AppendTo(b []byte) []byte {
	bracket := strings.Contains(h.Host, ":")
	if bracket {
		b = append(b, '[')
	}
	b = append(b, h.Host...)
	if bracket {
		b = append(b, ']')
	}
	if h.Port != 0 {
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(h.Port), 10)
	}
	return b
}

func (h HostPort) String() string {
	host := h.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if h.Port == 0 {
		return host
	}
	return host + ":" + strconv.Itoa(int(h.Port))
}

// DefaultPort returns the port implied by an absent one for the scheme (80 for
// http, 443 for https, matched case-insensitively) and 0 for any other scheme.
func DefaultPort(scheme string) uint16 {
	switch strings.ToLower(scheme) {
	case "http":
		return 80
	case "https":
		return 443
	}
	return 0
}

// ParseAuthority parses the host[:port] a client sent in a Host header, an
// absolute-form request target or a CONNECT request, and returns it in
// canonical form. Wildcards are not hosts and are refused.
func ParseAuthority(authority string) (HostPort, error) {
	hp, err := parseHostPort(authority, false)
	if err != nil {
		return HostPort{}, err
	}
	return hp, nil
}

var (
	errHostEmpty      = errors.New("host is empty")
	errHostBracket    = errors.New("invalid bracketed IPv6 address")
	errHostIPv6       = errors.New("IPv6 address must be in brackets")
	errHostZone       = errors.New("IPv6 zone is not allowed")
	errHostPort       = errors.New("port must be a number from 1 to 65535")
	errHostName       = errors.New("invalid host name")
	errHostWildcard   = errors.New("wildcard is allowed only as the whole leading label (*.example.com)")
	errHostNumericTLD = errors.New("invalid IPv4 address")
)

// parseHostPort parses host[:port]. A DNS name may end in one dot; it is
// dropped because "example.com." and "example.com" name the same host and a
// rule must not be bypassed by the difference.
func parseHostPort(s string, allowWildcard bool) (HostPort, error) {
	if s == "" {
		return HostPort{}, errHostEmpty
	}
	var host, port string
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return HostPort{}, errHostBracket
		}
		host, port = s[1:end], s[end+1:]
		if port != "" {
			if port[0] != ':' {
				return HostPort{}, errHostBracket
			}
			port = port[1:]
			if port == "" {
				return HostPort{}, errHostPort
			}
		}
		if strings.Contains(host, "%") {
			return HostPort{}, errHostZone
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() {
			return HostPort{}, errHostBracket
		}
		host = ip.Unmap().String()
	} else {
		switch strings.Count(s, ":") {
		case 0:
			host = s
		case 1:
			host, port, _ = strings.Cut(s, ":")
			if port == "" {
				return HostPort{}, errHostPort
			}
		default:
			return HostPort{}, errHostIPv6
		}
		var err error
		if host, err = canonName(host, allowWildcard); err != nil {
			return HostPort{}, err
		}
	}
	hp := HostPort{Host: host}
	if port != "" {
		p, err := parsePort(port)
		if err != nil {
			return HostPort{}, err
		}
		hp.Port = p
	}
	return hp, nil
}

// parsePort accepts only the canonical decimal form, so that "0443" or "+443"
// cannot name a port a rule does not mention.
func parsePort(s string) (uint16, error) {
	if len(s) > 5 || s[0] == '0' {
		return 0, errHostPort
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errHostPort
		}
		n = n*10 + int(s[i]-'0')
	}
	if n < 1 || n > 65535 {
		return 0, errHostPort
	}
	return uint16(n), nil
}

// canonName lower-cases and checks a DNS name or IPv4 address. Names are
// letters, digits and hyphens (RFC 1123); underscores are refused. A name
// whose last label is all digits must be a valid dotted-quad IPv4 address, so
// that forms like "127.1" or "0x7f.0.0.1", which resolvers read as IPv4,
// cannot slip past an IP rule.
func canonName(s string, allowWildcard bool) (string, error) {
	s = strings.TrimSuffix(strings.ToLower(s), ".")
	if s == "" || len(s) > 253 {
		return "", errHostName
	}
	// Only a host starting with a digit (or holding a colon) can parse as an address; asking ParseAddr about a
	// name would allocate its error for nothing.
	if s[0] >= '0' && s[0] <= '9' || strings.Contains(s, ":") {
		if ip, err := netip.ParseAddr(s); err == nil {
			if !ip.Is4() {
				return "", errHostIPv6
			}
			// Most hosts that are addresses come in canonical form already: keep s rather than allocate its copy.
			var buf [len("255.255.255.255")]byte
			if c := ip.AppendTo(buf[:0]); string(c) != s {
				return string(c), nil
			}
			return s, nil
		}
	}
	// The labels are walked in place rather than split: this runs for every request's host.
	multi := strings.Contains(s, ".")
	var last string
	for i, rest := 0, s; ; i++ {
		l, tail, more := strings.Cut(rest, ".")
		last = l
		if l == "*" {
			if !allowWildcard || i != 0 || !multi {
				return "", errHostWildcard
			}
		} else if strings.Contains(l, "*") {
			return "", errHostWildcard
		} else if !validLabel(l) {
			return "", errHostName
		}
		if !more {
			break
		}
		rest = tail
	}
	if allDigits(last) {
		return "", errHostNumericTLD
	}
	return s, nil
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// hostMatches reports whether the rule host (canonical, maybe a wildcard)
// matches the canonical request host. A wildcard matches one or more labels
// below its suffix: "*.example.com" matches "a.example.com" and
// "a.b.example.com" but not "example.com".
func hostMatches(rule, req string) bool {
	if suffix, ok := strings.CutPrefix(rule, "*"); ok {
		return len(req) > len(suffix) && strings.HasSuffix(req, suffix)
	}
	return rule == req
}
