package serviceapi_test

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/serviceapi"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// Pseudo-permissions of the route table: the route needs no token, or any valid token.
const (
	public        = "(public)"
	authenticated = "(authenticated)"
)

// actor is one user of the permission matrix with its token and, for credential routes, a credential of its own.
type actor struct {
	id, token, credID string
}

// matrixEnv holds the objects the matrix routes act on.
type matrixEnv struct {
	t      *testing.T
	gh     *testserver.Instance
	adm    string
	role   string // a role nobody in the matrix holds, for GETs
	user   string // a plain user, for GETs
	client string // an API client
	target string // a target every matrix role may use
	other  string // a user who is not the caller, whose credentials are "someone else's"
	otherC string // a credential of other
	seq    atomic.Int64
}

func (e *matrixEnv) unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, e.seq.Add(1)) }

// victim objects are created per request so that a permitted DELETE or PUT does not disturb other rows.
func (e *matrixEnv) victimUser() string {
	return e.gh.Create(usersPath, e.adm, map[string]any{"username": e.unique("victim"), "password": "Victim-pass-1"})
}

func (e *matrixEnv) victimRole() string {
	return e.gh.Create(rolesPath, e.adm, map[string]any{"name": e.unique("victim-role")})
}

func (e *matrixEnv) victimClient() string {
	return e.gh.Create(clientsPath, e.adm, map[string]any{"name": e.unique("victim-client")})
}

func (e *matrixEnv) victimTarget() string {
	return e.gh.Create(targetsPath, e.adm, targetBody(e.unique("victim-target")))
}

func (e *matrixEnv) credFor(userID string) string {
	return e.gh.Create(proxyPath+"/users/"+userID+"/client-credentials", e.adm,
		map[string]any{"name": e.unique("cred"), "target": map[string]string{"id": e.target}})
}

// route is one row of the matrix: a pattern exactly as api.go registers it, the permission it needs, and how to
// build a request to it that succeeds with wantOK when the caller holds the permission.
type route struct {
	pattern string
	perm    string
	variant string // tells apart rows of the same pattern (own vs someone else's credentials)
	path    func(e *matrixEnv, a *actor) string
	body    func(e *matrixEnv) any
	wantOK  int // 0: any answer but 401 and 403 (and no server error)
}

func fixed(p string) func(*matrixEnv, *actor) string {
	return func(*matrixEnv, *actor) string { return p }
}

func credsOwn(suffix string) func(*matrixEnv, *actor) string {
	return func(e *matrixEnv, a *actor) string {
		return proxyPath + "/users/current/client-credentials" + strings.ReplaceAll(suffix, "{id}", a.credID)
	}
}

func credsOther(suffix string) func(*matrixEnv, *actor) string {
	return func(e *matrixEnv, a *actor) string {
		return proxyPath + "/users/" + e.other + "/client-credentials" + strings.ReplaceAll(suffix, "{id}", e.otherC)
	}
}

const (
	usersPath   = "/local-user-store/api/v1/users"
	clientsPath = "/local-user-store/api/v1/api-clients"
	rolesPath   = "/role-store/api/v1/roles"
	proxyPath   = "/api-proxy/api/v1"
	targetsPath = proxyPath + "/api-targets"
	auditPath   = "/audit/api/v1/events"
	connsPath   = "/connection-manager/api/v1"
)

