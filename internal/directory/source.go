// Package directory connects Gatehouse to user sources: the built-in local store, directories (LDAP, Active
// Directory) and OpenID Connect providers. It validates source definitions, syncs users and their groups on a
// schedule, routes logins to the right source by username pattern, authenticates directory users with an LDAP bind
// and runs authorization-code logins with PKCE against OIDC providers, provisioning users at first login.
package directory

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Source types, as the reference names them.
const (
	TypeLocal       = "LOCAL"
	TypeLDAP        = "LDAP"
	TypeAD          = "AD"
	TypeOIDC        = "OIDC"
	TypeAWS         = "AWS"
	TypeAzure       = "AZURE"
	TypeGoogleCloud = "GOOGLECLOUD"
	TypeGSuite      = "GSUITE"
	TypeOpenStack   = "OPENSTACK"
)

// Status codes a source reports after a sync.
const (
	StatusOK               = "OK"
	StatusPending          = "PENDING"
	StatusDisabled         = "DISABLED"
	StatusConnectionFailed = "CONNECTION_FAILED"
	StatusBindFailed       = "BIND_FAILED"
	StatusSearchFailed     = "SEARCH_FAILED"
	StatusNotSupported     = "NOT_SUPPORTED"
	StatusInternalError    = "INTERNAL_ERROR"
)

// DefaultTTL is the refresh interval of a source created without one: a day, as in the reference.
const DefaultTTL = 86400

// Source is a source definition in the reference's shape. Server-populated fields (id, times, status) are ignored
// on input so that a GET answer can be sent back as a PUT.
type Source struct {
	ID         string    `json:"id"`
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
	UpdatedBy  string    `json:"updated_by"`
	Author     string    `json:"author"`
	Enabled    bool      `json:"enabled"`
	TTL        int64     `json:"ttl"`
	StatusCode string    `json:"status_code"`
	StatusText string    `json:"status_text"`
	// LastSync is when the last refresh finished (nil before the first); UserCount is how many users the source
	// provides, filled in by the API's answers. Both are read-only: ignored on input.
	LastSync  *time.Time `json:"last_sync,omitempty"`
	UserCount *int       `json:"user_count,omitempty"`
	Name      string     `json:"name"`
	// Settings are the fields kept in the store's config column; embedded, they read as the source's own.
	Settings
}

// ExternalUserMapping maps users of another source to this one's by a search field.
type ExternalUserMapping struct {
	SourceID          string `json:"source_id"`
	SourceSearchField string `json:"source_search_field"`
}

// PasswordPolicy is the policy for generated session passwords. PasswordEntropy and PasswordStrength are computed.
type PasswordPolicy struct {
	MinLength            int    `json:"password_min_length"`
	MaxLength            int    `json:"password_max_length"`
	UseSpecialCharacters bool   `json:"use_special_characters"`
	UseLowerCase         bool   `json:"use_lower_case"`
	UseUpperCase         bool   `json:"use_upper_case"`
	UseNumbers           bool   `json:"use_numbers"`
	PasswordEntropy      int    `json:"password_entropy"`
	PasswordStrength     string `json:"password_strength"`
}

// compute fills the entropy (bits of a password of the minimum length drawn from the allowed alphabet) and its
// strength class.
func (p *PasswordPolicy) compute() {
	alphabet := 0
	for _, c := range []struct {
		on bool
		n  int
	}{{p.UseLowerCase, 26}, {p.UseUpperCase, 26}, {p.UseNumbers, 10}, {p.UseSpecialCharacters, 33}} {
		if c.on {
			alphabet += c.n
		}
	}
	p.PasswordEntropy = 0
	if alphabet > 0 && p.MinLength > 0 {
		p.PasswordEntropy = int(float64(p.MinLength) * math.Log2(float64(alphabet)))
	}
	switch {
	case p.PasswordEntropy >= 80:
		p.PasswordStrength = "STRONG"
	case p.PasswordEntropy >= 50:
		p.PasswordStrength = "MEDIUM"
	default:
		p.PasswordStrength = "WEAK"
	}
}

