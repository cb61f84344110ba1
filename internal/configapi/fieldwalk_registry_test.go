package configapi

// enforcedConfigFields lists each configuration field (kind:path) whose non-default value is accepted, with the
// test ("package.TestName") that proves the value takes effect. TestConfigurationFieldWalk fails for an accepted
// field missing here and for a named test that does not exist.
var enforcedConfigFields = map[string]string{
	// Names are labels: their effect is to be listed and shown, which the shape tests check.
	"http/authentication_policies:name": "configapi.TestPasswordLoginAndShapes",
	"http/channel_policies:name":        "configapi.TestPasswordLoginAndShapes",
	"http/connections:name":             "configapi.TestPasswordLoginAndShapes",
	"http/settings_policies:name":       "configapi.TestPasswordLoginAndShapes",
	"policies/audit_policies:name":      "configapi.TestPasswordLoginAndShapes",
	"policies/userlists:name":           "configapi.TestReferenceCurlFlow",

	"http/channel_policies:rules[].allowed_for.gateway_groups": "e2e.TestPolicyChannelAndUserList",
	"http/channel_policies:rules[].allowed_for.userlists":      "e2e.TestPolicyChannelAndUserList",
	"http/connections:active":                                  "e2e.TestPolicyClientNetwork",
	"http/connections:network.targets":                         "e2e.TestPolicyTargetNetwork",
	"http/connections:network.ports":                           "e2e.TestPolicyPort",
	"http/connections:rate_limit.enabled":                      "e2e.TestPolicyRateLimit",
	"http/connections:rate_limit.value":                        "e2e.TestPolicyRateLimit",
	"http/options:service.enabled":                             "configapi.TestAdmitOrderAndDefault",
	"http/settings_policies:idle_timeout":                      "e2e.TestPolicyTimeouts",
	"http/settings_policies:session_timeout":                   "e2e.TestPolicyTimeouts",
	"policies/audit_policies:record":                           "e2e.TestPolicyRecording",
	"policies/audit_policies:body_limit":                       "e2e.TestPolicyRecording",
	"policies/audit_policies:redact_headers":                   "e2e.TestPolicyRecording",
	"policies/userlists:except":                                "e2e.TestPolicyChannelAndUserList",
	"aaa/settings:x509.authentication_ca":                      "configapi.TestX509LoginRefusesPasswords",

	// Connection-policy transport security and the certificate objects (the connection-policy branch).
	"http/connections:web_proxy.enabled":                                   "e2e.TestWebProxyTLS",
	"http/connections:transport_security.allow_non_encrypted":              "e2e.TestTransportSecurityModes",
	"http/connections:transport_security.server_certificate_check.enabled": "e2e.TestServerCertificateCheck",
	"policies/trusted_ca_lists:name":                                       "e2e.TestServerCertificateCheck",
	"policies/signing_cas:name":                                            "e2e.TestHostCertificationMethod",
	"policies/x509_identities:name":                                        "e2e.TestHostCertificationMethod",

	// Trail indexing, retention and download auditing.
	"http/connections:indexing.enabled":                 "e2e.TestTrailSearch",
	"http/connections:log_audit_trail_downloads":        "e2e.TestTrailDownloadAuditing",
	"http/connections:channel_database_cleanup.enabled": "e2e.TestRetention",
	"http/connections:channel_database_cleanup.days":    "e2e.TestRetention",
	"http/options:channel_database_cleanup.enabled":     "e2e.TestRetention",
	"http/options:channel_database_cleanup.days":        "e2e.TestRetention",

	// Four-eyes approval and auditors (access_control).
	"http/connections:access_control[].authorizer":                 "e2e.TestSessionApproval",
	"http/connections:access_control[].require_different_ip":       "e2e.TestSessionApproval",
	"http/connections:access_control[].require_different_username": "e2e.TestSessionApproval",
	"http/connections:access_control[].subject.group":              "e2e.TestSessionApprovalSubjectAndAudit",
}

// ownedElsewhere lists, by kind:path prefix, fields other branches are making take effect right now. The lead
// shrinks this list while merging; a field still listed when its branch has landed is a bug.
var ownedElsewhere = map[string]string{}