// routeTable lists every route of api.go. TestRouteTableComplete fails when a route is added there but not here.
func routeTable() []route {
	const p = proxyPath
	return []route{
		{pattern: "POST /auth/api/v1/oauth/token", perm: public},
		{pattern: "GET /openapi.json", perm: public, path: fixed("/openapi.json"), wantOK: 200},
		{pattern: "GET /auth/api/v1/oidc/sources", perm: public, path: fixed("/auth/api/v1/oidc/sources"), wantOK: 200},
		{pattern: "GET /auth/api/v1/oidc/{source_id}/login", perm: public},
		{pattern: "GET /auth/api/v1/oidc/callback", perm: public},
		{pattern: "GET /auth/api/v1/users/current", perm: authenticated, path: fixed("/auth/api/v1/users/current"), wantOK: 200},

		{pattern: "GET " + usersPath, perm: auth.UsersView, path: fixed(usersPath), wantOK: 200},
		{pattern: "POST " + usersPath, perm: auth.UsersManage, path: fixed(usersPath), wantOK: 201,
			body: func(e *matrixEnv) any {
				return map[string]any{"username": e.unique("new"), "password": "New-user-pass-1"}
			}},
		{pattern: "GET " + usersPath + "/{id}", perm: auth.UsersView, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return usersPath + "/" + e.user }},
		{pattern: "PUT " + usersPath + "/{id}", perm: auth.UsersManage, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return usersPath + "/" + e.victimUser() },
			body: func(*matrixEnv) any { return map[string]any{"full_name": "Changed"} }},
		{pattern: "DELETE " + usersPath + "/{id}", perm: auth.UsersManage, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return usersPath + "/" + e.victimUser() }},
		{pattern: "PUT " + usersPath + "/{id}/password", perm: auth.UsersManage, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return usersPath + "/" + e.victimUser() + "/password" },
			body: func(*matrixEnv) any { return map[string]any{"password": "Changed-pass-1"} }},
		{pattern: "POST /auth/api/v1/mfa/totp/enrol", perm: public},
		{pattern: "GET " + usersPath + "/{id}/mfa", perm: auth.UsersView, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return usersPath + "/" + e.user + "/mfa" }},
		// The matrix's LOCAL source has no second factor, so an enrolment is refused with 409 after the guard.
		{pattern: "POST " + usersPath + "/{id}/mfa/totp", perm: auth.UsersManage, wantOK: 409,
			path: func(e *matrixEnv, _ *actor) string { return usersPath + "/" + e.victimUser() + "/mfa/totp" }},
		{pattern: "DELETE " + usersPath + "/{id}/mfa", perm: auth.UsersManage, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return usersPath + "/" + e.victimUser() + "/mfa" }},
		{pattern: "GET " + clientsPath, perm: auth.APIClientsManage, path: fixed(clientsPath), wantOK: 200},
		{pattern: "POST " + clientsPath, perm: auth.APIClientsManage, path: fixed(clientsPath), wantOK: 201,
			body: func(e *matrixEnv) any { return map[string]any{"name": e.unique("client")} }},
		{pattern: "GET " + clientsPath + "/{id}", perm: auth.APIClientsManage, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return clientsPath + "/" + e.client }},
		{pattern: "PUT " + clientsPath + "/{id}", perm: auth.APIClientsManage, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return clientsPath + "/" + e.victimClient() },
			body: func(e *matrixEnv) any { return map[string]any{"name": e.unique("renamed")} }},
		{pattern: "DELETE " + clientsPath + "/{id}", perm: auth.APIClientsManage, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return clientsPath + "/" + e.victimClient() }},

		{pattern: "GET " + rolesPath, perm: auth.RolesView, path: fixed(rolesPath), wantOK: 200},
		{pattern: "POST " + rolesPath, perm: auth.RolesManage, path: fixed(rolesPath), wantOK: 201,
			body: func(e *matrixEnv) any { return map[string]any{"name": e.unique("role")} }},
		{pattern: "GET " + rolesPath + "/{id}", perm: auth.RolesView, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return rolesPath + "/" + e.role }},
		{pattern: "PUT " + rolesPath + "/{id}", perm: auth.RolesManage, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return rolesPath + "/" + e.victimRole() },
			body: func(*matrixEnv) any { return map[string]any{"comment": "changed"} }},
		{pattern: "DELETE " + rolesPath + "/{id}", perm: auth.RolesManage, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return rolesPath + "/" + e.victimRole() }},
		{pattern: "GET " + rolesPath + "/{id}/members", perm: auth.RolesView, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return rolesPath + "/" + e.role + "/members" }},
		{pattern: "GET /role-store/api/v1/users/{id}/roles", perm: auth.RolesView, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return "/role-store/api/v1/users/" + e.user + "/roles" }},
		{pattern: "PUT /role-store/api/v1/users/{id}/roles", perm: auth.RolesManage, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return "/role-store/api/v1/users/" + e.victimUser() + "/roles" },
			body: func(e *matrixEnv) any { return []map[string]string{{"id": e.role}} }},
		{pattern: "GET " + sourcesPath, perm: auth.SourcesView, path: fixed(sourcesPath), wantOK: 200},
		{pattern: "POST " + sourcesPath, perm: auth.SourcesManage, path: fixed(sourcesPath), wantOK: 201,
			body: func(e *matrixEnv) any { return offlineSourceBody(e.unique("source")) }},
		{pattern: "POST " + sourcesPath + "/refresh", perm: auth.SourcesManage, path: fixed(sourcesPath + "/refresh"), wantOK: 200,
			body: func(*matrixEnv) any { return []string{"local"} }},
		{pattern: "GET " + sourcesPath + "/{id}", perm: auth.SourcesView, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return sourcesPath + "/" + e.victimSource() }},
		{pattern: "PUT " + sourcesPath + "/{id}", perm: auth.SourcesManage, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return sourcesPath + "/" + e.victimSource() },
			body: func(e *matrixEnv) any { return offlineSourceBody(e.unique("source")) }},
		{pattern: "DELETE " + sourcesPath + "/{id}", perm: auth.SourcesManage, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return sourcesPath + "/" + e.victimSource() }},

		{pattern: "GET " + hostsPath, perm: auth.HostsView, path: fixed(hostsPath), wantOK: 200},
		{pattern: "POST " + hostsPath, perm: auth.HostsManage, path: fixed(hostsPath), wantOK: 201,
			body: func(e *matrixEnv) any { return map[string]any{"common_name": e.unique("host")} }},
		{pattern: "POST " + hostsPath + "/search", perm: auth.HostsView, path: fixed(hostsPath + "/search"), wantOK: 200,
			body: func(*matrixEnv) any { return map[string]any{"keywords": "matrix"} }},
		{pattern: "GET " + hostsPath + "/{id}", perm: auth.HostsView, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return hostsPath + "/" + e.victimHost() }},
		{pattern: "PUT " + hostsPath + "/{id}", perm: auth.HostsManage, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return hostsPath + "/" + e.victimHost() },
			body: func(*matrixEnv) any { return map[string]any{"comment": "changed"} }},
		{pattern: "DELETE " + hostsPath + "/{id}", perm: auth.HostsManage, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return hostsPath + "/" + e.victimHost() }},

		{pattern: "GET " + targetsPath, perm: auth.APITargetsView, path: fixed(targetsPath), wantOK: 200},
		{pattern: "POST " + targetsPath, perm: auth.APITargetsManage, path: fixed(targetsPath), wantOK: 201,
			body: func(e *matrixEnv) any { return targetBody(e.unique("target")) }},
		{pattern: "POST " + targetsPath + "/search", perm: auth.APITargetsView, path: fixed(targetsPath + "/search"), wantOK: 200,
			body: func(*matrixEnv) any { return map[string]any{"keywords": "matrix"} }},
		{pattern: "GET " + targetsPath + "/tags", perm: auth.APITargetsView, path: fixed(targetsPath + "/tags"), wantOK: 200},
		{pattern: "GET " + targetsPath + "/{id}", perm: auth.APITargetsView, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return targetsPath + "/" + e.target }},
		{pattern: "PUT " + targetsPath + "/{id}", perm: auth.APITargetsManage, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return targetsPath + "/" + e.victimTarget() },
			body: func(*matrixEnv) any { return map[string]any{"comment": "changed"} }},
		{pattern: "DELETE " + targetsPath + "/{id}", perm: auth.APITargetsManage, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return targetsPath + "/" + e.victimTarget() }},

		{pattern: "GET " + p + "/users/current/api-targets", perm: authenticated, path: fixed(p + "/users/current/api-targets"), wantOK: 200},
		{pattern: "GET " + p + "/users/{user}/client-credentials", variant: "own", perm: auth.APIProxyCredentialsOwn,
			path: credsOwn(""), wantOK: 200},
		{pattern: "GET " + p + "/users/{user}/client-credentials", variant: "other", perm: auth.APIProxyCredentialsManage,
			path: credsOther(""), wantOK: 200},
		{pattern: "POST " + p + "/users/{user}/client-credentials", variant: "own", perm: auth.APIProxyCredentialsOwn,
			path: credsOwn(""), body: credBody, wantOK: 201},
		{pattern: "POST " + p + "/users/{user}/client-credentials", variant: "other", perm: auth.APIProxyCredentialsManage,
			path: credsOther(""), body: credBody, wantOK: 201},
		{pattern: "GET " + p + "/users/{user}/client-credentials/{id}", variant: "own", perm: auth.APIProxyCredentialsOwn,
			path: credsOwn("/{id}"), wantOK: 200},
		{pattern: "GET " + p + "/users/{user}/client-credentials/{id}", variant: "other", perm: auth.APIProxyCredentialsManage,
			path: credsOther("/{id}"), wantOK: 200},
		{pattern: "PUT " + p + "/users/{user}/client-credentials/{id}", variant: "own", perm: auth.APIProxyCredentialsOwn,
			path: credsOwn("/{id}"), body: commentBody, wantOK: 200},
		{pattern: "PUT " + p + "/users/{user}/client-credentials/{id}", variant: "other", perm: auth.APIProxyCredentialsManage,
			path: credsOther("/{id}"), body: commentBody, wantOK: 200},
		{pattern: "DELETE " + p + "/users/{user}/client-credentials/{id}", variant: "own", perm: auth.APIProxyCredentialsOwn, wantOK: 200,
			path: func(e *matrixEnv, a *actor) string {
				return proxyPath + "/users/current/client-credentials/" + e.credFor(a.id)
			}},
		{pattern: "DELETE " + p + "/users/{user}/client-credentials/{id}", variant: "other", perm: auth.APIProxyCredentialsManage, wantOK: 200,
			path: func(e *matrixEnv, a *actor) string {
				return proxyPath + "/users/" + e.other + "/client-credentials/" + e.credFor(e.other)
			}},
		{pattern: "GET " + p + "/users/{user}/client-credentials/{id}/secret", variant: "own", perm: auth.APIProxyCredentialsOwn,
			path: credsOwn("/{id}/secret"), wantOK: 200},
		// Someone else's secret is refused to everyone, whatever they hold: TestProxySecretOnlyForOwner.
		{pattern: "POST " + p + "/users/{user}/client-credentials/{id}/rotate", variant: "own", perm: auth.APIProxyCredentialsOwn,
			path: credsOwn("/{id}/rotate"), wantOK: 200},
		{pattern: "POST " + p + "/users/{user}/client-credentials/{id}/rotate", variant: "other", perm: auth.APIProxyCredentialsManage,
			path: credsOther("/{id}/rotate"), wantOK: 200},

		{pattern: "GET " + extendersPath, perm: auth.APITargetsView, path: fixed(extendersPath), wantOK: 200},
		{pattern: "POST " + extendersPath, perm: auth.APITargetsManage, path: fixed(extendersPath), wantOK: 201,
			body: func(e *matrixEnv) any { return map[string]any{"name": e.unique("ext"), "routing_prefix": "matrix"} }},
		{pattern: "GET " + extendersPath + "/{id}", perm: auth.APITargetsView, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return extendersPath + "/" + e.victimExtender() }},
		{pattern: "PUT " + extendersPath + "/{id}", perm: auth.APITargetsManage, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return extendersPath + "/" + e.victimExtender() },
			body: func(*matrixEnv) any { return map[string]any{"enabled": false} }},
		{pattern: "DELETE " + extendersPath + "/{id}", perm: auth.APITargetsManage, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return extendersPath + "/" + e.victimExtender() }},
		{pattern: "POST " + extendersPath + "/{id}/token", perm: auth.APITargetsManage, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return extendersPath + "/" + e.victimExtender() + "/token" }},
		{pattern: "POST " + extendersPath + "/{id}/certificate", perm: auth.APITargetsManage, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string {
				return extendersPath + "/" + e.victimCertExtender() + "/certificate"
			}},

		// The workflow engine (workflows_test.go); requests on objects that do not exist only show the guard.
		{pattern: "GET " + wfePath + "/status", perm: authenticated, path: fixed(wfePath + "/status"), wantOK: 200},
		{pattern: "GET " + wfePath + "/workflows", perm: auth.WorkflowsView, path: fixed(wfePath + "/workflows"), wantOK: 200},
		{pattern: "POST " + wfePath + "/workflows", perm: auth.WorkflowsManage, path: fixed(wfePath + "/workflows"), wantOK: 201,
			body: func(e *matrixEnv) any { return workflowBody(e.unique("wf"), e.role) }},
		{pattern: "GET " + wfePath + "/workflows/{id}", perm: auth.WorkflowsView, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return wfePath + "/workflows/" + e.victimWorkflow() }},
		{pattern: "PUT " + wfePath + "/workflows/{id}", perm: auth.WorkflowsManage, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return wfePath + "/workflows/" + e.victimWorkflow() },
			body: func(e *matrixEnv) any { return workflowBody(e.unique("wf"), e.role) }},
		{pattern: "DELETE " + wfePath + "/workflows/{id}", perm: auth.WorkflowsManage, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return wfePath + "/workflows/" + e.victimWorkflow() }},
		{pattern: "GET " + wfePath + "/requests", perm: authenticated, path: fixed(wfePath + "/requests"), wantOK: 200},
		{pattern: "POST " + wfePath + "/requests", perm: auth.WorkflowsRequests, path: fixed(wfePath + "/requests"),
			body: func(*matrixEnv) any { return map[string]any{"workflow": "no-such-workflow"} }},
		{pattern: "POST " + wfePath + "/requests/search", perm: authenticated, path: fixed(wfePath + "/requests/search"), wantOK: 200,
			body: func(*matrixEnv) any { return map[string]any{} }},
		{pattern: "GET " + wfePath + "/requests/{id}", perm: authenticated, path: fixed(wfePath + "/requests/no-such-request")},
		{pattern: "POST " + wfePath + "/requests/{id}/decision", perm: authenticated, path: fixed(wfePath + "/requests/no-such-request/decision"),
			body: func(*matrixEnv) any { return map[string]any{"step": 0, "decision": "approved"} }},
		{pattern: "POST " + wfePath + "/requests/{id}/role/revoke", perm: authenticated, path: fixed(wfePath + "/requests/no-such-request/role/revoke")},
		{pattern: "GET " + wfePath + "/settings", perm: auth.WorkflowsView, path: fixed(wfePath + "/settings"), wantOK: 200},
		{pattern: "PUT " + wfePath + "/settings", perm: auth.WorkflowsManage, path: fixed(wfePath + "/settings"), wantOK: 200,
			body: func(*matrixEnv) any { return map[string]any{"request_role_max_approvers": 0} }},

		{pattern: "GET " + p + "/conf", perm: authenticated, path: fixed(p + "/conf"), wantOK: 200},
		{pattern: "GET " + p + "/status", perm: auth.SettingsView, path: fixed(p + "/status"), wantOK: 200},
		{pattern: "GET " + p + "/settings", perm: auth.SettingsView, path: fixed(p + "/settings"), wantOK: 200},
		{pattern: "PUT " + p + "/settings", perm: auth.SettingsManage, path: fixed(p + "/settings"), wantOK: 200,
			body: func(*matrixEnv) any { return map[string]any{"session_cooldown": 120} }},

		// Connection rows use unknown ids: a 404 still proves the guard let the caller through.
		{pattern: "GET " + connsPath + "/connections", perm: auth.ConnectionsView, path: fixed(connsPath + "/connections"), wantOK: 200},
		{pattern: "POST " + connsPath + "/connections/search", perm: auth.ConnectionsView, path: fixed(connsPath + "/connections/search"),
			body: func(*matrixEnv) any { return map[string]any{} }},
		{pattern: "GET " + connsPath + "/connections/{id}", perm: auth.ConnectionsView, path: fixed(connsPath + "/connections/no-such-id")},
		{pattern: "GET " + connsPath + "/connections/{id}/trail", perm: auth.ConnectionsTrails, path: fixed(connsPath + "/connections/no-such-id/trail")},
		{pattern: "GET " + connsPath + "/connections/{id}/trail/stream", perm: auth.ConnectionsTrails, path: fixed(connsPath + "/connections/no-such-id/trail/stream")},
		{pattern: "GET " + connsPath + "/connections/{id}/trail/verify", perm: auth.ConnectionsTrails, path: fixed(connsPath + "/connections/no-such-id/trail/verify")},
		{pattern: "PUT " + connsPath + "/connections/{id}/legal-hold", perm: auth.ConnectionsTrails, path: fixed(connsPath + "/connections/no-such-id/legal-hold"),
			body: func(*matrixEnv) any { return map[string]any{"hold": false} }},
		{pattern: "POST /trail-index/api/v1/index/search", perm: auth.ConnectionsTrails, path: fixed("/trail-index/api/v1/index/search"), wantOK: 200,
			body: func(*matrixEnv) any { return map[string]any{"keywords": "xyz"} }},
		{pattern: "POST " + connsPath + "/terminate/connection/{id}", perm: auth.ConnectionsTerminate, path: fixed(connsPath + "/terminate/connection/no-such-id")},
		{pattern: "POST " + connsPath + "/terminate/user/{user_id}", perm: auth.ConnectionsTerminate,
			path: func(e *matrixEnv, _ *actor) string { return connsPath + "/terminate/user/" + e.user }},

		{pattern: "GET " + auditPath, perm: auth.AuditView, path: fixed(auditPath), wantOK: 200},

		// Session approvals: any user may ask; the approval rules, not a permission, decide what they see.
		{pattern: "GET " + p + "/approvals", perm: authenticated, path: fixed(p + "/approvals"), wantOK: 200},
		{pattern: "GET " + p + "/approvals/{id}", perm: authenticated, path: fixed(p + "/approvals/no-such-id")},
		{pattern: "POST " + p + "/approvals/{id}/decision", perm: authenticated, path: fixed(p + "/approvals/no-such-id/decision"),
			body: func(*matrixEnv) any { return map[string]any{"decision": "approve"} }},
		{pattern: "GET /settings/api/v1/settings/notifications", perm: auth.SettingsView, path: fixed("/settings/api/v1/settings/notifications"), wantOK: 200},
		{pattern: "PUT /settings/api/v1/settings/notifications", perm: auth.SettingsManage, path: fixed("/settings/api/v1/settings/notifications"), wantOK: 200,
			body: func(*matrixEnv) any { return map[string]any{"webhooks": []any{}} }},

		// The PrivX SDK's routes (privx.go, authcode.go).
		{pattern: "GET /auth/api/v1/oauth/authorize", perm: public},
		{pattern: "POST /auth/api/v1/login", perm: public},
		{pattern: "GET /auth/api/v1/status", perm: authenticated, path: fixed("/auth/api/v1/status"), wantOK: 200},
		{pattern: "GET /local-user-store/api/v1/status", perm: authenticated, path: fixed("/local-user-store/api/v1/status"), wantOK: 200},
		{pattern: "GET /role-store/api/v1/status", perm: authenticated, path: fixed("/role-store/api/v1/status"), wantOK: 200},
		{pattern: "GET /host-store/api/v1/status", perm: authenticated, path: fixed("/host-store/api/v1/status"), wantOK: 200},
		{pattern: "GET " + connsPath + "/status", perm: authenticated, path: fixed(connsPath + "/status"), wantOK: 200},
		{pattern: "GET /monitor-service/api/v1/status", perm: authenticated, path: fixed("/monitor-service/api/v1/status"), wantOK: 200},
		{pattern: "GET /settings/api/v1/status", perm: authenticated, path: fixed("/settings/api/v1/status"), wantOK: 200},
		{pattern: "GET /monitor-service/api/v1/auditevents", perm: auth.AuditView, path: fixed("/monitor-service/api/v1/auditevents"), wantOK: 200},
		{pattern: "POST /monitor-service/api/v1/auditevents/search", perm: auth.AuditView, path: fixed("/monitor-service/api/v1/auditevents/search"), wantOK: 200,
			body: func(*matrixEnv) any { return map[string]any{"keywords": "role"} }},
		{pattern: "GET /settings/api/v1/settings/api-proxy", perm: auth.SettingsView, path: fixed("/settings/api/v1/settings/api-proxy"), wantOK: 200},
		{pattern: "PUT /settings/api/v1/settings/api-proxy", perm: auth.SettingsManage, path: fixed("/settings/api/v1/settings/api-proxy"), wantOK: 200,
			body: func(*matrixEnv) any { return map[string]any{"session_cooldown": 120} }},
		{pattern: "POST " + rolesPath + "/resolve", perm: auth.RolesView, path: fixed(rolesPath + "/resolve"), wantOK: 200,
			body: func(*matrixEnv) any { return []string{"no-such-role"} }},
		{pattern: "POST " + rolesPath + "/search", perm: auth.RolesView, path: fixed(rolesPath + "/search"), wantOK: 200,
			body: func(*matrixEnv) any { return map[string]any{"name": []string{"no-such-role"}} }},
		{pattern: "GET /role-store/api/v1/users/current", perm: authenticated, path: fixed("/role-store/api/v1/users/current"), wantOK: 200},
		{pattern: "GET /role-store/api/v1/users/{id}", perm: auth.RolesView, wantOK: 200,
			path: func(e *matrixEnv, _ *actor) string { return "/role-store/api/v1/users/" + e.user }},
		{pattern: "GET " + hostsPath + "/tags", perm: auth.HostsView, path: fixed(hostsPath + "/tags"), wantOK: 200},
		{pattern: "POST " + connsPath + "/connections/{id}/channel/{channel}/log", perm: auth.ConnectionsTrails,
			path: fixed(connsPath + "/connections/no-such-id/channel/1/log")},
		{pattern: "GET " + connsPath + "/connections/{id}/channel/{channel}/log/{session_id}", perm: auth.ConnectionsTrails,
			path: fixed(connsPath + "/connections/no-such-id/channel/1/log/no-such-handle")},
		{pattern: "GET " + usersPath + "/tags", perm: auth.UsersView, path: fixed(usersPath + "/tags"), wantOK: 200},
		{pattern: "GET " + connsPath + "/connections/tags", perm: auth.ConnectionsView, path: fixed(connsPath + "/connections/tags"), wantOK: 200},
	}
}

