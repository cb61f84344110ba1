package directory

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/gatehouse-dev/gatehouse/internal/model"
)

// LDAP protocols of ldap_protocol.
const (
	ProtocolLDAP     = "LDAP"
	ProtocolLDAPS    = "LDAPS"
	ProtocolStartTLS = "STARTTLS"
)

// attributeKeys are the keys attribute_mapping accepts, with what each names.
var attributeKeys = map[string]string{
	"username":     "the attribute holding the login name",
	"email":        "the attribute holding the e-mail address",
	"full_name":    "the attribute holding the display name",
	"member_of":    "the user attribute listing group DNs (empty: none)",
	"tags":         "a user attribute whose values become the user's tags",
	"group_filter": "the filter finding groups whose member attributes list users",
	"group_member": "the group attribute listing member DNs",
}

// defaultAttributes are the mapping defaults per directory type.
var defaultAttributes = map[string]map[string]string{
	TypeLDAP: {"username": "uid", "email": "mail", "full_name": "cn", "member_of": "memberOf",
		"group_filter": "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))", "group_member": "member"},
	TypeAD: {"username": "sAMAccountName", "email": "mail", "full_name": "displayName", "member_of": "memberOf",
		"group_filter": "(objectClass=group)", "group_member": "member"},
}

// defaultUserFilter is ldap_user_filter when none is given; the AD one leaves out computers and disabled accounts.
var defaultUserFilter = map[string]string{
	TypeLDAP: "(|(objectClass=inetOrgPerson)(objectClass=posixAccount))",
	TypeAD:   "(&(!(objectclass=computer))(objectclass=user)(!(UserAccountControl:1.2.840.113556.1.4.803:=2)))",
}

func fieldErr(field, format string, args ...any) error {
	return &model.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Validate checks src and fills the defaults of its type (ports, filters, protocol).
func (src *Source) Validate() error {
	src.Name = strings.TrimSpace(src.Name)
	if src.Name == "" || len(src.Name) > 128 {
		return fieldErr("name", "name is required and must be at most 128 bytes")
	}
	if src.TTL < 0 || src.TTL > 366*86400 {
		return fieldErr("ttl", "ttl must be from 0 (no scheduled refresh) to 31622400 seconds")
	}
	if src.TTL > 0 && src.TTL < 10 {
		return fieldErr("ttl", "ttl must be at least 10 seconds, or 0 for no scheduled refresh")
	}
	for i, p := range src.UsernamePattern {
		if _, err := path.Match(p, ""); err != nil || strings.TrimSpace(p) == "" {
			return fieldErr(fmt.Sprintf("username_pattern[%d]", i), "%q is not a valid wildcard pattern", p)
		}
	}
	if src.ChildSessionAutoLogoutDelay < 0 {
		return fieldErr("child_session_auto_logout_delay", "child_session_auto_logout_delay must not be negative")
	}
	pp := src.SessionPasswordPolicy
	if pp.MinLength < 0 || pp.MaxLength < 0 || (pp.MaxLength > 0 && pp.MinLength > pp.MaxLength) || pp.MaxLength > 1024 {
		return fieldErr("session_password_policy", "password lengths must be from 0 to 1024, min at most max")
	}
	for i, m := range src.ExternalUserMapping {
		if m.SourceID == "" {
			return fieldErr(fmt.Sprintf("external_user_mapping[%d].source_id", i), "source_id is required")
		}
	}
	c := &src.Connection
	c.Type = strings.ToUpper(strings.TrimSpace(c.Type))
	switch c.Type {
	case TypeLocal:
		// Local users always log in through the built-in store, and there is nothing to sync.
		if !src.Enabled {
			return model.NotSupported("enabled", "the built-in LOCAL source cannot be disabled; disable its users instead")
		}
		if src.TTL != 0 {
			return model.NotSupported("ttl", "the built-in LOCAL source has nothing to sync; leave ttl 0")
		}
	case TypeLDAP, TypeAD:
		if err := c.validateLDAP(); err != nil {
			return err
		}
	case TypeOIDC:
		if u, err := url.Parse(c.OIDCIssuer); err != nil || u.Scheme != "https" || u.Host == "" {
			return fieldErr("connection.oidc_issuer", "oidc_issuer must be an https URL")
		}
		if c.OIDCClientID == "" {
			return fieldErr("connection.oidc_client_id", "oidc_client_id is required")
		}
		if c.TLSTrustAnchors != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(c.TLSTrustAnchors)) {
			return fieldErr("connection.tls_trust_anchors", "tls_trust_anchors must hold PEM certificates")
		}
	case TypeAWS, TypeAzure, TypeGoogleCloud, TypeGSuite, TypeOpenStack:
		// Gatehouse can neither sync nor log in through these: storing one would promise users it cannot deliver.
		return model.NotSupported("connection.type", fmt.Sprintf("sources of type %s are not supported: Gatehouse syncs and logs in through LOCAL, LDAP, AD and OIDC sources", c.Type))
	case "":
		return fieldErr("connection.type", "connection.type is required")
	default:
		return fieldErr("connection.type", "unknown source type %q", c.Type)
	}
	if c.Type != TypeOIDC && c.OIDCEnabled != nil && !*c.OIDCEnabled {
		c.OIDCEnabled = nil // false is what every non-OIDC source says
	}
	if err := c.validateMFA(); err != nil {
		return err
	}
	if err := c.checkApplicable(); err != nil {
		return err
	}
	if err := src.checkSettings(); err != nil {
		return err
	}
	src.normalize()
	return nil
}

