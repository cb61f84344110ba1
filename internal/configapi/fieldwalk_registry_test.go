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
}

// ownedElsewhere lists, by kind:path prefix, fields other branches are making take effect right now. The lead
// shrinks this list while merging; a field still listed when its branch has landed is a bug.
var ownedElsewhere = map[string]string{
	// HTTP connection-policy transport security, routing and the policy kinds Gatehouse lacks: branch settings-conn.
	"http/connections:server_address":                  "settings-conn",
	"http/connections:source_address":                  "settings-conn",
	"http/connections:web_proxy":                       "settings-conn",
	"http/connections:transport_security":              "settings-conn",
	"http/connections:access_control":                  "settings-conn",
	"http/connections:policies.ldap_server":            "settings-conn",
	"http/connections:policies.backup_policy":          "settings-conn",
	"http/connections:policies.usermapping_policy":     "settings-conn",
	"http/connections:policies.archive_cleanup_policy": "settings-conn",
	"http/connections:policies.analytics_policy":       "settings-conn",
	"http/settings_policies:client_tls_min_version":    "settings-conn",
	"http/settings_policies:server_tls_min_version":    "settings-conn",
	// Trail indexing, retention and download auditing: branch settings-rec.
	"http/connections:indexing":                  "settings-rec",
	"http/connections:log_audit_trail_downloads": "settings-rec",
	"http/connections:channel_database_cleanup":  "settings-rec",
	"http/options:channel_database_cleanup":      "settings-rec",
}
