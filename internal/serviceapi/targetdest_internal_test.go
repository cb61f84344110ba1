package serviceapi

import (
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/testca"
)

func pemCert(t *testing.T, cn string) string {
	t.Helper()
	return string(testca.New(t, cn).PEM)
}

func TestDestinationChange(t *testing.T) {
	a, b := pemCert(t, "a"), pemCert(t, "b")
	ep := func(host string, protocols []string, nat string) policy.Endpoint {
		return policy.NormalizeEndpoint(policy.Endpoint{Host: host, Protocols: protocols, Methods: []string{"GET"}, Paths: []string{"/**"}, NATTargetHost: nat})
	}
	https := []string{"https"}
	prev := &model.Target{TLSTrustAnchors: a + "\n" + b, AuthorizedEndpoints: []policy.Endpoint{
		ep("api.example.com", https, ""), ep("kube.example.com:6443", https, "10.0.0.5:6443")}}
	with := func(change func(t *model.Target)) *model.Target {
		n := *prev
		n.AuthorizedEndpoints = append([]policy.Endpoint(nil), prev.AuthorizedEndpoints...)
		change(&n)
		return &n
	}
	for _, c := range []struct {
		name string
		next *model.Target
		want string
	}{
		{"unchanged", with(func(*model.Target) {}), ""},
		{"default port spelled out", with(func(n *model.Target) { n.AuthorizedEndpoints[0] = ep("API.example.com.:443", https, "") }), ""},
		{"endpoint removed", with(func(n *model.Target) { n.AuthorizedEndpoints = n.AuthorizedEndpoints[1:] }), ""},
		{"endpoints reordered", with(func(n *model.Target) {
			n.AuthorizedEndpoints[0], n.AuthorizedEndpoints[1] = n.AuthorizedEndpoints[1], n.AuthorizedEndpoints[0]
		}), ""},
		{"fewer anchors", with(func(n *model.Target) { n.TLSTrustAnchors = b }), ""},
		{"anchors re-encoded", with(func(n *model.Target) { n.TLSTrustAnchors = strings.ReplaceAll(b+"\n"+a, "\n", "\r\n") }), ""},
		{"skip verify turned off", with(func(n *model.Target) { n.TLSInsecureSkipVerify = false }), ""},
		{"new host", with(func(n *model.Target) { n.AuthorizedEndpoints[0] = ep("evil.test", https, "") }), "authorized_endpoints[0].host"},
		{"new port", with(func(n *model.Target) { n.AuthorizedEndpoints[0] = ep("api.example.com:8443", https, "") }), "authorized_endpoints[0].host"},
		{"new protocol", with(func(n *model.Target) { n.AuthorizedEndpoints[0] = ep("api.example.com", []string{"*"}, "") }), "authorized_endpoints[0].protocols"},
		{"nat added", with(func(n *model.Target) { n.AuthorizedEndpoints[0] = ep("api.example.com", https, "127.0.0.1") }), "authorized_endpoints[0].nat_target_host"},
		{"nat dropped", with(func(n *model.Target) { n.AuthorizedEndpoints[1] = ep("kube.example.com:6443", https, "") }), "authorized_endpoints[1].nat_target_host"},
		{"through an extender", with(func(n *model.Target) {
			n.AuthorizedEndpoints[1] = ep("kube.example.com:6443", https, "extender:site-a")
		}), "authorized_endpoints[1].nat_target_host"},
		{"endpoint added", with(func(n *model.Target) {
			n.AuthorizedEndpoints = append(n.AuthorizedEndpoints, ep("*.example.com", https, ""))
		}), "authorized_endpoints[2].host"},
		{"another anchor", with(func(n *model.Target) { n.TLSTrustAnchors = a + "\n" + pemCert(t, "c") }), "tls_trust_anchors"},
		{"system roots instead", with(func(n *model.Target) { n.TLSTrustAnchors = "" }), "tls_trust_anchors"},
		{"skip verify", with(func(n *model.Target) { n.TLSInsecureSkipVerify = true }), "tls_insecure_skip_verify"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := *prev
			if c.name == "skip verify turned off" {
				p.TLSInsecureSkipVerify = true
			}
			if got := destinationChange(&p, c.next); got != c.want {
				t.Errorf("destinationChange = %q, want %q", got, c.want)
			}
		})
	}
}
