// Package serviceapi serves the service API dialect (/auth, /local-user-store, /role-store, /host-store, /api-proxy,
// /audit under .../api/v1): OAuth2 bearer tokens, JSON, {"count","items"} lists and {"error_code",...} errors.
package serviceapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/ca"
	"github.com/gatehouse-dev/gatehouse/internal/jit"
	"github.com/gatehouse-dev/gatehouse/internal/recording"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// CA is what the API needs of the proxy CA: its chain for clients to trust and its description.
type CA interface {
	ChainPEM() string
	Info() ca.Info
}

var _ CA = (*ca.CA)(nil)

// API holds the service API's collaborators. Store, Tokens and CA are required.
type API struct {
	Store  *store.Store
	Tokens *auth.TokenIssuer
	CA     CA
	// Limiter throttles failed logins (per source, per name and source, slowing per name); nil means an
	// auth.MemoryLoginLimiter with its defaults.
	Limiter auth.LoginLimiter
	// Log receives errors and audit-worthy failures; nil discards.
	Log *slog.Logger
	// RefreshTTL is the life of refresh tokens; zero means 24 hours.
	RefreshTTL time.Duration
	// ProxyAddress is the proxy listener's address as configured, used when no public address is set.
	ProxyAddress string
	// Status, if set, adds run-time facts (sessions, recording health) to GET /api-proxy/api/v1/status.
	Status func(ctx context.Context) map[string]any
	// OnChange, if set, runs after every successful write through the API, before the answer is sent, so the
	// proxy's policy reflects the change on its very next request.
	OnChange func(ctx context.Context)
	// Sessions controls the proxy's open API sessions; nil means the connection manager lists only stored ones.
	Sessions SessionControl
	// Trails reads session recordings; nil means no trails are served.
	Trails *recording.Store
	// Directory authenticates directory users and refreshes sources; nil means local users only and no
	// refreshes.
	Directory Directory
	// OIDCRedirect says where an OIDC login may send its Gatehouse code; the zero value admits only the CLI's
	// loopback callback (http://127.0.0.1:PORT/callback and its [::1] and localhost forms).
	OIDCRedirect auth.RedirectPolicy
	// PasswordLoginAllowed, if set, says whether username may log in with a password at all; the configuration
	// API's X.509 setting (aaa/settings) refuses password logins to all but the fallback admin. Nil allows them.
	PasswordLoginAllowed func(ctx context.Context, username string) (bool, error)
	// Extenders closes live extender sessions when an extender is deleted, disabled or re-keyed; nil means none
	// are served by this process.
	Extenders ExtenderControl
	// ExtenderCA issues client certificates for extenders that authenticate with one; nil refuses
	// "authentication": "certificate".
	ExtenderCA ExtenderIssuer
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Peers, if set, serves the trail of a session that is open on another node of the cluster (only that node
	// holds it until it closes) by passing the request on to that node; nil answers from this node alone.
	Peers Peers
	// TrailIndex answers trail searches; nil means Store.
	TrailIndex TrailSearcher
	// Approvals serves session approvals (access_control); nil answers their routes with 404.
	Approvals Approvals
	// AuditTrailDownloads says whether reading a trail of a session admitted by the connection policy with this
	// key is audited (log_audit_trail_downloads); nil audits every read.
	AuditTrailDownloads func(policyKey string) bool
	// Workflows runs just-in-time role requests (/workflow-engine); nil answers its workflow and request routes
	// 404 NOT_SUPPORTED.
	Workflows *jit.Engine
	// WorkflowMail, if set, takes the SMTP part of the workflow settings for notification e-mail; nil refuses any
	// SMTP setting with NOT_SUPPORTED, since nothing would send the mail.
	WorkflowMail WorkflowMail
}

// Peers passes a request on to another node of the cluster.
type Peers interface {
	// Self names this node.
	Self() string
	// Forward serves r from node, with the caller's own credentials.
	Forward(w http.ResponseWriter, r *http.Request, node string) error
}

// SessionControl is what the connection manager needs of the proxy's session registry.
type SessionControl interface {
	Terminate(ctx context.Context, id, reason string) error
	TerminateUser(ctx context.Context, userID, reason string) int
	Live(id string) (store.APISession, bool)
}

func (a *API) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *API) log() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

