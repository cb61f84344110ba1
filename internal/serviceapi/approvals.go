package serviceapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/notify"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Approvals is what the API needs of session approvals (approval/hold.Service).
type Approvals interface {
	Get(ctx context.Context, id string) (approval.Request, error)
	List(ctx context.Context, roles []string, all bool, state approval.State) ([]approval.Request, error)
	Decide(ctx context.Context, id string, d approval.Decider, in approval.DecisionInput) (approval.Request, error)
	Auditor(policyKey string, roles, requesterRoles []string) bool
	// AuditedPolicies lists the connection policies with an audit rule naming one of roles.
	AuditedPolicies(roles []string) []string
}

func (p *Principal) roleNames() []string {
	out := make([]string, 0, len(p.Roles))
	for _, r := range p.Roles {
		out = append(out, r.Name)
	}
	return out
}

func (a *API) approvals() (Approvals, error) {
	if a.Approvals == nil {
		return nil, &Error{Status: http.StatusNotFound, Code: "NOT_FOUND", Message: "session approvals are not served by this process"}
	}
	return a.Approvals, nil
}

// listApprovals is GET /api-proxy/api/v1/approvals[?state=pending]: the requests the caller may decide, or all of
// them for a holder of connections-view.
func (a *API) listApprovals(w http.ResponseWriter, r *http.Request) error {
	ap, err := a.approvals()
	if err != nil {
		return err
	}
	var state approval.State
	if s := r.URL.Query().Get("state"); s != "" {
		if state, err = approval.ParseState(s); err != nil {
			return badRequest("state", err.Error())
		}
	}
	p := principal(r.Context())
	items, err := ap.List(r.Context(), p.roleNames(), p.Permissions.Has(auth.ConnectionsView), state)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, len(items)))
	return nil
}

// visibleApproval returns the request if the caller may see it: an authorizer of it or a holder of
// connections-view. Anyone else is told it does not exist.
func (a *API) visibleApproval(r *http.Request, ap Approvals) (approval.Request, error) {
	req, err := ap.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return req, err
	}
	p := principal(r.Context())
	if !p.Permissions.Has(auth.ConnectionsView) && !req.MayDecide(p.roleNames()) {
		return req, notFound("approval request")
	}
	return req, nil
}

func (a *API) getApproval(w http.ResponseWriter, r *http.Request) error {
	ap, err := a.approvals()
	if err != nil {
		return err
	}
	req, err := a.visibleApproval(r, ap)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, req)
	return nil
}

// decideApproval is POST /api-proxy/api/v1/approvals/{id}/decision with {"decision":"approve"|"reject","comment"}.
func (a *API) decideApproval(w http.ResponseWriter, r *http.Request) error {
	ap, err := a.approvals()
	if err != nil {
		return err
	}
	if _, err := a.visibleApproval(r, ap); err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return badRequest("", "reading the body: "+err.Error())
	}
	in, err := approval.ParseDecision(body)
	if err != nil {
		return err
	}
	p := principal(r.Context())
	addr, _ := netip.ParseAddr(clientIP(r))
	d := approval.Decider{ID: p.ID, Name: p.Name, Roles: p.roleNames(), Address: addr}
	req, err := ap.Decide(r.Context(), r.PathValue("id"), d, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, req)
	return nil
}

