package policy

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func validEndpoint() Endpoint {
	return Endpoint{
		Host:      "api.example.com",
		Protocols: []string{"https"},
		Methods:   []string{"GET"},
		Paths:     []string{"/api/**"},
	}
}

func TestValidateEndpoint(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Endpoint)
		want []FieldError
	}{
		{name: "valid", edit: func(*Endpoint) {}},
		{name: "mixed case accepted", edit: func(e *Endpoint) {
			e.Host, e.Protocols, e.Methods = "API.Example.com", []string{"HTTPS", "Http"}, []string{"get", "Post"}
		}},
		{name: "wildcards", edit: func(e *Endpoint) {
			e.Host, e.Protocols, e.Methods, e.Paths = "*.example.com:8443", []string{"*"}, []string{"*"}, []string{"**", "*"}
		}},
		{name: "ipv6 and nat", edit: func(e *Endpoint) { e.Host, e.NATTargetHost = "[::1]:8443", "10.0.0.7:443" }},
		{name: "every standard method", edit: func(e *Endpoint) {
			e.Methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
		}},
		{name: "empty everything", edit: func(e *Endpoint) { *e = Endpoint{} }, want: []FieldError{
			{"host", "host is empty"},
			{"protocols", "at least one protocol is required"},
			{"methods", "at least one method is required"},
			{"paths", "at least one path is required (** allows all)"},
		}},
		{name: "bad host", edit: func(e *Endpoint) { e.Host = "a_b.example.com" }, want: []FieldError{
			{"host", "invalid host name"},
		}},
		{name: "bad port", edit: func(e *Endpoint) { e.Host = "example.com:99999" }, want: []FieldError{
			{"host", "port must be a number from 1 to 65535"},
		}},
		{name: "wildcard not leading", edit: func(e *Endpoint) { e.Host = "api.*.example.com" }, want: []FieldError{
			{"host", errHostWildcard.Error()},
		}},
		{name: "bare wildcard", edit: func(e *Endpoint) { e.Host = "*" }, want: []FieldError{
			{"host", errHostWildcard.Error()},
		}},
		{name: "bad items", edit: func(e *Endpoint) {
			e.Protocols = []string{"https", "ftp", ""}
			e.Methods = []string{"GET", "PROPFIND", "get ", ""}
			e.Paths = []string{"/ok", "api", "/a/../b"}
		}, want: []FieldError{
			{"protocols[1]", `must be "http", "https" or "*"`},
			{"protocols[2]", `must be "http", "https" or "*"`},
			{"methods[1]", "must be a standard HTTP method or *"},
			{"methods[2]", "must be a standard HTTP method or *"},
			{"methods[3]", "must be a standard HTTP method or *"},
			{"paths[1]", `compile glob "api": must start with / or be ** or *`},
			{"paths[2]", `compile glob "/a/../b": dot segments are not allowed`},
		}},
		{name: "wildcard nat", edit: func(e *Endpoint) { e.NATTargetHost = "*.example.com" }, want: []FieldError{
			{"nat_target_host", errHostWildcard.Error()},
		}},
		{name: "bad nat", edit: func(e *Endpoint) { e.NATTargetHost = "::1" }, want: []FieldError{
			{"nat_target_host", errHostIPv6.Error()},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validEndpoint()
			tt.edit(&e)
			got := ValidateEndpoint(e)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ValidateEndpoint(%+v) mismatch (-want +got):\n%s", e, diff)
			}
		})
	}
}

func TestNormalizeEndpoint(t *testing.T) {
	in := Endpoint{
		Host:                 "API.Example.COM.:8443",
		Protocols:            []string{"HTTPS", "https", "Http"},
		Methods:              []string{"get", "GET", "Post"},
		Paths:                []string{"/a%7eb/**", "/a~b/**", "**"},
		AllowUnauthenticated: true,
		NATTargetHost:        "[::FFFF:10.0.0.1]",
	}
	want := Endpoint{
		Host:                 "api.example.com:8443",
		Protocols:            []string{"https", "http"},
		Methods:              []string{"GET", "POST"},
		Paths:                []string{"/a~b/**", "/**"},
		AllowUnauthenticated: true,
		NATTargetHost:        "10.0.0.1",
	}
	got := NormalizeEndpoint(in)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NormalizeEndpoint mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, NormalizeEndpoint(got)); diff != "" {
		t.Errorf("NormalizeEndpoint is not idempotent (-want +got):\n%s", diff)
	}
	got.Methods[0] = "changed"
	if in.Methods[0] != "get" {
		t.Error("NormalizeEndpoint result shares a slice with its input")
	}
}

func TestEndpointJSON(t *testing.T) {
	e := Endpoint{Host: "h", Protocols: []string{"https"}, Methods: []string{"GET"}, Paths: []string{"**"}}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"host":"h","protocols":["https"],"methods":["GET"],"paths":["**"],"allow_unauthenticated":false}`
	if string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
	e.NATTargetHost = "n:1"
	b, _ = json.Marshal(e)
	var back Endpoint
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(e, back); diff != "" {
		t.Errorf("json round trip (-want +got):\n%s", diff)
	}
}

func TestFieldErrorPrefixed(t *testing.T) {
	tests := []struct {
		fe     FieldError
		prefix string
		want   string
	}{
		{FieldError{"host", "x"}, "authorized_endpoints[0]", "authorized_endpoints[0].host"},
		{FieldError{"[3]", "x"}, "source_address", "source_address[3]"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.fe.Prefixed(tt.prefix).Field; got != tt.want {
				t.Errorf("Prefixed = %q, want %q", got, tt.want)
			}
		})
	}
	if got, want := (FieldErrors{{"a", "b"}, {"c", "d"}}).Error(), "a: b; c: d"; got != want {
		t.Errorf("FieldErrors.Error() = %q, want %q", got, want)
	}
}