// Routes registers every route of the service API on mux. This is the whole surface, in one place.
func (a *API) Routes(mux *http.ServeMux) {
	if a.Limiter == nil {
		a.Limiter = &auth.MemoryLoginLimiter{}
	}
	const (
		users   = "/local-user-store/api/v1"
		roles   = "/role-store/api/v1"
		proxy   = "/api-proxy/api/v1"
		creds   = "/client-credentials"
		anyPerm = ""
	)
	handle := func(pattern string, perm string, h handlerFunc) { mux.Handle(pattern, a.guard(perm, h)) }

	mux.Handle("POST /auth/api/v1/oauth/token", a.public(a.token))
	// The PrivX SDK's authorization code login without a browser (authcode.go).
	mux.Handle("GET /auth/api/v1/oauth/authorize", a.public(a.authorize))
	mux.Handle("POST /auth/api/v1/login", a.public(a.login))
	mux.Handle("GET /openapi.json", a.public(a.openapi))
	handle("GET /auth/api/v1/users/current", anyPerm, a.currentUser)
	// OIDC login is for users who have no token yet, so its routes are public; see oidc.go.
	mux.Handle("GET /auth/api/v1/oidc/sources", a.public(a.oidcSources))
	mux.Handle("GET /auth/api/v1/oidc/{source_id}/login", a.public(a.oidcStart))
	mux.Handle("GET /auth/api/v1/oidc/callback", a.public(a.oidcCallback))

	handle("GET "+users+"/users", auth.UsersView, a.listUsers)
	handle("POST "+users+"/users", auth.UsersManage, a.createUser)
	handle("GET "+users+"/users/{id}", auth.UsersView, a.getUser)
	handle("PUT "+users+"/users/{id}", auth.UsersManage, a.updateUser)
	handle("DELETE "+users+"/users/{id}", auth.UsersManage, a.deleteUser)
	handle("PUT "+users+"/users/{id}/password", auth.UsersManage, a.setPassword)
	// Second factor (mfa.go): the enrolment of a user who has none yet is public, like the token endpoint.
	mux.Handle("POST /auth/api/v1/mfa/totp/enrol", a.public(a.selfEnrolTOTP))
	handle("GET "+users+"/users/{id}/mfa", auth.UsersView, a.getUserMFA)
	handle("POST "+users+"/users/{id}/mfa/totp", auth.UsersManage, a.adminEnrolTOTP)
	handle("DELETE "+users+"/users/{id}/mfa", auth.UsersManage, a.resetUserMFA)
	handle("GET "+users+"/api-clients", auth.APIClientsManage, a.listAPIClients)
	handle("POST "+users+"/api-clients", auth.APIClientsManage, a.createAPIClient)
	handle("GET "+users+"/api-clients/{id}", auth.APIClientsManage, a.getAPIClient)
	handle("PUT "+users+"/api-clients/{id}", auth.APIClientsManage, a.updateAPIClient)
	handle("DELETE "+users+"/api-clients/{id}", auth.APIClientsManage, a.deleteAPIClient)

	handle("GET "+roles+"/roles", auth.RolesView, a.listRoles)
	handle("POST "+roles+"/roles", auth.RolesManage, a.createRole)
	handle("GET "+roles+"/roles/{id}", auth.RolesView, a.getRole)
	handle("PUT "+roles+"/roles/{id}", auth.RolesManage, a.updateRole)
	handle("DELETE "+roles+"/roles/{id}", auth.RolesManage, a.deleteRole)
	handle("GET "+roles+"/roles/{id}/members", auth.RolesView, a.roleMembers)
	handle("GET "+roles+"/users/{id}/roles", auth.RolesView, a.getUserRoles)
	handle("PUT "+roles+"/users/{id}/roles", auth.RolesManage, a.setUserRoles)
	handle("GET "+roles+"/sources", auth.SourcesView, a.listSources)
	handle("POST "+roles+"/sources", auth.SourcesManage, a.createSource)
	handle("POST "+roles+"/sources/refresh", auth.SourcesManage, a.refreshSources)
	handle("GET "+roles+"/sources/{id}", auth.SourcesView, a.getSource)
	handle("PUT "+roles+"/sources/{id}", auth.SourcesManage, a.updateSource)
	handle("DELETE "+roles+"/sources/{id}", auth.SourcesManage, a.deleteSource)

	const hosts = "/host-store/api/v1/hosts"
	handle("GET "+hosts, auth.HostsView, a.listHosts)
	handle("POST "+hosts, auth.HostsManage, a.createHost)
	handle("POST "+hosts+"/search", auth.HostsView, a.searchHosts)
	handle("GET "+hosts+"/tags", auth.HostsView, a.hostTags)
	handle("GET "+hosts+"/{id}", auth.HostsView, a.getHost)
	handle("PUT "+hosts+"/{id}", auth.HostsManage, a.updateHost)
	handle("DELETE "+hosts+"/{id}", auth.HostsManage, a.deleteHost)

	handle("GET "+proxy+"/api-targets", auth.APITargetsView, a.listTargets)
	handle("POST "+proxy+"/api-targets", auth.APITargetsManage, a.createTarget)
	handle("POST "+proxy+"/api-targets/search", auth.APITargetsView, a.searchTargets)
	handle("GET "+proxy+"/api-targets/tags", auth.APITargetsView, a.targetTags)
	handle("GET "+proxy+"/api-targets/{id}", auth.APITargetsView, a.getTarget)
	handle("PUT "+proxy+"/api-targets/{id}", auth.APITargetsManage, a.updateTarget)
	handle("DELETE "+proxy+"/api-targets/{id}", auth.APITargetsManage, a.deleteTarget)

	// Credential routes check ownership inside the handler: own credentials need api-proxy-credentials-own, anyone
	// else's api-proxy-credentials-manage.
	// Any signed-in user may list the targets of their own roles; holding the role is what grants the target.
	handle("GET "+proxy+"/users/current/api-targets", anyPerm, a.myTargets)
	handle("GET "+proxy+"/users/{user}"+creds, auth.APIProxyCredentialsOwn, a.listCredentials)
	handle("POST "+proxy+"/users/{user}"+creds, auth.APIProxyCredentialsOwn, a.createCredential)
	handle("GET "+proxy+"/users/{user}"+creds+"/{id}", auth.APIProxyCredentialsOwn, a.getCredential)
	handle("PUT "+proxy+"/users/{user}"+creds+"/{id}", auth.APIProxyCredentialsOwn, a.updateCredential)
	handle("DELETE "+proxy+"/users/{user}"+creds+"/{id}", auth.APIProxyCredentialsOwn, a.deleteCredential)
	handle("GET "+proxy+"/users/{user}"+creds+"/{id}/secret", auth.APIProxyCredentialsOwn, a.credentialSecret)
	handle("POST "+proxy+"/users/{user}"+creds+"/{id}/rotate", auth.APIProxyCredentialsOwn, a.rotateCredential)

	// Extenders are part of reaching targets, so they take the api-targets permissions. The agents' own connect
	// route (extenders/connect) authenticates by enrolment token and is served by the extender hub.
	handle("GET "+proxy+"/extenders", auth.APITargetsView, a.listExtenders)
	handle("POST "+proxy+"/extenders", auth.APITargetsManage, a.createExtender)
	handle("GET "+proxy+"/extenders/{id}", auth.APITargetsView, a.getExtender)
	handle("PUT "+proxy+"/extenders/{id}", auth.APITargetsManage, a.updateExtender)
	handle("DELETE "+proxy+"/extenders/{id}", auth.APITargetsManage, a.deleteExtender)
	handle("POST "+proxy+"/extenders/{id}/token", auth.APITargetsManage, a.rotateExtenderToken)
	handle("POST "+proxy+"/extenders/{id}/certificate", auth.APITargetsManage, a.reissueExtenderCertificate)

	handle("GET "+proxy+"/conf", anyPerm, a.conf)
	handle("GET "+proxy+"/status", auth.SettingsView, a.status)
	handle("GET "+proxy+"/settings", auth.SettingsView, a.getSettings)
	handle("PUT "+proxy+"/settings", auth.SettingsManage, a.putSettings)

	const conns = "/connection-manager/api/v1"
	// Auditors of a connection (access_control audit) may list and read it and its trail, live or not, and nothing
	// else.
	mux.Handle("GET "+conns+"/connections", a.guardConnections(auth.ConnectionsView, a.listConnections))
	mux.Handle("POST "+conns+"/connections/search", a.guardConnections(auth.ConnectionsView, a.searchConnections))
	mux.Handle("GET "+conns+"/connections/{id}", a.guardConnection(auth.ConnectionsView, a.getConnection))
	mux.Handle("GET "+conns+"/connections/{id}/trail", a.guardConnection(auth.ConnectionsTrails, a.connectionTrail))
	mux.Handle("GET "+conns+"/connections/{id}/trail/stream", a.guardConnection(auth.ConnectionsTrails, a.connectionTrailStream))
	handle("GET "+conns+"/connections/{id}/trail/verify", auth.ConnectionsTrails, a.verifyTrail)
	handle("PUT "+conns+"/connections/{id}/legal-hold", auth.ConnectionsTrails, a.setLegalHold)
	handle("POST "+conns+"/terminate/connection/{id}", auth.ConnectionsTerminate, a.terminateConnection)
	handle("POST "+conns+"/terminate/user/{user_id}", auth.ConnectionsTerminate, a.terminateUser)

	// Session approvals (four-eyes, access_control): anyone may ask, the approval rules decide who sees and decides.
	handle("GET "+proxy+"/approvals", anyPerm, a.listApprovals)
	handle("GET "+proxy+"/approvals/{id}", anyPerm, a.getApproval)
	handle("POST "+proxy+"/approvals/{id}/decision", anyPerm, a.decideApproval)
	handle("GET /settings/api/v1/settings/notifications", auth.SettingsView, a.getNotificationSettings)
	handle("PUT /settings/api/v1/settings/notifications", auth.SettingsManage, a.putNotificationSettings)

	handle("GET /audit/api/v1/events", auth.AuditView, a.listAudit)
	handle("POST /trail-index/api/v1/index/search", auth.ConnectionsTrails, a.searchTrailIndex)

	// What the PrivX SDK calls beyond the routes above (privx.go): per-service status, the monitor service's audit
	// log, the settings service's api-proxy scope, role resolution by name and the caller's own record.
	handle("GET /auth/api/v1/status", anyPerm, a.serviceStatus("auth"))
	handle("GET "+users+"/status", anyPerm, a.serviceStatus("local-user-store"))
	handle("GET "+roles+"/status", anyPerm, a.serviceStatus("role-store"))
	handle("GET /host-store/api/v1/status", anyPerm, a.serviceStatus("host-store"))
	handle("GET "+conns+"/status", anyPerm, a.serviceStatus("connection-manager"))
	handle("GET /monitor-service/api/v1/status", anyPerm, a.serviceStatus("monitor-service"))
	handle("GET /settings/api/v1/status", anyPerm, a.serviceStatus("settings"))
	// GET /api-proxy/api/v1/status above is Gatehouse's richer status, a superset of the SDK's shape.
	handle("GET /monitor-service/api/v1/auditevents", auth.AuditView, a.monitorAuditEvents)
	handle("POST /monitor-service/api/v1/auditevents/search", auth.AuditView, a.monitorAuditEvents)
	handle("GET /settings/api/v1/settings/api-proxy", auth.SettingsView, a.getSettings)
	handle("PUT /settings/api/v1/settings/api-proxy", auth.SettingsManage, a.putSettings)
	handle("POST "+roles+"/roles/resolve", auth.RolesView, a.resolveRoles)
	handle("POST "+roles+"/roles/search", auth.RolesView, a.searchRoles)
	handle("GET "+roles+"/users/current", anyPerm, a.currentUser)
	handle("GET "+roles+"/users/{id}", auth.RolesView, a.roleStoreUser)
	// The SDK's trail log download of one channel (one exchange) through a download handle (traillog.go).
	handle("POST "+conns+"/connections/{id}/channel/{channel}/log", auth.ConnectionsTrails, a.createTrailLogSession)
	handle("GET "+conns+"/connections/{id}/channel/{channel}/log/{session_id}", auth.ConnectionsTrails, a.downloadTrailLog)
	// Local users and connections have no tags, so their tag lists (the SDK's GetUserTags, GetConnectionTags) are
	// empty rather than a "not found" of a user or connection named "tags".
	handle("GET "+users+"/users/tags", auth.UsersView, a.noTags)
	handle("GET "+conns+"/connections/tags", auth.ConnectionsView, a.noTags)

	// Just-in-time roles (workflows.go). Requests and decisions need no permission of their own beyond making one:
	// who may see or decide a request is the workflow's to say (its requester and approver roles).
	const wfe = "/workflow-engine/api/v1"
	handle("GET "+wfe+"/status", anyPerm, a.serviceStatus("workflow-engine"))
	handle("GET "+wfe+"/workflows", auth.WorkflowsView, a.listWorkflows)
	handle("POST "+wfe+"/workflows", auth.WorkflowsManage, a.createWorkflow)
	handle("GET "+wfe+"/workflows/{id}", auth.WorkflowsView, a.getWorkflow)
	handle("PUT "+wfe+"/workflows/{id}", auth.WorkflowsManage, a.updateWorkflow)
	handle("DELETE "+wfe+"/workflows/{id}", auth.WorkflowsManage, a.deleteWorkflow)
	handle("GET "+wfe+"/requests", anyPerm, a.listRequests)
	handle("POST "+wfe+"/requests", auth.WorkflowsRequests, a.createRequest)
	handle("POST "+wfe+"/requests/search", anyPerm, a.searchRequests)
	handle("GET "+wfe+"/requests/{id}", anyPerm, a.getRequest)
	handle("POST "+wfe+"/requests/{id}/decision", anyPerm, a.decideRequest)
	handle("POST "+wfe+"/requests/{id}/role/revoke", anyPerm, a.revokeRequestRole)
	handle("GET "+wfe+"/settings", auth.WorkflowsView, a.getWorkflowSettings)
	handle("PUT "+wfe+"/settings", auth.WorkflowsManage, a.putWorkflowSettings)
}

