package serviceapi

import (
	"net/http"
	"strings"
)

// PrivX SDK calls of features Gatehouse does not have get a NOT_SUPPORTED answer saying why, rather than a bare
// "no such endpoint", so that a tool built on the SDK tells its user what is missing. These paths are no routes of
// the API: WriteRouteError consults them only for a request that no route serves (404 or 405), so they can never
// shadow a real route. A pattern ending in / also covers the path without it (the collection itself).
var privxUnsupported = []struct{ pattern, why string }{
	{"/auth/api/v1/token/login", "token exchange (oauth.WithExchangeToken) is not supported: Gatehouse accepts no externally issued JWTs; " +
		"log in with an API client (oauth.WithClientID), the authorization code login (oauth.WithCredential) or OIDC"},
	{"/auth/api/v1/idp/clients/", "Gatehouse is not an identity provider for other services"},
	{"/auth/api/v1/sessionstorage/", "login sessions are not listed; revoke a principal's tokens by disabling it or changing its password"},
	{"/auth/api/v1/logout", "access tokens expire on their own; refresh tokens end with a password change or disabling"},
	{"/auth/api/v1/users/{id}/devices", "Gatehouse pairs no mobile devices"},
	{"/role-store/api/v1/roles/evaluate", "role evaluation is not supported"},
	{"/role-store/api/v1/roles/{id}/awstoken", "AWS roles are not supported"},
	{"/role-store/api/v1/roles/{id}/principalkeys/", "SSH principal keys are not supported"},
	{"/role-store/api/v1/awsroles/", "AWS roles are not supported"},
	{"/role-store/api/v1/identity-providers/", "identity providers are not supported; use an OIDC source"},
	{"/role-store/api/v1/authorizedkeys/", "SSH authorized keys are not supported"},
	{"/role-store/api/v1/logconf/", "log collectors are not supported; audit events go to syslog and the audit log"},
	{"/role-store/api/v1/users/{id}/settings", "user settings are not supported"},
	{"/role-store/api/v1/users/{id}/authorizedkeys/", "SSH authorized keys are not supported"},
	{"/role-store/api/v1/users/{id}/resolve", "user role resolution is not supported; read GET /role-store/api/v1/users/{id}/roles"},
	{"/role-store/api/v1/users/current/awsroles", "AWS roles are not supported"},
	{"/role-store/api/v1/users/mfa/", "MFA actions are not supported here; use /local-user-store/api/v1/users/{id}/mfa"},
	{"/role-store/api/v1/users/search/", "search users with GET /local-user-store/api/v1/users?filter="},
	{"/local-user-store/api/v1/api-clients/search", "list API clients with GET /local-user-store/api/v1/api-clients?filter="},
	{"/local-user-store/api/v1/extender-clients", "extenders are managed at /api-proxy/api/v1/extenders"},
	{"/local-user-store/api/v1/trusted-clients/", "trusted clients are not supported"},
	{"/host-store/api/v1/hosts/resolve", "host resolution is not supported"},
	{"/host-store/api/v1/hosts/deploy", "host deployment is not supported"},
	{"/host-store/api/v1/hosts/{id}/deployable", "host deployment is not supported"},
	{"/host-store/api/v1/hosts/{id}/disabled", "hosts cannot be disabled"},
	{"/host-store/api/v1/hosts/{id}/session_host_certificates/", "host certificates are not supported"},
	{"/host-store/api/v1/settings/", "host service options are not supported"},
	{"/host-store/api/v1/whitelists/", "command whitelists are not supported"},
	{"/connection-manager/api/v1/connections/{id}/channel/{channel}/file/", "Gatehouse trails hold HTTP exchanges, not transferred files; download a channel's log instead"},
	{"/connection-manager/api/v1/connections/{id}/access_roles/", "connection access roles are not supported"},
	{"/connection-manager/api/v1/connections/access_roles/", "connection access roles are not supported"},
	{"/connection-manager/api/v1/connections/{id}/tags", "connections have no tags"},
	{"/connection-manager/api/v1/terminate/host/", "Gatehouse has no host connections"},
	{"/connection-manager/api/v1/ueba/", "UEBA is not supported"},
	{"/monitor-service/api/v1/auditevents/codes", "audit events carry an action and an object type, not PrivX event codes"},
	{"/monitor-service/api/v1/components/", "component status is at GET /api-proxy/api/v1/status"},
	{"/monitor-service/api/v1/instance/", "instance status is at GET /api-proxy/api/v1/status; instances are not stopped through the API"},
	{"/monitor-service/api/v1/time", "server time is not served"},
	{"/settings/api/v1/schema/", "settings schemas are not served; the api-proxy scope is described in openapi.json"},
	{"/settings/api/v1/settings/{scope}", "only the api-proxy scope exists"},
	{"/settings/api/v1/settings/{scope}/{section}", "settings sections are not supported; read and write the whole api-proxy scope"},
	{"/settings/api/v1/restart_required/", "no setting needs a restart"},
}

// unsupportedFeature returns why r asks for a PrivX feature Gatehouse lacks, or "": the reason of the first
// pattern that matches its path. For a path that routes serve with other methods (a 405), only a pattern whose
// last segment is literal counts: "/settings/api/v1/settings/{scope}" means other scopes, not another method on
// the one that exists.
func unsupportedFeature(r *http.Request, pathServed bool) string {
	for _, u := range privxUnsupported {
		if pathServed && strings.HasSuffix(strings.TrimSuffix(u.pattern, "/"), "}") {
			continue
		}
		if matchSegments(u.pattern, r.URL.Path) {
			return u.why
		}
	}
	return ""
}

// matchSegments matches a path against a pattern of /-separated segments, where {name} stands for one non-empty
// segment and a pattern ending in / matches its own path and everything below it (a ServeMux cannot hold these
// patterns together: it refuses overlapping ones that neither is more specific than).
func matchSegments(pattern, path string) bool {
	subtree := strings.HasSuffix(pattern, "/")
	ps := strings.Split(strings.TrimSuffix(pattern, "/"), "/")
	xs := strings.Split(path, "/")
	if len(xs) < len(ps) || (!subtree && len(xs) != len(ps)) {
		return false
	}
	for i, p := range ps {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if xs[i] == "" {
				return false
			}
		} else if xs[i] != p {
			return false
		}
	}
	return true
}