// Connection is how to reach a source; which fields apply depends on Type. Fields of type *string are secrets:
// write-only, sealed at rest, never returned; nil on update keeps the stored value.
type Connection struct {
	Type                     string   `json:"type"`
	Address                  string   `json:"address,omitempty"`
	Port                     int      `json:"port,omitempty"`
	ServiceAddressAutoUpdate bool     `json:"service_address_auto_update,omitempty"`
	IAMAccessKeyID           string   `json:"iam_access_key_id,omitempty"`
	IAMSecretAccessKey       *string  `json:"iam_secret_access_key,omitempty"`
	IAMSessionToken          *string  `json:"iam_session_token,omitempty"`
	IAMFetchRoles            bool     `json:"iam_fetch_roles,omitempty"`
	IAMFetchRolePathPrefix   string   `json:"iam_fetch_role_path_prefix,omitempty"`
	GoogleCloudProjectIDs    []string `json:"google_cloud_project_ids,omitempty"`
	GoogleCloudConfigJSON    *string  `json:"google_cloud_config_json,omitempty"`
	OpenStackVersion         string   `json:"openstack_version,omitempty"`
	OpenStackEndpoint        string   `json:"openstack_endpoint,omitempty"`
	OpenStackUsername        string   `json:"openstack_username,omitempty"`
	OpenStackUserID          string   `json:"openstack_user_id,omitempty"`
	OpenStackPassword        *string  `json:"openstack_password,omitempty"`
	OpenStackAPIKey          *string  `json:"openstack_apikey,omitempty"`
	OpenStackDomainName      string   `json:"openstack_domainname,omitempty"`
	OpenStackDomainID        string   `json:"openstack_domainid,omitempty"`
	OpenStackTokenID         *string  `json:"openstack_token_id,omitempty"`
	OpenStackTenantIDs       []string `json:"openstack_tenant_ids,omitempty"`
	OpenStackTenantNames     []string `json:"openstack_tenant_names,omitempty"`
	AzureBaseURL             string   `json:"azure_base_url,omitempty"`
	AzureSubscriptionID      string   `json:"azure_subscription_id,omitempty"`
	AzureTenantID            string   `json:"azure_tenant_id,omitempty"`
	AzureClientID            string   `json:"azure_client_id,omitempty"`
	AzureClientSecret        *string  `json:"azure_client_secret,omitempty"`
	LDAPProtocol             string   `json:"ldap_protocol,omitempty"`
	LDAPBase                 string   `json:"ldap_base,omitempty"`
	LDAPUserFilter           string   `json:"ldap_user_filter,omitempty"`
	LDAPBindDN               string   `json:"ldap_bind_dn,omitempty"`
	LDAPBindPassword         *string  `json:"ldap_bind_password,omitempty"`
	LDAPUserDNPattern        string   `json:"ldap_user_dn_pattern,omitempty"`
	GoogleGSuiteDomain       string   `json:"google_gsuite_domain,omitempty"`
	GoogleGSuiteDomainAdmin  string   `json:"google_gsuite_domain_admin_email,omitempty"`
	// OIDCEnabled false takes an OIDC source off the login choices (the button list and the login start refuse
	// it); absent means true for OIDC sources. Other types cannot log in with OIDC, so only false is accepted.
	OIDCEnabled           *bool    `json:"oidc_enabled,omitempty"`
	OIDCIssuer            string   `json:"oidc_issuer,omitempty"`
	OIDCButtonTitle       string   `json:"oidc_button_title,omitempty"`
	OIDCClientID          string   `json:"oidc_client_id,omitempty"`
	OIDCClientSecret      *string  `json:"oidc_client_secret,omitempty"`
	OIDCAdditionalScopes  []string `json:"oidc_additional_scopes,omitempty"`
	OIDCTagsAttributeName string   `json:"oidc_tags_attribute_name,omitempty"`
	// AttributeMapping maps Gatehouse's user fields to directory attributes; see attributeKeys.
	AttributeMapping map[string]string `json:"attribute_mapping,omitempty"`
	// MFAType is the second factor the source's users give after their password: DISABLED (or empty), TOTP
	// (built in, enrolled per user) or RADIUS (the code is checked by the RADIUS server at MFAAddress:MFAPort
	// with MFASharedSecret).
	MFAType    string `json:"mfa_type,omitempty"`
	MFAAddress string `json:"mfa_address,omitempty"`
	MFAPort    int    `json:"mfa_port,omitempty"`
	// MFASharedSecret is the RADIUS shared secret; write-only and sealed at rest. Not in the reference, which
	// leaves it to the appliance's own configuration.
	MFASharedSecret *string `json:"mfa_shared_secret,omitempty"`
	// MFARequireMessageAuthenticator refuses a RADIUS answer that carries no Message-Authenticator (the
	// Blast-RADIUS defence, CVE-2024-3596): a forged Access-Accept could otherwise simply leave it out. Off by
	// default, since many servers (Debian's FreeRADIUS 3.2.1 among them) send none.
	MFARequireMessageAuthenticator bool    `json:"mfa_require_message_authenticator,omitempty"`
	MFABaseDN                      string  `json:"mfa_base_dn,omitempty"`
	DomainControllerFQDN           string  `json:"domain_controller_fqdn,omitempty"`
	DomainControllerPort           int     `json:"domain_controller_port,omitempty"`
	KerberosTicket                 *string `json:"kerberos_ticket,omitempty"`
	EnableUserAuthentication       bool    `json:"enable_user_authentication,omitempty"`
	EnableMachineAuthentication    bool    `json:"enable_machine_authentication,omitempty"`
	// TLSTrustAnchors are PEM CA certificates that verify an LDAPS or StartTLS server, or an OIDC provider;
	// empty means the system roots. Not in the reference, which leaves trust to the host.
	TLSTrustAnchors string `json:"tls_trust_anchors,omitempty"`
}