// approvalError maps the approval model's refusals; nil for any other error.
func approvalError(err error) *Error {
	var fe *approval.FieldError
	var ne *notify.FieldError
	switch {
	case errors.As(err, &fe):
		return &Error{Status: http.StatusBadRequest, Code: "BAD_REQUEST", Message: fe.Error(), Property: fe.Field, Err: err}
	case errors.As(err, &ne):
		return &Error{Status: http.StatusBadRequest, Code: "BAD_REQUEST", Message: ne.Error(), Property: ne.Field, Err: err}
	case errors.Is(err, approval.ErrSameUser):
		return &Error{Status: http.StatusForbidden, Code: "FORBIDDEN", Message: err.Error(), Property: "require_different_username", Err: err}
	case errors.Is(err, approval.ErrSameAddress):
		return &Error{Status: http.StatusForbidden, Code: "FORBIDDEN", Message: err.Error(), Property: "require_different_ip", Err: err}
	case errors.Is(err, approval.ErrNotAuthorizer):
		return &Error{Status: http.StatusForbidden, Code: "FORBIDDEN", Message: err.Error(), Err: err}
	case errors.Is(err, approval.ErrDecided):
		return &Error{Status: http.StatusConflict, Code: "CONFLICT", Message: err.Error(), Property: "state", Err: err}
	case errors.Is(err, approval.ErrExpired):
		return &Error{Status: http.StatusConflict, Code: "CONFLICT", Message: err.Error(), Property: "expires", Err: err}
	}
	return nil
}

// notificationSettings is the API view of notify.Settings: the SMTP password and the webhook secrets are
// write-only.
type notificationSettings struct {
	Webhooks []webhookSettings `json:"webhooks"`
	SMTP     smtpSettings      `json:"smtp"`
}

type webhookSettings struct {
	notify.Webhook
	// Secret, on a write, replaces the webhook's signing secret ("" removes it); left out, the secret stored for
	// a webhook with the same URL stays.
	Secret *string `json:"secret,omitempty"`
	// SecretSet, on a read, says whether deliveries to this webhook are signed. It is ignored on a write.
	SecretSet bool `json:"secret_set"`
}

type smtpSettings struct {
	notify.SMTP
	// Password, on a write, replaces the stored password ("" removes it); left out, the stored one stays.
	Password *string `json:"password,omitempty"`
	// PasswordSet, on a read, says whether a password is stored. It is ignored on a write.
	PasswordSet bool `json:"password_set"`
}

func (a *API) getNotificationSettings(w http.ResponseWriter, r *http.Request) error {
	s, err := notify.Stored(a.Store)(r.Context())
	if err != nil {
		return err
	}
	out := notificationSettings{Webhooks: []webhookSettings{}, SMTP: smtpSettings{SMTP: s.SMTP, PasswordSet: s.SMTP.Password != ""}}
	for _, h := range s.Webhooks {
		set := h.Secret != ""
		h.Secret = ""
		out.Webhooks = append(out.Webhooks, webhookSettings{Webhook: h, SecretSet: set})
	}
	out.SMTP.SMTP.Password = ""
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) putNotificationSettings(w http.ResponseWriter, r *http.Request) error {
	var in notificationSettings
	if err := decode(r, &in); err != nil {
		return err
	}
	s := notify.Settings{Webhooks: make([]notify.Webhook, 0, len(in.Webhooks)), SMTP: in.SMTP.SMTP}
	secrets := make([]*string, 0, len(in.Webhooks))
	for _, h := range in.Webhooks {
		s.Webhooks = append(s.Webhooks, h.Webhook)
		secrets = append(secrets, h.Secret)
	}
	if err := notify.Save(r.Context(), a.Store, s, in.SMTP.Password, secrets, principal(r.Context()).Name); err != nil {
		return err
	}
	// Neither s.SMTP.Password nor a webhook's Secret is ever marshalled.
	a.audit(r, "update", "notification-settings", "notifications", nil, s)
	return a.getNotificationSettings(w, r)
}

// guardConnection is guard for the read routes of one connection ({id}): besides perm, being an auditor of the
// connection (an access_control audit or audit_and_authorize rule of its connection policy that covers its user
// names one of the caller's roles) lets the caller in, to that connection only.
func (a *API) guardConnection(perm string, h handlerFunc) http.Handler {
	return a.public(func(w http.ResponseWriter, r *http.Request) error {
		p, err := a.authenticate(r)
		if err != nil {
			return err
		}
		if !p.Permissions.Has(perm) && !a.auditorOf(r.Context(), p, r.PathValue("id")) {
			return permissionDenied(perm)
		}
		return h(w, r.WithContext(withPrincipal(r.Context(), p)))
	})
}