func credBody(e *matrixEnv) any {
	return map[string]any{"name": e.unique("cred"), "target": map[string]string{"id": e.target}}
}

func commentBody(*matrixEnv) any { return map[string]any{"comment": "changed"} }

// targetBody is a minimal valid target.
func targetBody(name string, roles ...string) map[string]any {
	refs := []map[string]string{}
	for _, r := range roles {
		refs = append(refs, map[string]string{"id": r})
	}
	return map[string]any{
		"name": name, "roles": refs,
		"authorized_endpoints": []map[string]any{{"host": "api.example.com", "protocols": []string{"https"}, "methods": []string{"*"}, "paths": []string{"/**"}}},
		"target_credential":    map[string]any{"type": "token", "bearer_token": "tgt-secret-" + name},
	}
}

// registeredRoutes reads the patterns api.go's Routes registers, by evaluating the string constants and
// concatenations passed to handle and mux.Handle. Parsing keeps the table honest without a route-listing API.
func registeredRoutes(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "api.go", nil, 0)
	if err != nil {
		t.Fatalf("parse api.go: %v", err)
	}
	var routes *ast.FuncDecl
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == "Routes" {
			routes = fd
		}
	}
	if routes == nil {
		t.Fatal("api.go has no Routes function")
	}
	consts := map[string]string{}
	var eval func(ast.Expr) (string, bool)
	eval = func(x ast.Expr) (string, bool) {
		switch x := x.(type) {
		case *ast.BasicLit:
			s, err := strconv.Unquote(x.Value)
			return s, err == nil
		case *ast.Ident:
			s, ok := consts[x.Name]
			return s, ok
		case *ast.BinaryExpr:
			l, ok1 := eval(x.X)
			r, ok2 := eval(x.Y)
			return l + r, ok1 && ok2 && x.Op == token.ADD
		case *ast.ParenExpr:
			return eval(x.X)
		}
		return "", false
	}
	var out []string
	ast.Inspect(routes.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncLit:
			return false // the handle helper's own body passes its parameter on
		case *ast.GenDecl:
			if n.Tok == token.CONST {
				for _, s := range n.Specs {
					vs := s.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if v, ok := eval(vs.Values[i]); ok {
							consts[name.Name] = v
						}
					}
				}
			}
		case *ast.CallExpr:
			isHandle := false
			switch fn := n.Fun.(type) {
			case *ast.Ident:
				isHandle = fn.Name == "handle"
			case *ast.SelectorExpr:
				isHandle = fn.Sel.Name == "Handle" || fn.Sel.Name == "HandleFunc"
			}
			if isHandle && len(n.Args) > 0 {
				p, ok := eval(n.Args[0])
				if !ok {
					t.Errorf("api.go: cannot evaluate route pattern at %v; teach registeredRoutes or use constants", n.Pos())
					return true
				}
				out = append(out, p)
			}
		}
		return true
	})
	if len(out) < 10 {
		t.Fatalf("found only %d routes in api.go; the parser is out of date", len(out))
	}
	return out
}

