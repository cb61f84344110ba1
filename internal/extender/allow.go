package extender

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// AllowList says which addresses an agent may dial. The zero value allows every address: the gateway already
// decided the request may go there, and the list is the segment owner's own extra fence.
type AllowList struct {
	entries []allowEntry
}

type allowEntry struct {
	prefix netip.Prefix // valid for a CIDR or an IP
	host   string       // a host name, lower case, when prefix is not valid
	port   string       // "" means any port
}

// ParseAllowList parses entries of the forms CIDR (10.0.0.0/8), IP, host, each optionally with :port
// ([::1]:443, api.internal:8443, 10.0.0.0/8:443). An entry without a port allows every port.
func ParseAllowList(items []string) (AllowList, error) {
	var l AllowList
	for _, raw := range items {
		item := strings.TrimSpace(raw)
		if item == "" {
			continue
		}
		var e allowEntry
		hostPart := item
		if h, p, err := net.SplitHostPort(item); err == nil {
			if !validPort(p) {
				return AllowList{}, fmt.Errorf("allow %q: port must be a number from 1 to 65535", raw)
			}
			hostPart, e.port = h, p
		} else if i := strings.LastIndex(item, "/"); i >= 0 && strings.Count(item[i:], ":") == 1 {
			// 10.0.0.0/8:443
			j := strings.LastIndex(item, ":")
			if !validPort(item[j+1:]) {
				return AllowList{}, fmt.Errorf("allow %q: port must be a number from 1 to 65535", raw)
			}
			hostPart, e.port = item[:j], item[j+1:]
		}
		hostPart = strings.TrimSuffix(strings.TrimPrefix(hostPart, "["), "]")
		if p, err := netip.ParsePrefix(hostPart); err == nil {
			e.prefix = p.Masked()
		} else if a, err := netip.ParseAddr(hostPart); err == nil {
			e.prefix = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		} else if hostPart != "" && !strings.ContainsAny(hostPart, "/:* \t") {
			e.host = strings.ToLower(strings.TrimSuffix(hostPart, "."))
		} else {
			return AllowList{}, fmt.Errorf("allow %q: want CIDR, IP or host, optionally with :port", raw)
		}
		l.entries = append(l.entries, e)
	}
	return l, nil
}

// Allows reports whether addr (host:port) may be dialled. A host name is matched by name only: the agent does not
// resolve it first, so an entry naming an IP never admits a name that happens to resolve there.
func (l AllowList) Allows(addr string) bool {
	if len(l.entries) == 0 {
		return true
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip, ipErr := netip.ParseAddr(host)
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	for _, e := range l.entries {
		if e.port != "" && e.port != port {
			continue
		}
		if e.prefix.IsValid() {
			if ipErr == nil && e.prefix.Contains(ip.Unmap()) {
				return true
			}
			continue
		}
		if ipErr != nil && e.host == name {
			return true
		}
	}
	return false
}