func (c *Connection) validateLDAP() error {
	c.Address = strings.TrimSpace(c.Address)
	if c.Address == "" || strings.ContainsAny(c.Address, "/ []") {
		return fieldErr("connection.address", "address must be a host name or IP address")
	}
	c.LDAPProtocol = strings.ToUpper(c.LDAPProtocol)
	switch c.LDAPProtocol {
	case "":
		c.LDAPProtocol = ProtocolLDAP
	case ProtocolLDAP, ProtocolLDAPS, ProtocolStartTLS:
	default:
		return fieldErr("connection.ldap_protocol", "ldap_protocol must be LDAP, LDAPS or STARTTLS")
	}
	if c.Port == 0 {
		c.Port = 389
		if c.LDAPProtocol == ProtocolLDAPS {
			c.Port = 636
		}
	}
	if c.Port < 1 || c.Port > 65535 {
		return fieldErr("connection.port", "port must be from 1 to 65535")
	}
	if _, err := ldap.ParseDN(c.LDAPBase); err != nil || c.LDAPBase == "" {
		return fieldErr("connection.ldap_base", "ldap_base must be a distinguished name")
	}
	if c.LDAPUserFilter == "" {
		c.LDAPUserFilter = defaultUserFilter[c.Type]
	}
	if _, err := ldap.CompileFilter(c.LDAPUserFilter); err != nil {
		return fieldErr("connection.ldap_user_filter", "ldap_user_filter is not a valid LDAP filter: %v", err)
	}
	if c.LDAPBindDN != "" {
		if _, err := ldap.ParseDN(c.LDAPBindDN); err != nil {
			return fieldErr("connection.ldap_bind_dn", "ldap_bind_dn must be a distinguished name")
		}
	}
	if c.LDAPUserDNPattern != "" && !strings.Contains(c.LDAPUserDNPattern, "{0}") {
		return fieldErr("connection.ldap_user_dn_pattern", "ldap_user_dn_pattern must contain {0} for the username")
	}
	for k, v := range c.AttributeMapping {
		if _, ok := attributeKeys[k]; !ok {
			return fieldErr("connection.attribute_mapping."+k, "unknown attribute mapping key %q", k)
		}
		if k == "group_filter" && v != "" {
			if _, err := ldap.CompileFilter(v); err != nil {
				return fieldErr("connection.attribute_mapping.group_filter", "group_filter is not a valid LDAP filter")
			}
		}
	}
	if c.TLSTrustAnchors != "" {
		if !x509.NewCertPool().AppendCertsFromPEM([]byte(c.TLSTrustAnchors)) {
			return fieldErr("connection.tls_trust_anchors", "tls_trust_anchors must hold PEM certificates")
		}
	}
	return nil
}

// attribute returns the directory attribute mapped to key, or the type's default.
func (c *Connection) attribute(key string) string {
	if v, ok := c.AttributeMapping[key]; ok {
		return v
	}
	return defaultAttributes[c.Type][key]
}

// MatchesUsername reports whether one of the source's username patterns matches name (case-insensitively).
func (src *Source) MatchesUsername(name string) bool {
	for _, p := range src.UsernamePattern {
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(name)); ok {
			return true
		}
	}
	return false
}