// TestRouteTableComplete fails when api.go gains a route the matrix does not cover, or the table names a pattern
// that is not registered (checked on a real ServeMux, which reports the pattern it matched).
func TestRouteTableComplete(t *testing.T) {
	table := map[string]bool{}
	for _, r := range routeTable() {
		table[r.pattern] = true
	}
	src := registeredRoutes(t)
	for _, p := range src {
		if !table[p] {
			t.Errorf("route %q is registered in api.go but missing from routeTable", p)
		}
	}
	mux := http.NewServeMux()
	(&serviceapi.API{}).Routes(mux)
	for p := range table {
		if !slices.Contains(src, p) {
			t.Errorf("routeTable has %q, which api.go does not register", p)
		}
		method, path, _ := strings.Cut(p, " ")
		for _, v := range []string{"{id}", "{user}", "{user_id}"} {
			path = strings.ReplaceAll(path, v, "x1")
		}
		_, got := mux.Handler(httptest.NewRequest(method, path, nil))
		if got != p {
			t.Errorf("%s %s is served by pattern %q, want %q", method, path, got, p)
		}
	}
}

// allowed reports whether status is the answer a permitted caller should get.
func allowed(status, want int) bool {
	if want == 0 {
		return status != http.StatusUnauthorized && status != http.StatusForbidden && status < 500
	}
	return status == want
}

