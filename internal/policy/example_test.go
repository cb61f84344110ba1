package policy

import (
	"net/url"
	"testing"
)

func TestExampleRequest(t *testing.T) {
	ep := func(host string, protocols, methods, paths []string) Endpoint {
		return Endpoint{Host: host, Protocols: protocols, Methods: methods, Paths: paths}
	}
	tests := []struct {
		name         string
		authorized   []Endpoint
		unauthorized []Endpoint
		want         Example
		ok           bool
	}{
		{"glob tail", []Endpoint{ep("api.example.com:8443", []string{"https"}, []string{"GET"}, []string{"/api/**"})}, nil,
			Example{"GET", "https://api.example.com:8443/api"}, true},
		{"default port dropped", []Endpoint{ep("api.example.com:443", []string{"*"}, []string{"*"}, []string{"/v1/*/status"})}, nil,
			Example{"GET", "https://api.example.com/v1/example/status"}, true},
		{"http only", []Endpoint{ep("plain.example.com", []string{"http"}, []string{"GET"}, []string{"/x"})}, nil,
			Example{"GET", "http://plain.example.com/x"}, true},
		{"no GET allowed", []Endpoint{ep("api.example.com", []string{"https"}, []string{"POST"}, []string{"/jobs"})}, nil,
			Example{"POST", "https://api.example.com/jobs"}, true},
		{"wildcard host skipped", []Endpoint{
			ep("*.example.com", []string{"https"}, []string{"GET"}, []string{"/**"}),
			ep("one.example.com", []string{"https"}, []string{"GET"}, []string{"/ok"}),
		}, nil, Example{"GET", "https://one.example.com/ok"}, true},
		{"denied candidate skipped", []Endpoint{ep("api.example.com", []string{"https"}, []string{"GET"}, []string{"/admin/**", "/public/**"})},
			[]Endpoint{ep("api.example.com", []string{"*"}, []string{"*"}, []string{"/admin/**"})},
			Example{"GET", "https://api.example.com/public"}, true},
		{"everything denied", []Endpoint{ep("api.example.com", []string{"https"}, []string{"GET"}, []string{"/**"})},
			[]Endpoint{ep("api.example.com", []string{"*"}, []string{"*"}, []string{"/**"})}, Example{}, false},
		{"wildcards only", []Endpoint{ep("*.example.com", []string{"https"}, []string{"GET"}, []string{"/**"})}, nil, Example{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := CompileRules(tt.authorized, tt.unauthorized)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := ExampleRequest(r)
			if ok != tt.ok || got != tt.want {
				t.Errorf("ExampleRequest = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
			if ok {
				// The example must be a request the rules allow: the point of the function.
				u, err := url.Parse(got.URL)
				if err != nil {
					t.Fatal(err)
				}
				if d := r.Match(Request{Scheme: u.Scheme, Host: u.Host, Method: got.Method, Path: u.Path}); !d.Allowed {
					t.Errorf("the example is denied: %s", d.Reason)
				}
			}
		})
	}
}
