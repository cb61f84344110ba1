package serviceapi

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/directory"
)

// The PrivX SDK sends a source with its whole connection object (rolestore.SourceConnection): every field of every
// source type PrivX knows, most of them at their zero value. sourceInput accepts that object: the fields Gatehouse
// implements decode into directory.Source and take effect (two under PrivX's own names: ldap_base_dn is ldap_base,
// root_certificates is tls_trust_anchors), and the fields of features Gatehouse lacks are accepted at their zero
// value and refused otherwise with NOT_SUPPORTED naming them. Answers repeat the two renamed fields under PrivX's
// names, so the SDK reads back what it wrote.

// sourceInput is a source create or update body.
type sourceInput struct {
	directory.Source
	// Connection shadows directory.Source's own (a shallower field wins in encoding/json).
	Connection sourceConnectionInput `json:"connection"`

	UpdatedBy    json.RawMessage `json:"updatedby" readonly:"true"`
	RegionFilter json.RawMessage `json:"region_filter" why:"region filters apply to cloud sources, which Gatehouse does not support"`
}

// sourceConnectionInput is directory.Connection plus PrivX's names for two of its fields and the fields of the
// PrivX source features Gatehouse lacks.
type sourceConnectionInput struct {
	directory.Connection
	LDAPBaseDN       *string `json:"ldap_base_dn"`
	RootCertificates *string `json:"root_certificates"`
	privxSourceConnection
}

// privxSourceConnection are the connection fields of PrivX source features Gatehouse lacks.
type privxSourceConnection struct {
	UseInstanceTags     json.RawMessage `json:"use_instance_tags" why:"Gatehouse does not import hosts from a source"`
	HostFilterTag       json.RawMessage `json:"host_filter_tag" why:"Gatehouse does not import hosts from a source"`
	AWSRoleFilterName   json.RawMessage `json:"aws_role_filter_name" why:"Gatehouse syncs and logs in through LOCAL, LDAP, AD and OIDC sources only"`
	IAMRoleARN          json.RawMessage `json:"iam_role_arn" why:"Gatehouse syncs and logs in through LOCAL, LDAP, AD and OIDC sources only"`
	IAMExternalID       json.RawMessage `json:"iam_external_id" why:"Gatehouse syncs and logs in through LOCAL, LDAP, AD and OIDC sources only"`
	OpenStackDomainID   json.RawMessage `json:"openstack_domain_id" why:"Gatehouse syncs and logs in through LOCAL, LDAP, AD and OIDC sources only"`
	OpenStackRegion     json.RawMessage `json:"openstack_region" why:"Gatehouse syncs and logs in through LOCAL, LDAP, AD and OIDC sources only"`
	MsGraphBaseURL      json.RawMessage `json:"msgraph_base_url" why:"Microsoft Graph sources are not supported; use an OIDC source for Entra ID"`
	MsGraphTenantID     json.RawMessage `json:"msgraph_tenant_id" why:"Microsoft Graph sources are not supported; use an OIDC source for Entra ID"`
	MsGraphClientID     json.RawMessage `json:"msgraph_client_id" why:"Microsoft Graph sources are not supported; use an OIDC source for Entra ID"`
	MsGraphClientSecret json.RawMessage `json:"msgraph_client_secret" why:"Microsoft Graph sources are not supported; use an OIDC source for Entra ID"`
	MsGraphBatchSize    json.RawMessage `json:"msgraph_batch_size" why:"Microsoft Graph sources are not supported; use an OIDC source for Entra ID"`
	MsGraphPageSize     json.RawMessage `json:"msgraph_page_size" why:"Microsoft Graph sources are not supported; use an OIDC source for Entra ID"`

	PasswordChangeEnabled  json.RawMessage `json:"password_change_enabled" why:"directory users change their password in the directory, not through Gatehouse"`
	ClientCertAuthEnabled  json.RawMessage `json:"client_certificate_authentication_enabled" why:"LDAP client certificate authentication is not implemented"`
	ClientCAPEM            json.RawMessage `json:"client_ca_pem" why:"LDAP client certificate authentication is not implemented"`
	ClientCertAuthRequired json.RawMessage `json:"client_certificate_authentication_required" why:"LDAP client certificate authentication is not implemented"`
	SkipStrictCertCheck    json.RawMessage `json:"skip_strict_cert_check" why:"a directory's certificate is always verified; give its CA in tls_trust_anchors (root_certificates)"`

	OIDCAdditionalIssuer    json.RawMessage `json:"oidc_additional_issuer" why:"an OIDC source trusts exactly one issuer"`
	OIDCAllowLoginTag       json.RawMessage `json:"oidc_allow_login_tag" why:"logins are not filtered by tag; use roles' source rules"`
	OIDCUseUserInfoEndpoint json.RawMessage `json:"oidc_use_userinfo_endpoint" why:"users are read from the ID token's claims only"`
	OIDCExpireImplicitRoles json.RawMessage `json:"oidc_expire_implicit_roles" why:"implicit roles follow the user's groups at each login and refresh"`
	OIDCRequireIDTokenAttrs json.RawMessage `json:"oidc_require_idtoken_attributes" why:"ID token attributes are not required by value"`
	UserRetentionTTL        json.RawMessage `json:"user_retention_ttl" why:"users of a source are kept until the source drops them"`
	GroupFilter             json.RawMessage `json:"group_filter" why:"groups are found with attribute_mapping.group_filter"`

	SCIMAuthenticationType json.RawMessage `json:"scim_authentication_type" why:"SCIM provisioning is not supported"`
	SCIMCreateRoles        json.RawMessage `json:"scim_create_roles" why:"SCIM provisioning is not supported"`
	SCIMUpdateSSHHostKeys  json.RawMessage `json:"scim_update_ssh_host_keys" why:"SCIM provisioning is not supported"`
	SCIMUsername           json.RawMessage `json:"scim_username" why:"SCIM provisioning is not supported"`
	SCIMPassword           json.RawMessage `json:"scim_password" why:"SCIM provisioning is not supported"`
	SCIMUserFilter         json.RawMessage `json:"scim_user_filter" why:"SCIM provisioning is not supported"`

	VMWareURL            json.RawMessage `json:"vmware_url" why:"Gatehouse does not import hosts from a source"`
	VMWareUsername       json.RawMessage `json:"vmware_username" why:"Gatehouse does not import hosts from a source"`
	VMWarePassword       json.RawMessage `json:"vmware_password" why:"Gatehouse does not import hosts from a source"`
	VMWareDataCenter     json.RawMessage `json:"vmware_datacenter" why:"Gatehouse does not import hosts from a source"`
	VMWareUseVMBiosUUIDs json.RawMessage `json:"vmware_use_vmbios_uuids" why:"Gatehouse does not import hosts from a source"`

	UKMEndpoint    json.RawMessage `json:"ukm_endpoint" why:"UKM sources are not supported"`
	UKMToken       json.RawMessage `json:"ukm_token" why:"UKM sources are not supported"`
	UKMTrustAnchor json.RawMessage `json:"um_ca_pem" why:"UKM sources are not supported"`

	OCIUser              json.RawMessage `json:"oci_user" why:"Gatehouse does not import hosts from a source"`
	OCITenancy           json.RawMessage `json:"oci_tenancy" why:"Gatehouse does not import hosts from a source"`
	OCIHomeRegion        json.RawMessage `json:"oci_home_region" why:"Gatehouse does not import hosts from a source"`
	OCIFingerprint       json.RawMessage `json:"oci_fingerprint" why:"Gatehouse does not import hosts from a source"`
	OCIPrivateKey        json.RawMessage `json:"oci_private_key" why:"Gatehouse does not import hosts from a source"`
	OCIPassphrase        json.RawMessage `json:"oci_passphrase" why:"Gatehouse does not import hosts from a source"`
	OCICompartmentFilter json.RawMessage `json:"oci_compartment_filter" why:"Gatehouse does not import hosts from a source"`

	ProxmoxURL            json.RawMessage `json:"proxmox_url" why:"Gatehouse does not import hosts from a source"`
	ProxmoxTokenID        json.RawMessage `json:"proxmox_token_id" why:"Gatehouse does not import hosts from a source"`
	ProxmoxSecret         json.RawMessage `json:"proxmox_secret" why:"Gatehouse does not import hosts from a source"`
	ProxmoxUseSMBiosUUIDs json.RawMessage `json:"proxmox_use_smbios_uuids" why:"Gatehouse does not import hosts from a source"`

	EphemeralTagsAttributeName json.RawMessage `json:"ephemeral_tags_attribute_name" why:"ephemeral users are not supported"`
	EphemeralGrantPrivXUser    json.RawMessage `json:"ephemeral_grant_privx_user_role" why:"ephemeral users are not supported"`
}