// allExcept is every permission whose holder does not thereby have perm (manage implies view, so a user without
// users-view must not hold users-manage either).
func allExcept(perm string) []string {
	var out []string
	for _, p := range auth.AllPermissions {
		if !auth.NewPermissionSet([]string{p}).Has(perm) {
			out = append(out, p)
		}
	}
	return out
}

// TestPermissionMatrix calls every route as a user holding exactly the permission it needs, as one holding every
// other permission, without a token and with a garbage token.
func TestPermissionMatrix(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	e := &matrixEnv{t: t, gh: gh, adm: gh.AdminToken()}
	e.role = e.victimRole()
	e.user = e.victimUser()
	e.client = e.victimClient()

	routes := routeTable()
	perms := map[string]bool{}
	for _, r := range routes {
		if r.perm != public && r.perm != authenticated {
			perms[r.perm] = true
		}
	}
	// Two users per permission; every matrix role is a role of the target so that -own users may use it.
	type pair struct{ with, without *actor }
	users := map[string]pair{}
	var roleIDs []string
	mk := func(name string, ps []string) *actor {
		id, tok, role := newUserWithRole(t, gh, e.adm, name, ps...)
		roleIDs = append(roleIDs, role)
		return &actor{id: id, token: tok}
	}
	for p := range perms {
		users[p] = pair{with: mk("with-"+p, []string{p}), without: mk("without-"+p, allExcept(p))}
	}
	noPerms := mk("no-perms", nil)
	noPerms.credID = "no-such-credential" // for the unauthenticated calls, which never get as far as the id
	e.target = gh.Create(targetsPath, e.adm, targetBody("matrix-target", roleIDs...))
	e.other = e.victimUser()
	e.otherC = e.credFor(e.other)
	for _, pr := range users {
		pr.with.credID = e.credFor(pr.with.id)
		pr.without.credID = e.credFor(pr.without.id)
	}

	for _, r := range routes {
		if r.perm == public {
			if r.path != nil {
				t.Run(r.pattern, func(t *testing.T) {
					method, _, _ := strings.Cut(r.pattern, " ")
					if status, b, _ := doHeader(t, gh, method, r.path(e, nil), "", nil); status != r.wantOK {
						t.Errorf("public route without a token: status %d, want %d: %s", status, r.wantOK, b)
					}
				})
			}
			continue
		}
		name := r.pattern
		if r.variant != "" {
			name += " (" + r.variant + ")"
		}
		t.Run(name, func(t *testing.T) {
			method, _, _ := strings.Cut(r.pattern, " ")
			var body any
			if r.body != nil {
				body = r.body(e)
			}
			call := func(a *actor, token string) (int, []byte, http.Header) {
				return doHeader(t, gh, method, r.path(e, a), token, body)
			}
			if r.perm == authenticated {
				if status, b, _ := call(noPerms, noPerms.token); !allowed(status, r.wantOK) {
					t.Errorf("user without permissions: status %d, want %d: %s", status, r.wantOK, b)
				}
			} else {
				pr := users[r.perm]
				if status, b, _ := call(pr.with, pr.with.token); !allowed(status, r.wantOK) {
					t.Errorf("with exactly %s: status %d, want %d: %s", r.perm, status, r.wantOK, b)
				}
				if status, b, _ := call(pr.without, pr.without.token); status != http.StatusForbidden {
					t.Errorf("with every permission but %s: status %d, want 403: %s", r.perm, status, b)
				} else {
					wantErrorCode(t, b, "FORBIDDEN")
				}
			}
			for _, tok := range []struct{ name, token string }{{"no token", ""}, {"garbage token", "not-a-token"}} {
				status, b, h := call(noPerms, tok.token)
				if status != http.StatusUnauthorized {
					t.Errorf("%s: status %d, want 401: %s", tok.name, status, b)
				}
				if !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s: WWW-Authenticate %q, want a Bearer challenge", tok.name, h.Get("WWW-Authenticate"))
				}
			}
		})
	}
}

