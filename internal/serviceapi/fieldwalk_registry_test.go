package serviceapi_test

// enforcedServiceFields lists each service API field (object:path) whose non-default value is accepted, with the
// test ("package.TestName") that proves the value takes effect. TestServiceFieldWalk fails for an accepted field
// missing here and for a named test that does not exist. Labels (names, comments, tags, e-mail) take effect by being
// stored, listed and searched; their tests are the CRUD and search tests.
var enforcedServiceFields = map[string]string{
	"users:email":     "serviceapi.TestUsersCRUD",
	"users:full_name": "serviceapi.TestUsersCRUD",
	"users:enabled":   "serviceapi.TestDisableAndPasswordChangeRevokeTokens",
	"users:password":  "serviceapi.TestDisableAndPasswordChangeRevokeTokens",

	"api-clients:roles": "serviceapi.TestAPIClientsCRUD",

	"roles:comment":      "serviceapi.TestRolesCRUD",
	"roles:permissions":  "serviceapi.TestPermissionMatrix",
	"roles:source_rules": "directory.TestOIDCLoginProvisionsUserWithGroupsAndTags",

	// The host store is an inventory: its fields take effect by being kept, listed and searched.
	"hosts:addresses":           "serviceapi.TestHostsListAndSearch",
	"hosts:comment":             "serviceapi.TestHostsCRUD",
	"hosts:distinguished_name":  "serviceapi.TestHostsCRUD",
	"hosts:external_id":         "serviceapi.TestHostsCRUD",
	"hosts:host_classification": "serviceapi.TestHostsCRUD",
	"hosts:host_type":           "serviceapi.TestHostsCRUD",
	"hosts:instance_id":         "serviceapi.TestHostsCRUD",
	"hosts:organization":        "serviceapi.TestHostsCRUD",
	"hosts:organizational_unit": "serviceapi.TestHostsCRUD",
	"hosts:services[].service":  "serviceapi.TestHostsListAndSearch",
	"hosts:services[].address":  "serviceapi.TestHostsCRUD",
	"hosts:services[].port":     "serviceapi.TestHostsCRUD",
	"hosts:services[].source":   "serviceapi.TestHostsCRUD",
	"hosts:source":              "serviceapi.TestHostsCRUD",
	"hosts:source_id":           "serviceapi.TestHostsCRUD",
	"hosts:tags":                "serviceapi.TestHostsListAndSearch",
	"hosts:zone":                "serviceapi.TestHostsCRUD",

	"targets:audit_enabled":                                "proxy.TestRecording",
	"targets:authorized_endpoints[].allow_unauthenticated": "gate.TestAnonymousEndpointInjectsNothing",
	"targets:authorized_endpoints[].host":                  "gate.TestAuthorize",
	"targets:authorized_endpoints[].methods":               "gate.TestAuthorize",
	"targets:authorized_endpoints[].paths":                 "gate.TestAuthorize",
	"targets:authorized_endpoints[].protocols":             "policy.TestRulesMatch",
	"targets:authorized_endpoints[].nat_target_host":       "proxy.TestNATTargetHost",
	"targets:unauthorized_endpoints[].host":                "gate.TestAuthorize",
	"targets:unauthorized_endpoints[].methods":             "gate.TestAuthorize",
	"targets:unauthorized_endpoints[].paths":               "gate.TestAuthorize",
	"targets:unauthorized_endpoints[].protocols":           "policy.TestRulesMatch",
	"targets:comment":                                      "serviceapi.TestTargetsCRUD",
	"targets:disabled":                                     "gate.TestChangesApplyOnReload",
	"targets:roles":                                        "gate.TestChangesApplyOnReload",
	"targets:tags":                                         "serviceapi.TestTargetsSearchAndList",
	"targets:target_credential.type":                       "proxy.TestCredentialInjection",
	"targets:target_credential.bearer_token":               "proxy.TestCredentialInjection",
	"targets:tls_insecure_skip_verify":                     "proxy.TestUpstreamErrors",
	"targets:tls_trust_anchors":                            "e2e.TestCurl",

	"credentials:comment":        "serviceapi.TestCredentialsOwnership",
	"credentials:enabled":        "gate.TestChangesApplyOnReload",
	"credentials:not_after":      "gate.TestChangesApplyOnReload",
	"credentials:not_before":     "gate.TestChangesApplyOnReload",
	"credentials:source_address": "gate.TestChangesApplyOnReload",

	"settings:idle_session_timeout":     "sessions.TestIdleTimeoutAndLifetime",
	"settings:max_session_lifetime":     "sessions.TestIdleTimeoutAndLifetime",
	"settings:session_cooldown":         "sessions.TestTerminateAbortsInFlightAndCoolsDown",
	"settings:max_credential_validity":  "serviceapi.TestCredentialsValidation",
	"settings:public_addresses":         "serviceapi.TestSettings",
	"settings:recording_body_limit":     "sessions.TestSettingsRecordingLimitAndRedaction",
	"settings:recording_redact_headers": "sessions.TestSettingsRecordingLimitAndRedaction",
	"settings:reauthorization_interval": "serviceapi.TestReauthorizationInterval",

	"sources(LDAP):comment":                                      "serviceapi.TestSourcesAPI",
	"sources(LDAP):tags":                                         "serviceapi.TestSourcesAPI",
	"sources(LDAP):enabled":                                      "serviceapi.TestSourceStatusCodes",
	"sources(LDAP):ttl":                                          "directory.TestSyncRemovedUser",
	"sources(LDAP):username_pattern":                             "directory.TestAuthenticate",
	"sources(LDAP):connection.address":                           "serviceapi.TestLDAPSourceEndToEnd",
	"sources(LDAP):connection.port":                              "serviceapi.TestLDAPSourceEndToEnd",
	"sources(LDAP):connection.ldap_bind_password":                "serviceapi.TestSourceStatusCodes",
	"sources(LDAP):connection.attribute_mapping":                 "directory.TestSyncProtocols",
	"sources(LDAP):connection.mfa_type":                          "serviceapi.TestTOTPSecondFactor",
	"sources(LDAP):connection.mfa_address":                       "serviceapi.TestRADIUSSecondFactor",
	"sources(LDAP):connection.mfa_port":                          "serviceapi.TestRADIUSSecondFactor",
	"sources(LDAP):connection.mfa_require_message_authenticator": "serviceapi.TestRADIUSSecondFactor",
	"sources(LDAP):connection.mfa_shared_secret":                 "serviceapi.TestRADIUSSecondFactor",

	"sources(LOCAL):name":                                         "serviceapi.TestSourcesAPI",
	"sources(LOCAL):comment":                                      "serviceapi.TestSourcesAPI",
	"sources(LOCAL):tags":                                         "serviceapi.TestSourcesAPI",
	"sources(LOCAL):username_pattern":                             "directory.TestLocalUsernamePattern",
	"sources(LOCAL):connection.mfa_type":                          "serviceapi.TestTOTPSecondFactor",
	"sources(LOCAL):connection.mfa_address":                       "serviceapi.TestRADIUSSecondFactor",
	"sources(LOCAL):connection.mfa_port":                          "serviceapi.TestRADIUSSecondFactor",
	"sources(LOCAL):connection.mfa_require_message_authenticator": "serviceapi.TestRADIUSSecondFactor",
	"sources(LOCAL):connection.mfa_shared_secret":                 "serviceapi.TestRADIUSSecondFactor",

	"sources(OIDC):comment":                             "serviceapi.TestSourcesAPI",
	"sources(OIDC):tags":                                "serviceapi.TestSourcesAPI",
	"sources(OIDC):enabled":                             "directory.TestOIDCLoginRefusals",
	"sources(OIDC):ttl":                                 "directory.TestOIDCSourceStatusAndSecret",
	"sources(OIDC):username_pattern":                    "directory.TestAuthenticate",
	"sources(OIDC):connection.oidc_enabled":             "directory.TestOIDCEnabledFalseRemovesLoginChoice",
	"sources(OIDC):connection.oidc_button_title":        "directory.TestOIDCLoginProvisionsUserWithGroupsAndTags",
	"sources(OIDC):connection.oidc_client_id":           "directory.TestOIDCLoginProvisionsUserWithGroupsAndTags",
	"sources(OIDC):connection.oidc_client_secret":       "directory.TestOIDCLoginProvisionsUserWithGroupsAndTags",
	"sources(OIDC):connection.oidc_additional_scopes":   "directory.TestOIDCLoginProvisionsUserWithGroupsAndTags",
	"sources(OIDC):connection.oidc_tags_attribute_name": "directory.TestOIDCLoginProvisionsUserWithGroupsAndTags",
}