// decodeSource reads a source body in Gatehouse's or the SDK's shape. stored is the source an update replaces (nil
// on create): answers carry both spellings of a renamed field, so a client that reads a source and changes one of
// them sends the other unchanged, and the one that differs from the stored value is the change.
func decodeSource(r *http.Request, stored *directory.Source) (*directory.Source, error) {
	var in sourceInput
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if err := refuseUnsupported(&in); err != nil {
		return nil, err
	}
	if err := refuseUnsupported(&in.Connection.privxSourceConnection); err != nil {
		return nil, withPrefix(err, "connection.")
	}
	src := in.Source
	src.Connection = in.Connection.Connection
	var old directory.Connection
	if stored != nil {
		old = stored.Connection
	}
	for _, alias := range []struct {
		privx, own string
		from       *string
		to         *string
		old        string
	}{
		{"ldap_base_dn", "ldap_base", in.Connection.LDAPBaseDN, &src.Connection.LDAPBase, old.LDAPBase},
		{"root_certificates", "tls_trust_anchors", in.Connection.RootCertificates, &src.Connection.TLSTrustAnchors, old.TLSTrustAnchors},
	} {
		if alias.from == nil || *alias.from == "" {
			continue
		}
		from, to := strings.TrimSpace(*alias.from), strings.TrimSpace(*alias.to)
		if stored != nil && to != from && from == strings.TrimSpace(alias.old) {
			continue // the PrivX spelling is the stored value sent back; Gatehouse's is the change
		}
		if to != "" && to != from && (stored == nil || to != strings.TrimSpace(alias.old)) {
			return nil, badRequest("connection."+alias.privx, "connection."+alias.privx+" and connection."+alias.own+" name the same setting; give one, or both alike")
		}
		*alias.to = *alias.from
	}
	return &src, nil
}

// sourceView is a source as an answer shows it: Gatehouse's fields, and the renamed ones under PrivX's names too.
type sourceView struct {
	*directory.Source
	Connection sourceConnectionView `json:"connection"`
}

type sourceConnectionView struct {
	directory.Connection
	LDAPBaseDN       string `json:"ldap_base_dn,omitempty"`
	RootCertificates string `json:"root_certificates,omitempty"`
}

// viewSource redacts src and adds PrivX's names.
func viewSource(src *directory.Source) sourceView {
	out := redacted(src)
	return sourceView{Source: out, Connection: sourceConnectionView{Connection: out.Connection,
		LDAPBaseDN: out.Connection.LDAPBase, RootCertificates: out.Connection.TLSTrustAnchors}}
}