// TestForbiddenChangesNothing checks that a refused write leaves the object as it was.
func TestForbiddenChangesNothing(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	_, viewer, _ := newUserWithRole(t, gh, adm, "viewer", auth.UsersView, auth.RolesView, auth.APITargetsView)
	victim := gh.Create(usersPath, adm, map[string]any{"username": "victim", "password": "Victim-pass-1"})
	role := gh.Create(rolesPath, adm, map[string]any{"name": "r1"})
	target := gh.Create(targetsPath, adm, targetBody("t1"))
	for _, c := range []struct{ method, path string }{
		{"DELETE", usersPath + "/" + victim},
		{"PUT", usersPath + "/" + victim},
		{"DELETE", rolesPath + "/" + role},
		{"DELETE", targetsPath + "/" + target},
	} {
		var body any
		if c.method == "PUT" {
			body = map[string]any{"full_name": "changed"}
		}
		if status, b := gh.Do(c.method, c.path, viewer, body); status != http.StatusForbidden {
			t.Errorf("%s %s by a viewer: %d %s", c.method, c.path, status, b)
		}
	}
	var u struct {
		FullName string `json:"full_name"`
	}
	gh.JSON("GET", usersPath+"/"+victim, adm, nil, 200, &u)
	if u.FullName != "" {
		t.Errorf("refused PUT changed full_name to %q", u.FullName)
	}
	gh.JSON("GET", rolesPath+"/"+role, adm, nil, 200, nil)
	gh.JSON("GET", targetsPath+"/"+target, adm, nil, 200, nil)
}