// handlerFunc is a handler that returns its error for guard to map, so handlers never write error bodies.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// public serves h without authentication.
func (a *API) public(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, r, a.log(), err)
		}
	})
}

// guard authenticates the bearer token, resolves the principal's current permissions and requires perm ("" means
// any authenticated principal).
func (a *API) guard(perm string, h handlerFunc) http.Handler {
	return a.public(func(w http.ResponseWriter, r *http.Request) error {
		p, err := a.authenticate(r)
		if err != nil {
			return err
		}
		if perm != "" && !p.Permissions.Has(perm) {
			return permissionDenied(perm)
		}
		r = r.WithContext(withPrincipal(r.Context(), p))
		if r.Method == http.MethodGet || a.OnChange == nil {
			return h(w, r)
		}
		// Hold a write's answer until the proxy has the new policy, so a client that acts on the answer is never
		// judged by the old one.
		bw := &heldResponse{header: w.Header()}
		if err := h(bw, r); err != nil {
			return err
		}
		a.OnChange(r.Context())
		bw.flushTo(w)
		return nil
	})
}

// heldResponse buffers a small write answer (an id, an object) until flushTo.
type heldResponse struct {
	header http.Header
	status int
	body   []byte
}

func (h *heldResponse) Header() http.Header { return h.header }

func (h *heldResponse) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}

func (h *heldResponse) Write(p []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	h.body = append(h.body, p...)
	return len(p), nil
}

func (h *heldResponse) flushTo(w http.ResponseWriter) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	w.WriteHeader(h.status)
	w.Write(h.body)
}
