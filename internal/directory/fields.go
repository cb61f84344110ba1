package directory

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/model"
)

// Second-factor types of mfa_type.
const (
	MFADisabled = "DISABLED"
	MFATOTP     = "TOTP"
	MFARADIUS   = "RADIUS"
)

// mfaFields are the connection fields of the second factor.
var mfaFields = []string{"mfa_type", "mfa_address", "mfa_port", "mfa_shared_secret", "mfa_require_message_authenticator"}

// connectionFields lists, per source type, the connection fields Gatehouse acts on. Any other field holding a
// non-default value is refused with NOT_SUPPORTED naming it, so that nothing is stored that does nothing. (The
// cloud types are refused as a whole.)
var connectionFields = map[string][]string{
	TypeLocal: mfaFields,
	TypeLDAP: append([]string{"address", "port", "ldap_protocol", "ldap_base", "ldap_user_filter", "ldap_bind_dn",
		"ldap_bind_password", "ldap_user_dn_pattern", "attribute_mapping", "tls_trust_anchors"}, mfaFields...),
	TypeOIDC: {"oidc_enabled", "oidc_issuer", "oidc_button_title", "oidc_client_id", "oidc_client_secret",
		"oidc_additional_scopes", "oidc_tags_attribute_name", "tls_trust_anchors"},
}

func init() { connectionFields[TypeAD] = connectionFields[TypeLDAP] }

// notSupportedWhy says why the fields no type uses are refused.
var notSupportedWhy = map[string]string{
	"mfa_base_dn":                   "Gatehouse's second factors (TOTP, RADIUS) need no directory base",
	"domain_controller_fqdn":        "Kerberos and domain-controller logins are not implemented",
	"domain_controller_port":        "Kerberos and domain-controller logins are not implemented",
	"kerberos_ticket":               "Kerberos logins are not implemented",
	"enable_user_authentication":    "Kerberos user authentication is not implemented",
	"enable_machine_authentication": "machine authentication is not implemented",
	"service_address_auto_update":   "Gatehouse does not update service addresses from a source",
}

// checkApplicable refuses connection fields that the source's type does not act on.
func (c *Connection) checkApplicable() error {
	allowed := map[string]bool{"type": true}
	for _, f := range connectionFields[c.Type] {
		allowed[f] = true
	}
	v := reflect.ValueOf(c).Elem()
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		if allowed[name] || isDefault(name, v.Field(i)) {
			continue
		}
		why, ok := notSupportedWhy[name]
		if !ok {
			why = fmt.Sprintf("it does not apply to sources of type %s", c.Type)
		}
		return model.NotSupported("connection."+name, fmt.Sprintf("connection.%s is not supported: %s; leave it out", name, why))
	}
	return nil
}

// isDefault reports whether a connection field holds its default: zero, an empty list or map, or (for
// oidc_enabled, whose default is on) false on a type that has no OIDC login.
func isDefault(name string, f reflect.Value) bool {
	switch f.Kind() {
	case reflect.Slice, reflect.Map:
		return f.Len() == 0
	case reflect.Pointer:
		if f.IsNil() {
			return true
		}
		if name == "oidc_enabled" {
			return !f.Elem().Bool()
		}
		return f.Elem().IsZero()
	}
	return f.IsZero()
}

// checkSettings refuses the source-level settings Gatehouse does not act on.
func (src *Source) checkSettings() error {
	if len(src.ExternalUserMapping) > 0 {
		return model.NotSupported("external_user_mapping", "external_user_mapping is not supported: users are not linked across sources; leave it empty")
	}
	if src.SessionPasswordEnabled {
		return model.NotSupported("session_password_enabled", "session passwords are not supported; leave session_password_enabled false")
	}
	if src.ChildSessionAutoLogoutDelay != 0 {
		return model.NotSupported("child_session_auto_logout_delay", "child sessions are not supported; leave child_session_auto_logout_delay 0")
	}
	pp := src.SessionPasswordPolicy
	for name, set := range map[string]bool{"password_min_length": pp.MinLength != 0, "password_max_length": pp.MaxLength != 0,
		"use_special_characters": pp.UseSpecialCharacters, "use_lower_case": pp.UseLowerCase,
		"use_upper_case": pp.UseUpperCase, "use_numbers": pp.UseNumbers} {
		if set {
			return model.NotSupported("session_password_policy."+name, "session passwords are not supported; leave session_password_policy at its defaults")
		}
	}
	return nil
}

// validateMFA checks the second-factor fields and fills the RADIUS port's default.
func (c *Connection) validateMFA() error {
	c.MFAType = strings.ToUpper(strings.TrimSpace(c.MFAType))
	switch c.MFAType {
	case "", MFADisabled:
		c.MFAType = ""
	case MFATOTP:
	case MFARADIUS:
		c.MFAAddress = strings.TrimSpace(c.MFAAddress)
		if c.MFAAddress == "" || strings.ContainsAny(c.MFAAddress, "/ []") {
			return fieldErr("connection.mfa_address", "mfa_address must be the RADIUS server's host name or IP address")
		}
		if c.MFAPort == 0 {
			c.MFAPort = 1812
		}
		if c.MFAPort < 1 || c.MFAPort > 65535 {
			return fieldErr("connection.mfa_port", "mfa_port must be from 1 to 65535")
		}
		if c.MFASharedSecret == nil || *c.MFASharedSecret == "" {
			return fieldErr("connection.mfa_shared_secret", "mfa_shared_secret (the RADIUS shared secret) is required for mfa_type RADIUS")
		}
		return nil
	default:
		return fieldErr("connection.mfa_type", "mfa_type must be DISABLED, TOTP or RADIUS, not %q", c.MFAType)
	}
	// Only RADIUS uses the server fields; refusing them otherwise keeps a typo'd mfa_type from looking configured.
	// (KeepSecrets does not carry a stored shared secret over to another mfa_type.)
	for name, set := range map[string]bool{"mfa_address": c.MFAAddress != "", "mfa_port": c.MFAPort != 0,
		"mfa_shared_secret":                 c.MFASharedSecret != nil && *c.MFASharedSecret != "",
		"mfa_require_message_authenticator": c.MFARequireMessageAuthenticator} {
		if set {
			return model.NotSupported("connection."+name, "connection."+name+" applies only to mfa_type RADIUS")
		}
	}
	return nil
}
