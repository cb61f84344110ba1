package policy

import (
	"fmt"
	"testing"
)

func BenchmarkHostIndexLookup(b *testing.B) {
	targets := make(map[string][]HostPort, 10000)
	for i := range 10000 {
		id := fmt.Sprintf("target-%05d", i)
		hosts := []HostPort{{fmt.Sprintf("api%d.example.com", i), 443}}
		if i%10 == 0 {
			hosts = append(hosts, HostPort{fmt.Sprintf("*.ns%d.cluster.example.com", i), 443})
		}
		targets[id] = hosts
	}
	x := NewHostIndex(targets)
	lookups := []HostPort{
		{"api4242.example.com", 443},
		{"pod.ns4240.cluster.example.com", 443},
		{"nothing.example.org", 443},
	}
	for _, hp := range lookups {
		b.Run(hp.Host, func(b *testing.B) {
			for b.Loop() {
				x.Lookup(hp)
			}
		})
	}
}

func BenchmarkRulesMatch(b *testing.B) {
	var authorized, unauthorized []Endpoint
	for i := range 50 {
		authorized = append(authorized, ep("api.example.com", httpsOnly, []string{"GET", "POST"}, []string{fmt.Sprintf("/v1/r%d/**", i), fmt.Sprintf("/v2/r%d/*/items/**/status", i)}))
	}
	for i := range 10 {
		unauthorized = append(unauthorized, ep("api.example.com", anyOf, anyOf, []string{fmt.Sprintf("/v1/r%d/admin/**", i)}))
	}
	rules, err := CompileRules(authorized, unauthorized)
	if err != nil {
		b.Fatal(err)
	}
	reqs := map[string]Request{
		"allowed-last": {"https", "api.example.com", "GET", "/v2/r49/x/items/a/b/status"},
		"unauthorized": {"https", "api.example.com", "GET", "/v1/r9/admin/users"},
		"no-match":     {"https", "api.example.com", "GET", "/v3/nothing/here"},
	}
	for name, req := range reqs {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				rules.Match(req)
			}
		})
	}
}

func BenchmarkNormalizePath(b *testing.B) {
	for _, p := range []string{"/api/v1/namespaces/default/pods", "/api/%7euser/./x/../y%2Bz"} {
		b.Run(p, func(b *testing.B) {
			for b.Loop() {
				NormalizePath(p)
			}
		})
	}
}
