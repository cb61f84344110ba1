package serviceapi

import "encoding/json"

// The PrivX host model carries SSH, RDP, web and password-rotation features Gatehouse's host inventory does not
// have. Its fields are known here so the SDK's whole Host is accepted; each must be zero (refuseUnsupported),
// those that only describe a host in an answer are read-only and ignored.

// privxHostFields are the PrivX host fields beyond Gatehouse's.
type privxHostFields struct {
	PrivXDeployable              json.RawMessage `json:"deployable" why:"a PrivX host feature (deployable) Gatehouse does not have"`
	PrivXTofu                    json.RawMessage `json:"tofu" why:"a PrivX host feature (tofu) Gatehouse does not have"`
	PrivXToch                    json.RawMessage `json:"toch" why:"a PrivX host feature (toch) Gatehouse does not have"`
	PrivXStandAloneHost          json.RawMessage `json:"stand_alone_host" why:"a PrivX host feature (stand alone host) Gatehouse does not have"`
	PrivXSshHostPublicKeys       json.RawMessage `json:"ssh_host_public_keys" why:"a PrivX host feature (ssh host public keys) Gatehouse does not have"`
	PrivXHostCertificateRaw      json.RawMessage `json:"host_certificate_raw" why:"a PrivX host feature (host certificate raw) Gatehouse does not have"`
	PrivXHostCertificate         json.RawMessage `json:"host_certificate" readonly:"true"`
	PrivXContactAddress          json.RawMessage `json:"contact_address" why:"a PrivX host feature (contact address) Gatehouse does not have"`
	PrivXPasswordRotationEnabled json.RawMessage `json:"password_rotation_enabled" why:"a PrivX host feature (password rotation enabled) Gatehouse does not have"`
	PrivXPrincipals              json.RawMessage `json:"principals" why:"a PrivX host feature (principals) Gatehouse does not have"`
	PrivXPasswordRotation        json.RawMessage `json:"password_rotation" why:"a PrivX host feature (password rotation) Gatehouse does not have"`
	PrivXAccessGroupId           json.RawMessage `json:"access_group_id" why:"Gatehouse has no access groups"`
	PrivXCloudProvider           json.RawMessage `json:"cloud_provider" why:"a PrivX host feature (cloud provider) Gatehouse does not have"`
	PrivXCloudProviderRegion     json.RawMessage `json:"cloud_provider_region" why:"a PrivX host feature (cloud provider region) Gatehouse does not have"`
	PrivXStatus                  json.RawMessage `json:"status" readonly:"true"`
	PrivXScope                   json.RawMessage `json:"scope" why:"a PrivX host feature (scope) Gatehouse does not have"`
	PrivXAuditEnabled            json.RawMessage `json:"audit_enabled" why:"hosts are an inventory; recording is set on API targets"`
	PrivXUserMessage             json.RawMessage `json:"user_message" why:"a PrivX host feature (user message) Gatehouse does not have"`
	PrivXDisabled                json.RawMessage `json:"disabled" why:"hosts cannot be disabled in Gatehouse" zero:"\"NOT_DISABLED\""`
	PrivXSessionRecordingOptions json.RawMessage `json:"session_recording_options" why:"a PrivX host feature (session recording options) Gatehouse does not have"`
	PrivXDeleted                 json.RawMessage `json:"deleted" readonly:"true"`
}

