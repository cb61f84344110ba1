package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDestinations(t *testing.T) {
	for _, c := range []struct {
		name string
		e    Endpoint
		want []Destination
	}{
		{"default https port", Endpoint{Host: "API.Example.com.", Protocols: []string{"HTTPS"}},
			[]Destination{{"https", HostPort{"api.example.com", 443}, ""}}},
		{"explicit default port is the same place", Endpoint{Host: "api.example.com:443", Protocols: []string{"https"}},
			[]Destination{{"https", HostPort{"api.example.com", 443}, ""}}},
		{"any protocol is both", Endpoint{Host: "api.example.com", Protocols: []string{"*", "https"}},
			[]Destination{{"http", HostPort{"api.example.com", 80}, ""}, {"https", HostPort{"api.example.com", 443}, ""}}},
		{"explicit port kept for both", Endpoint{Host: "[::ffff:10.0.0.1]:6443", Protocols: []string{"*"}},
			[]Destination{{"http", HostPort{"10.0.0.1", 6443}, ""}, {"https", HostPort{"10.0.0.1", 6443}, ""}}},
		{"nat normalized", Endpoint{Host: "*.example.com", Protocols: []string{"https"}, NATTargetHost: "GW.internal:8443"},
			[]Destination{{"https", HostPort{"*.example.com", 443}, "gw.internal:8443"}}},
		{"bad host has none", Endpoint{Host: "a b", Protocols: []string{"https"}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if d := cmp.Diff(c.want, Destinations(c.e)); d != "" {
				t.Errorf("Destinations (-want +got):\n%s", d)
			}
		})
	}
}
