package configapi

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/sessions"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// sessionFields are the fields of /api/audit/sessions items; ?fields= selects a subset.
var sessionFields = []string{"audit_enabled", "bytes_in", "bytes_out", "client_address", "connected", "credential", "disconnected",
	"last_activity", "requests", "status", "target", "termination_reason", "user"}

// auditSessions is GET /api/audit/sessions?limit=&offset=&fields=: the proxy's API sessions, newest first.
func (s *Service) auditSessions(w http.ResponseWriter, r *http.Request, c *caller) error {
	if r.Method != http.MethodGet {
		return unsupportedMethod(r.Method)
	}
	q := r.URL.Query()
	opts := store.ListOptions{Limit: 50}
	for _, p := range []struct {
		name string
		dst  *int
		lo   int
	}{{"limit", &opts.Limit, 1}, {"offset", &opts.Offset, 0}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < p.lo || n > 1_000_000 {
				return invalidQuery(p.name, p.name+" must be a number of at least "+strconv.Itoa(p.lo))
			}
			*p.dst = n
		}
	}
	if opts.Limit > store.MaxLimit {
		return invalidQuery("limit", "limit must be at most "+strconv.Itoa(store.MaxLimit))
	}
	if isTrailSearch(q) {
		return s.searchSessions(w, r, c, opts)
	}
	fields := sessionFields
	if v := q.Get("fields"); v != "" {
		fields = nil
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSpace(f)
			if !slices.Contains(sessionFields, f) {
				return invalidQuery("fields", "unknown field "+strconv.Quote(f)+"; known: "+strings.Join(sessionFields, ","))
			}
			fields = append(fields, f)
		}
	}
	list, total, err := s.Store.ListSessions(r.Context(), store.SessionFilter{}, opts)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(list))
	for _, a := range list {
		full := map[string]any{
			"audit_enabled": a.AuditEnabled, "bytes_in": a.BytesIn, "bytes_out": a.BytesOut, "client_address": a.ClientAddress,
			"connected": a.Connected, "credential": map[string]string{"id": a.CredentialID, "name": a.CredentialName},
			"disconnected": nil, "last_activity": a.LastActivity, "requests": a.Requests, "status": a.Status,
			"target": map[string]string{"id": a.TargetID, "name": a.TargetName}, "termination_reason": a.TerminationReason,
			"user": map[string]string{"id": a.UserID, "name": a.UserName},
		}
		if !a.Disconnected.IsZero() {
			full["disconnected"] = a.Disconnected
		}
		b := map[string]any{}
		for _, f := range fields {
			b[f] = full[f]
		}
		out = append(out, map[string]any{"key": a.ID, "body": b, "meta": map[string]string{"href": "/api/audit/sessions/" + a.ID}})
	}
	m := pathMeta("/api/audit/sessions")
	m.MatchCount = &total
	writeJSON(w, http.StatusOK, map[string]any{"items": out, "meta": m})
	return nil
}

// terminateSession is DELETE /api/active-sessions?id=...: it ends an open API session of the proxy, which then
// refuses the credential for the cool-down period, exactly as the connection manager's terminate does.
func (s *Service) terminateSession(w http.ResponseWriter, r *http.Request, c *caller) error {
	id := r.URL.Query().Get("id")
	if id == "" {
		return invalidQuery("id", "id is required")
	}
	if s.Terminate == nil {
		return notFound("no open session with this id")
	}
	if err := s.Terminate(r.Context(), id, "terminated by "+c.Principal.Name+" through the configuration API"); err != nil {
		if errors.Is(err, sessions.ErrNotActive) || errors.Is(err, store.ErrNotExist) {
			return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no open session with this id", Err: err}
		}
		return err
	}
	s.audit(r.Context(), r, c.Principal.Name, c.Principal.ID, "terminate", "success", map[string]any{"session": id})
	writeJSON(w, http.StatusOK, map[string]any{"meta": map[string]string{"href": "/api/active-sessions", "parent": rootPath, "transaction": transactionPath}})
	return nil
}