// ---- helpers shared by this package's tests ----

// newUserWithRole creates a role holding perms, a user holding that role, logs the user in and returns the user
// id, token and role id.
func newUserWithRole(t *testing.T, gh *testserver.Instance, adm, name string, perms ...string) (id, tok, role string) {
	t.Helper()
	if perms == nil {
		perms = []string{}
	}
	role = gh.Create(rolesPath, adm, map[string]any{"name": "role-" + name, "permissions": perms})
	id = gh.Create(usersPath, adm, map[string]any{"username": name, "password": "Pass-" + name + "-1"})
	gh.JSON("PUT", "/role-store/api/v1/users/"+id+"/roles", adm, []map[string]string{{"id": role}}, http.StatusOK, nil)
	return id, gh.Token(name, "Pass-"+name+"-1"), role
}

// doHeader is Instance.Do that also returns the response headers.
func doHeader(t *testing.T, gh *testserver.Instance, method, path, token string, body any) (int, []byte, http.Header) {
	t.Helper()
	var rd *strings.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = strings.NewReader(string(enc))
	}
	var req *http.Request
	var err error
	if rd != nil {
		req, err = http.NewRequest(method, gh.URL+path, rd)
		req.Header.Set("Content-Type", "application/json")
	} else {
		req, err = http.NewRequest(method, gh.URL+path, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := gh.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return resp.StatusCode, b, resp.Header
}

// apiError is the service API's error body.
type apiError struct {
	ErrorCode    string `json:"error_code"`
	ErrorMessage string `json:"error_message"`
	Property     string `json:"property"`
	Details      any    `json:"details"`
}

func wantErrorCode(t *testing.T, body []byte, code string) {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil || e.ErrorCode != code || e.ErrorMessage == "" {
		t.Errorf("error body %s: want error_code %s and a message", body, code)
	}
}

// badCase is one request that must be refused with status and, for 400s, the property at fault.
type badCase struct {
	name     string
	body     any
	status   int
	property string
}

// checkBad sends every case and checks the status and the property named.
func checkBad(t *testing.T, gh *testserver.Instance, method, path, token string, cases []badCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, b := gh.Do(method, path, token, c.body)
			if status != c.status {
				t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, c.status, b)
			}
			var e apiError
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("error body %s: %v", b, err)
			}
			if e.Property != c.property || e.ErrorCode == "" || e.ErrorMessage == "" {
				t.Errorf("error %+v: want property %q with a code and message", e, c.property)
			}
		})
	}
}

// forEachDB runs f against a fresh server on SQLite and on PostgreSQL.
func forEachDB(t *testing.T, f func(t *testing.T, gh *testserver.Instance)) {
	for _, pg := range []bool{false, true} {
		name := map[bool]string{false: "sqlite", true: "postgres"}[pg]
		t.Run(name, func(t *testing.T) { f(t, testserver.Start(t, testserver.Options{Postgres: pg})) })
	}
}
