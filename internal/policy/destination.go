package policy

import "strings"

// Destination is one place a request matching an authorized endpoint may be sent: the scheme and the
// requested authority (default port filled in), and the NAT target host the connection goes to instead, if
// any. Two endpoints that send requests to the same places have the same destinations, however their hosts
// are spelled ("API.example.com." and "api.example.com:443" over https).
type Destination struct {
	Scheme string
	Addr   HostPort
	NAT    string
}

// Destinations returns the places a request matching e may be sent, one per protocol ("*" is http and
// https). It is for deciding whether an edit of a target moves where its secret goes; an endpoint whose host
// does not parse has none, so callers validate first.
func Destinations(e Endpoint) []Destination {
	hp, err := parseHostPort(e.Host, true)
	if err != nil {
		return nil
	}
	nat := ""
	if e.NATTargetHost != "" {
		nat = normalizeNAT(e.NATTargetHost)
	}
	var out []Destination
	add := func(scheme string) {
		d := Destination{Scheme: scheme, Addr: hp, NAT: nat}
		if d.Addr.Port == 0 {
			d.Addr.Port = DefaultPort(scheme)
		}
		for _, seen := range out {
			if seen == d {
				return
			}
		}
		out = append(out, d)
	}
	for _, p := range e.Protocols {
		switch p = strings.ToLower(p); p {
		case "*":
			add("http")
			add("https")
		case "http", "https":
			add(p)
		}
	}
	return out
}
