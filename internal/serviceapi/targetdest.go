package serviceapi

import (
	"encoding/pem"
	"net/http"
	"slices"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
)

// A stored target secret is for the destinations it was stored with. An update that would send it somewhere
// else (a new host, port or protocol of an authorized endpoint, a new NAT target host, other TLS trust) must
// carry the secret again: otherwise a principal who may edit targets but was never shown the secret could
// point the target at a server it controls and read the secret off the injected requests. The rule holds for
// every editor, superusers included. Updates that keep the destinations need no secret, so a client that GETs
// a target and PUTs it back keeps working.

// secretFields are the credential fields of each type whose values are the secret the gateway injects.
var secretFields = map[string][]string{
	"token":       {"bearer_token"},
	"basicauth":   {"basic_auth_password"},
	"header":      {"header_value"},
	"certificate": {"private_key"},
}

// destinationChange names the first field of next that lets a request go somewhere prev did not send it, or
// returns "" when next sends requests only where prev did (narrowing is not a change). Both are validated and
// normalized.
func destinationChange(prev, next *model.Target) string {
	old := map[policy.Destination]bool{}
	oldHosts := map[string]bool{}
	oldAddrs := map[policy.Destination]bool{}
	for _, e := range prev.AuthorizedEndpoints {
		oldHosts[e.Host] = true
		for _, d := range policy.Destinations(e) {
			old[d] = true
			oldAddrs[policy.Destination{Scheme: d.Scheme, Addr: d.Addr}] = true
		}
	}
	for i, e := range next.AuthorizedEndpoints {
		for _, d := range policy.Destinations(e) {
			if old[d] {
				continue
			}
			field := fieldIndex("authorized_endpoints", i)
			switch {
			case !oldHosts[e.Host] && !oldAddrs[policy.Destination{Scheme: d.Scheme, Addr: d.Addr}]:
				return field + ".host"
			case !oldAddrs[policy.Destination{Scheme: d.Scheme, Addr: d.Addr}]:
				return field + ".protocols"
			default:
				return field + ".nat_target_host"
			}
		}
	}
	if !anchorsNarrowed(prev.TLSTrustAnchors, next.TLSTrustAnchors) {
		return "tls_trust_anchors"
	}
	if next.TLSInsecureSkipVerify && !prev.TLSInsecureSkipVerify {
		return "tls_insecure_skip_verify"
	}
	return ""
}

// anchorsNarrowed reports whether the trust anchor bundle next trusts no server that prev does not: the same
// certificates or fewer, compared by content so that a re-encoded bundle (a browser's CRLF line ends) is not a
// change. An empty bundle means the system roots, which is a change from any bundle.
func anchorsNarrowed(prev, next string) bool {
	if next == "" || prev == "" {
		return next == prev
	}
	old := map[string]bool{}
	for _, der := range pemCertificates(prev) {
		old[string(der)] = true
	}
	for _, der := range pemCertificates(next) {
		if !old[string(der)] {
			return false
		}
	}
	return true
}

// pemCertificates returns the DER of each CERTIFICATE block of a validated bundle.
func pemCertificates(bundle string) [][]byte {
	var out [][]byte
	rest := []byte(bundle)
	for {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return out
		}
		out = append(out, block.Bytes)
	}
}

// missingSecret names the secret field of the credential type typ that in does not supply, or "".
func missingSecret(in *credentialInput, typ string) string {
	for _, f := range secretFields[typ] {
		supplied := in != nil && map[string]string{
			"bearer_token": in.BearerToken, "basic_auth_password": in.BasicAuthPassword,
			"header_value": in.HeaderValue, "private_key": in.PrivateKey,
		}[f] != ""
		if !supplied {
			return "target_credential." + f
		}
	}
	return ""
}

// hasSecret reports whether c holds a secret value of its type.
func hasSecret(c model.TargetCredential) bool {
	return slices.ContainsFunc([]string{c.BearerToken, c.BasicAuthPassword, c.HeaderValue, c.PrivateKey}, func(s string) bool { return s != "" })
}

// checkSecretDestination refuses the update of prev into next (from in) when it moves the stored secret to a
// new destination without supplying it again.
func checkSecretDestination(in *targetInput, prev, next *model.Target) error {
	if !hasSecret(prev.Credential) {
		return nil
	}
	changed := destinationChange(prev, next)
	if changed == "" {
		return nil
	}
	missing := missingSecret(in.Credential, next.Credential.Type)
	if missing == "" {
		return nil
	}
	msg := missing + " is required again because " + changed + " changes where the stored target secret is sent"
	return &Error{Status: http.StatusBadRequest, Code: "BAD_REQUEST", Message: msg, Property: missing, Details: []errorDetail{
		{Code: "SECRET_REQUIRED", Message: "send the target secret again with this change", Property: missing},
		{Code: "DESTINATION_CHANGED", Message: "this changes where the stored target secret is sent", Property: changed},
	}}
}
