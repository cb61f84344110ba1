package configapi

import (
	"encoding/json"
	"errors"
	"testing"
)

// TestConnectionFieldsRefused: every connection-policy value Gatehouse would keep without acting on it is refused
// naming its field, with NOT_SUPPORTED where the feature is missing and SemanticError where the value contradicts
// its selection.
func TestConnectionFieldsRefused(t *testing.T) {
	base := func(extra string) string {
		return `{"name":"p","active":true,"network":{"clients":["0.0.0.0/0"],"targets":["*"]}` + extra + `}`
	}
	tests := []struct {
		name, body, code, field string
	}{
		{"access_control permission", `,"access_control":[{"authorizer":"ops","permission":"approve","subject":{"selection":"everybody"}}]`, CodeSemanticError, "access_control[0].permission"},
		{"access_control authorizer", `,"access_control":[{"authorizer":" ","permission":"authorize","subject":{"selection":"everybody"}}]`, CodeSemanticError, "access_control[0].authorizer"},
		{"access_control group", `,"access_control":[{"authorizer":"ops","permission":"authorize","subject":{"selection":"only"}}]`, CodeSemanticError, "access_control[0].subject.group"},
		{"access_control group with everybody", `,"access_control":[{"authorizer":"ops","permission":"authorize","subject":{"selection":"everybody","group":"x"}}]`, CodeSemanticError, "access_control[0].subject.group"},
		{"access_control audit with a rule", `,"access_control":[{"authorizer":"ops","permission":"audit","require_different_ip":true,"subject":{"selection":"everybody"}}]`, CodeSemanticError, "access_control[0].permission"},
		{"access_control selection", `,"access_control":[{"authorizer":"ops","permission":"audit","subject":{"selection":"some"}}]`, CodeSemanticError, "access_control[0].subject.selection"},
		{"ldap_server policy", `,"policies":{"channel_policy":"-1","settings":"-1","audit_policy":"-1","authentication_policy":"-1","ldap_server":"-1"}`, CodeNotSupported, "policies.ldap_server"},
		{"source original", `,"source_address":{"selection":"original"}`, CodeNotSupported, "source_address.selection"},
		{"custom_dns", `,"server_address":{"selection":"inband","custom_dns":"x","domains":[{"domain":{"selection":"domain","value":"*"},"port":0}]}`, CodeNotSupported, "server_address.custom_dns"},
		{"fix needs a port", `,"server_address":{"selection":"fix","address":"127.0.0.1"}`, CodeSemanticError, "server_address.port"},
		{"port without fix", `,"server_address":{"selection":"nat","network":"10.0.0.0/8","port":80}`, CodeSemanticError, "server_address.port"},
		{"nat host bits", `,"server_address":{"selection":"nat","network":"10.0.0.1/8"}`, CodeSemanticError, "server_address.network"},
		{"inband needs domains", `,"server_address":{"selection":"inband"}`, CodeSemanticError, "server_address.domains"},
		{"dns_server without inband", `,"server_address":{"selection":"original","dns_server":"127.0.0.53"}`, CodeSemanticError, "server_address.dns_server"},
		{"bad suffix", `,"server_address":{"selection":"inband","dns_suffixes":["a..b"],"domains":[{"domain":{"selection":"domain","value":"*"},"port":0}]}`, CodeSemanticError, "server_address.dns_suffixes[0]"},
		{"bad exception", `,"server_address":{"selection":"inband","domains":[{"domain":{"selection":"domain","value":"*"},"port":0}],"exception_domains":[{"domain":{"selection":"address","value":"10.0.0.1/8"},"port":0}]}`, CodeSemanticError, "server_address.exception_domains[0].domain.value"},
		{"source fix needs an address", `,"source_address":{"selection":"fix","address":"host.example"}`, CodeSemanticError, "source_address.address"},
		{"allow_non_encrypted with client-only", `,"transport_security":{"selection":"client-only","allow_non_encrypted":true}`, CodeSemanticError, "transport_security.allow_non_encrypted"},
		{"trusted_ca while disabled", `,"transport_security":{"selection":"client-server","server_certificate_check":{"enabled":false,"trusted_ca":"k"}}`, CodeSemanticError, "transport_security.server_certificate_check.trusted_ca"},
		{"fix with a signing CA", `,"transport_security":{"selection":"client-only","host_certification_method":{"selection":"fix","x509_identity":"i","signing_ca":"s"}}`, CodeSemanticError, "transport_security.host_certification_method.signing_ca"},
		{"generate with an identity", `,"transport_security":{"selection":"client-only","host_certification_method":{"selection":"generate","x509_identity":"i"}}`, CodeSemanticError, "transport_security.host_certification_method.x509_identity"},
		{"web proxy method without tls", `,"web_proxy":{"enabled":true,"transport_security":{"selection":"disabled","host_certification_method":{"selection":"generate"}}}`, CodeSemanticError, "web_proxy.transport_security.host_certification_method"},
		{"web proxy selection", `,"web_proxy":{"enabled":true,"transport_security":{"selection":"ssl"}}`, CodeSemanticError, "web_proxy.transport_security.selection"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeBody(kindConnections, []byte(base(tc.body)))
			var e *Error
			if !errors.As(err, &e) || e.Code != tc.code || e.Field != tc.field {
				t.Fatalf("got %v, want %s naming %s", err, tc.code, tc.field)
			}
		})
	}
	// The same shapes with consistent values are accepted, and omitted fields take the selection's defaults
	// rather than the built-in policy's (no allow_non_encrypted, no certificate check).
	for _, extra := range []string{
		`,"server_address":{"selection":"inband","dns_server":"127.0.0.53:5353","dns_suffixes":["corp.example"],"domains":[{"domain":{"selection":"address","value":"10.0.0.0/8"},"port":443}]}`,
		`,"source_address":{"selection":"fix","address":"127.0.0.2"}`,
		`,"transport_security":{"selection":"client-only","host_certification_method":{"selection":"generate"}}`,
		`,"web_proxy":{"enabled":true,"transport_security":{"selection":"tls","host_certification_method":{"selection":"fix","x509_identity":"id"}}}`,
	} {
		if _, err := decodeBody(kindConnections, []byte(base(extra))); err != nil {
			t.Errorf("%s: %v", extra, err)
		}
	}
	b, err := decodeBody(kindConnections, []byte(base(`,"transport_security":{"selection":"client-server"}`)))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(b.(*connection).TransportSecurity)
	if ts := b.(*connection).TransportSecurity; ts.AllowNonEncrypted || ts.ServerCertificateCheck != nil {
		t.Errorf("omitted fields came from the template: %s", out)
	}
}