// ignoredServiceFields are accepted on input and ignored, never stored: the server fills them in (so that a GET
// answer can be sent back as a PUT). The walk checks that the value sent is not what is stored.
var ignoredServiceFields = map[string]string{
	"credentials:target.name":          "filled in from the target on reads",
	"roles:source_rules[].source.name": "filled in from the source on reads",
	// PrivX's own spellings: only token credentials exist, and no credential needs a login session (ENABLED is
	// refused with NOT_SUPPORTED, serviceapi.TestOpenAPIMatchesHandlers).
	"credentials:type":                         "always token; basicauth and certificate are refused",
	"credentials:privx_login_session_required": "DEFAULT and DISABLED are what Gatehouse does; ENABLED is refused",
}

func init() {
	// Fields PrivX answers with that only describe an object (readonly:"true" in the request types).
	for _, f := range []string{"deleted", "explicit", "explicit_count", "implicit", "member_count", "owner_src", "system", "updatedby"} {
		ignoredServiceFields["roles:"+f] = "PrivX output field, ignored on input"
	}
	for _, f := range []string{"deleted", "host_certificate", "status", "services[].created", "services[].latency_in_microseconds",
		"services[].service_version", "services[].status", "services[].status_updated", "services[].updated"} {
		ignoredServiceFields["hosts:"+f] = "PrivX output field, ignored on input"
	}
	for _, o := range []string{"sources(LDAP)", "sources(OIDC)", "sources(LOCAL)"} {
		for _, f := range []string{"id", "created", "updated", "updated_by", "author", "status_code", "status_text", "last_sync", "user_count",
			"session_password_policy.password_entropy", "session_password_policy.password_strength"} {
			ignoredServiceFields[o+":"+f] = "server-populated"
		}
	}
}