// privxServiceFields are the PrivX host service fields beyond Gatehouse's service, address, port and source.
type privxServiceFields struct {
	PrivXUseForPasswordRotation       json.RawMessage `json:"use_for_password_rotation" why:"a PrivX service feature (use for password rotation) Gatehouse does not have"`
	PrivXSshTunnelPort                json.RawMessage `json:"ssh_tunnel_port" why:"a PrivX service feature (ssh tunnel port) Gatehouse does not have"`
	PrivXUsePlaintextVnc              json.RawMessage `json:"use_plaintext_vnc" why:"a PrivX service feature (use plaintext vnc) Gatehouse does not have"`
	PrivXRealm                        json.RawMessage `json:"realm" why:"a PrivX service feature (realm) Gatehouse does not have"`
	PrivXLoginPageUrl                 json.RawMessage `json:"login_page_url" why:"a PrivX service feature (login page url) Gatehouse does not have"`
	PrivXUsernameFieldName            json.RawMessage `json:"username_field_name" why:"a PrivX service feature (username field name) Gatehouse does not have"`
	PrivXPasswordFieldName            json.RawMessage `json:"password_field_name" why:"a PrivX service feature (password field name) Gatehouse does not have"`
	PrivXLoginRequestUrl              json.RawMessage `json:"login_request_url" why:"a PrivX service feature (login request url) Gatehouse does not have"`
	PrivXLoginRequestPasswordProperty json.RawMessage `json:"login_request_password_property" why:"a PrivX service feature (login request password property) Gatehouse does not have"`
	PrivXAuthType                     json.RawMessage `json:"auth_type" why:"a PrivX service feature (auth type) Gatehouse does not have"`
	PrivXStatus                       json.RawMessage `json:"status" readonly:"true"`
	PrivXStatusUpdated                json.RawMessage `json:"status_updated" readonly:"true"`
	PrivXAllowedDomains               json.RawMessage `json:"allowed_domains" why:"a PrivX service feature (allowed domains) Gatehouse does not have"`
	PrivXBrowser                      json.RawMessage `json:"browser" why:"a PrivX service feature (browser) Gatehouse does not have"`
	PrivXKioskMode                    json.RawMessage `json:"kiosk_mode" why:"a PrivX service feature (kiosk mode) Gatehouse does not have"`
	PrivXEnableUrlbar                 json.RawMessage `json:"enable_urlbar" why:"a PrivX service feature (enable urlbar) Gatehouse does not have"`
	PrivXEnableNavibar                json.RawMessage `json:"enable_navibar" why:"a PrivX service feature (enable navibar) Gatehouse does not have"`
	PrivXAutohideNavibar              json.RawMessage `json:"autohide_navibar" why:"a PrivX service feature (autohide navibar) Gatehouse does not have"`
	PrivXEnableDevtools               json.RawMessage `json:"enable_devtools" why:"a PrivX service feature (enable devtools) Gatehouse does not have"`
	PrivXEnablePopups                 json.RawMessage `json:"enable_popups" why:"a PrivX service feature (enable popups) Gatehouse does not have"`
	PrivXEnableWebCompatibilityMode   json.RawMessage `json:"enable_web_compatibility_mode" why:"a PrivX service feature (enable web compatibility mode) Gatehouse does not have"`
	PrivXTimezone                     json.RawMessage `json:"timezone" why:"a PrivX service feature (timezone) Gatehouse does not have"`
	PrivXIdleTimeLimit                json.RawMessage `json:"idle_time_limit" why:"a PrivX service feature (idle time limit) Gatehouse does not have"`
	PrivXWebX11Backend                json.RawMessage `json:"web_x11_backend" why:"a PrivX service feature (web x11 backend) Gatehouse does not have"`
	PrivXServiceVersion               json.RawMessage `json:"service_version" readonly:"true"`
	PrivXCreated                      json.RawMessage `json:"created" readonly:"true"`
	PrivXUpdated                      json.RawMessage `json:"updated" readonly:"true"`
	PrivXCertificateTemplate          json.RawMessage `json:"certificate_template" why:"a PrivX service feature (certificate template) Gatehouse does not have"`
	PrivXAllowModifiedWebParams       json.RawMessage `json:"allow_modified_web_params" why:"a PrivX service feature (allow modified web params) Gatehouse does not have"`
	PrivXProtocolVersion              json.RawMessage `json:"protocol_version" why:"a PrivX service feature (protocol version) Gatehouse does not have"`
	PrivXLatencyInMicroseconds        json.RawMessage `json:"latency_in_microseconds" readonly:"true"`
	PrivXDb                           json.RawMessage `json:"db" why:"a PrivX service feature (db) Gatehouse does not have"`
	PrivXUseLegacyCipherSuites        json.RawMessage `json:"use_legacy_cipher_suites" why:"a PrivX service feature (use legacy cipher suites) Gatehouse does not have"`
	PrivXTlsMinVersion                json.RawMessage `json:"tls_min_version" why:"a PrivX service feature (tls min version) Gatehouse does not have"`
	PrivXTlsMaxVersion                json.RawMessage `json:"tls_max_version" why:"a PrivX service feature (tls max version) Gatehouse does not have"`
	PrivXRdsType                      json.RawMessage `json:"rds_type" why:"a PrivX service feature (rds type) Gatehouse does not have"`
	PrivXRdsLb                        json.RawMessage `json:"rds_lb" why:"a PrivX service feature (rds lb) Gatehouse does not have"`
	PrivXRdsBroker                    json.RawMessage `json:"rds_broker" why:"a PrivX service feature (rds broker) Gatehouse does not have"`
}