func (a *API) auditorOf(ctx context.Context, p *Principal, sessionID string) bool {
	if a.Approvals == nil || p.Kind != auth.KindUser || sessionID == "" {
		return false
	}
	sess, err := a.Store.Session(ctx, sessionID)
	if err != nil {
		return false
	}
	ok, err := a.audits(ctx, p, sess, nil)
	return err == nil && ok
}

// audits is the one auditor rule, for a session already read: its connection policy has an audit rule naming
// one of p's roles whose subject covers the session's user. cache, if not nil, keeps user roles by user id
// across calls.
func (a *API) audits(ctx context.Context, p *Principal, sess *store.APISession, cache map[string][]string) (bool, error) {
	if sess.ConnectionPolicy == "" {
		return false, nil
	}
	userRoles, seen := cache[sess.UserID]
	if !seen && sess.UserID != "" {
		roles, err := a.Store.UserRoles(ctx, sess.UserID)
		if err != nil {
			return false, err
		}
		for _, r := range roles {
			userRoles = append(userRoles, r.Name)
		}
		if cache != nil {
			cache[sess.UserID] = userRoles
		}
	}
	return a.Approvals.Auditor(sess.ConnectionPolicy, p.roleNames(), userRoles), nil
}

// Audits reports whether p audits the sessions of some connection policy, and so may list those sessions
// without connections-view (the console shows them its connection list).
func (a *API) Audits(p *Principal) bool {
	return a.Approvals != nil && p != nil && p.Kind == auth.KindUser && len(a.Approvals.AuditedPolicies(p.roleNames())) > 0
}

// auditScope is, in a request's context, the connection policies whose sessions a caller without
// connections-view may list because they audit them.
type auditScope struct{ policies []string }

type auditScopeKey struct{}

// guardConnections is guard for the connection list and search: a caller without perm who audits some
// connection policy lists exactly the sessions they may audit (writeConnections filters); anyone else without
// perm is refused.
func (a *API) guardConnections(perm string, h handlerFunc) http.Handler {
	return a.public(func(w http.ResponseWriter, r *http.Request) error {
		p, err := a.authenticate(r)
		if err != nil {
			return err
		}
		ctx := withPrincipal(r.Context(), p)
		if !p.Permissions.Has(perm) {
			if !a.Audits(p) {
				return permissionDenied(perm)
			}
			keys := a.Approvals.AuditedPolicies(p.roleNames())
			ctx = context.WithValue(ctx, auditScopeKey{}, &auditScope{policies: keys})
		}
		return h(w, r.WithContext(ctx))
	})
}

// auditedSessions is the page of opts among the sessions matching f that p audits, and how many there are in
// all. The store narrows by connection policy; the subject of each rule is checked here, on every match, so that
// count and paging are right.
func (a *API) auditedSessions(ctx context.Context, p *Principal, scope *auditScope, f store.SessionFilter, opts store.ListOptions) ([]*store.APISession, int, error) {
	f.Policies = scope.policies
	limit := opts.Limit
	if limit <= 0 {
		limit = store.DefaultLimit
	}
	page := opts
	page.Limit = store.MaxLimit
	cache := map[string][]string{}
	var out []*store.APISession
	matched := 0
	for page.Offset = 0; ; page.Offset += store.MaxLimit {
		list, total, err := a.Store.ListSessions(ctx, f, page)
		if err != nil {
			return nil, 0, err
		}
		for _, s := range list {
			ok, err := a.audits(ctx, p, s, cache)
			if err != nil {
				return nil, 0, err
			}
			if !ok {
				continue
			}
			if matched >= opts.Offset && len(out) < limit {
				out = append(out, s)
			}
			matched++
		}
		if len(list) == 0 || page.Offset+len(list) >= total {
			return out, matched, nil
		}
	}
}