// secretFields lists the write-only fields of a Connection by JSON name.
func (c *Connection) secretFields() map[string]**string {
	return map[string]**string{
		"iam_secret_access_key":    &c.IAMSecretAccessKey,
		"iam_session_token":        &c.IAMSessionToken,
		"google_cloud_config_json": &c.GoogleCloudConfigJSON,
		"openstack_password":       &c.OpenStackPassword,
		"openstack_apikey":         &c.OpenStackAPIKey,
		"openstack_token_id":       &c.OpenStackTokenID,
		"azure_client_secret":      &c.AzureClientSecret,
		"ldap_bind_password":       &c.LDAPBindPassword,
		"oidc_client_secret":       &c.OIDCClientSecret,
		"kerberos_ticket":          &c.KerberosTicket,
		"mfa_shared_secret":        &c.MFASharedSecret,
	}
}

// Settings is the part of a Source kept in the store's config column: everything but the columns of its own and
// the secrets, which are split off and sealed.
type Settings struct {
	Comment                     string                `json:"comment"`
	Tags                        []string              `json:"tags"`
	UsernamePattern             []string              `json:"username_pattern"`
	ExternalUserMapping         []ExternalUserMapping `json:"external_user_mapping"`
	SessionPasswordEnabled      bool                  `json:"session_password_enabled"`
	ChildSessionAutoLogoutDelay int                   `json:"child_session_auto_logout_delay"`
	SessionPasswordPolicy       PasswordPolicy        `json:"session_password_policy"`
	Connection                  Connection            `json:"connection"`
}

// FromStored rebuilds a Source, secrets included, from its stored form. Callers that answer an API request must
// call Redact before sending it.
func FromStored(st *store.Source) (*Source, error) {
	var set Settings
	if err := json.Unmarshal(st.Config, &set); err != nil {
		return nil, fmt.Errorf("source %s settings: %w", st.ID, err)
	}
	src := &Source{
		ID: st.ID, Created: st.Created, Updated: st.Updated, UpdatedBy: st.UpdatedBy, Author: st.Author,
		Enabled: st.Enabled, TTL: st.TTL, StatusCode: st.StatusCode, StatusText: st.StatusText, Name: st.Name,
		Settings: set,
	}
	if !st.LastSync.IsZero() {
		at := st.LastSync
		src.LastSync = &at
	}
	src.Connection.Type = st.Type
	for name, field := range src.Connection.secretFields() {
		if v, ok := st.Secrets[name]; ok {
			*field = &v
		}
	}
	src.normalize()
	return src, nil
}

// ToStored is the stored form of src, with its secrets split off for sealing.
func (src *Source) ToStored() *store.Source {
	conn := src.Connection
	secrets := map[string]string{}
	for name, field := range conn.secretFields() {
		if *field != nil && **field != "" {
			secrets[name] = **field
		}
		*field = nil
	}
	set := src.Settings
	set.Connection = conn
	config, _ := json.Marshal(set)
	return &store.Source{
		ID: src.ID, Name: src.Name, Type: src.Connection.Type, Enabled: src.Enabled, TTL: src.TTL, Config: config,
		Secrets: secrets, StatusCode: src.StatusCode, StatusText: src.StatusText,
		Meta: model.Meta{Created: src.Created, Author: src.Author, Updated: src.Updated, UpdatedBy: src.UpdatedBy},
	}
}

// Redact removes every secret, for an API answer.
func (src *Source) Redact() {
	for _, field := range src.Connection.secretFields() {
		*field = nil
	}
}

// KeepSecrets copies into src the secrets it leaves out (nil) from old, so an update that omits a secret keeps it.
// The RADIUS shared secret is kept only while mfa_type stays RADIUS: it means nothing to another second factor.
func (src *Source) KeepSecrets(old *Source) {
	oldFields := old.Connection.secretFields()
	for name, field := range src.Connection.secretFields() {
		if name == "mfa_shared_secret" && !strings.EqualFold(strings.TrimSpace(src.Connection.MFAType), MFARADIUS) {
			continue
		}
		if *field == nil {
			*field = *oldFields[name]
		}
	}
}

// OIDCLoginEnabled reports whether an OIDC source offers logins: oidc_enabled absent or true.
func (c *Connection) OIDCLoginEnabled() bool {
	return c.Type == TypeOIDC && (c.OIDCEnabled == nil || *c.OIDCEnabled)
}

// normalize gives nil lists their empty value and computes the password policy's derived fields.
func (src *Source) normalize() {
	if src.Connection.Type == TypeOIDC {
		on := src.Connection.OIDCLoginEnabled()
		src.Connection.OIDCEnabled = &on
	} else {
		src.Connection.OIDCEnabled = nil
	}
	for _, l := range []*[]string{&src.Tags, &src.UsernamePattern} {
		if *l == nil {
			*l = []string{}
		}
	}
	if src.ExternalUserMapping == nil {
		src.ExternalUserMapping = []ExternalUserMapping{}
	}
	src.SessionPasswordPolicy.compute()
}
