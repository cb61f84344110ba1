package configapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/trailindex"
)

// searchParams are the query parameters of /api/audit/sessions that search inside the recorded exchanges; with
// any of them the answer lists matching exchanges instead of sessions.
var searchParams = []string{"content", "request_content", "response_content", "method", "path", "host", "user", "target",
	"client_address", "status", "decision", "start", "end", "session"}

func isTrailSearch(q url.Values) bool {
	for _, p := range searchParams {
		if q.Has(p) {
			return true
		}
	}
	return false
}

// searchSessions is GET /api/audit/sessions?content=...&method=...&path=...&start=...: the recorded exchanges of
// every session that match, newest first, each with a link to its session and to the exchange in the service API.
// Its answer keeps the configuration API's list shape; meta.match_count counts every match.
func (s *Service) searchSessions(w http.ResponseWriter, r *http.Request, c *caller, opts store.ListOptions) error {
	// Results show body text, so searching needs what reading a trail needs, beyond the listing's connections-view.
	if !c.Principal.Permissions.Has(auth.ConnectionsTrails) {
		return errUnauthorized
	}
	q := r.URL.Query()
	tq := store.TrailQuery{Keywords: q.Get("content"), RequestText: q.Get("request_content"), ResponseText: q.Get("response_content"),
		Method: strings.ToUpper(q.Get("method")), PathPrefix: q.Get("path"), Host: q.Get("host"), UserName: q.Get("user"),
		TargetName: q.Get("target"), ClientAddress: q.Get("client_address"), Decision: q.Get("decision"), SessionID: q.Get("session"),
		Offset: opts.Offset, Limit: opts.Limit}
	if v := q.Get("status"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 || n > 999 {
			return invalidQuery("status", "status must be an HTTP status code")
		}
		tq.Status = n
	}
	for _, p := range []string{"content", "request_content", "response_content"} {
		if v := q.Get(p); v != "" && utf8.RuneCountInString(v) < store.MinSearchText {
			return invalidQuery(p, fmt.Sprintf("%s needs at least %d characters", p, store.MinSearchText))
		}
		if len(q.Get(p)) > store.MaxSearchText {
			return invalidQuery(p, fmt.Sprintf("%s may have at most %d bytes", p, store.MaxSearchText))
		}
	}
	if tq.PathPrefix != "" && !strings.HasPrefix(tq.PathPrefix, "/") {
		return invalidQuery("path", "path must start with /")
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"start", &tq.From}, {"end", &tq.To}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return invalidQuery(p.name, p.name+" must be an RFC 3339 time, such as 2026-11-24T00:00:00Z")
			}
			*p.dst = t
		}
	}
	list, total, _, err := s.Store.SearchTrails(r.Context(), tq)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(list))
	for i := range list {
		e := &list[i]
		exchange := fmt.Sprintf("/connection-manager/api/v1/connections/%s/trail?offset=%d&limit=1", e.SessionID, e.Seq-1)
		out = append(out, map[string]any{
			"key": fmt.Sprintf("%s/%d", e.SessionID, e.Seq),
			"body": map[string]any{
				"session": e.SessionID, "seq": e.Seq, "request_id": e.RequestID, "started": e.Started, "duration_ms": e.DurationMS,
				"user":   map[string]string{"id": e.UserID, "name": e.UserName},
				"target": map[string]string{"id": e.TargetID, "name": e.TargetName}, "client_address": e.ClientAddress,
				"method": e.Method, "scheme": e.Scheme, "host": e.Host, "path": e.Path, "query": e.Query, "status": e.Status,
				"decision": e.Decision, "protocol": e.Proto, "websocket": e.WebSocket, "content": trailindex.Snippet(e, tq),
			},
			"meta": map[string]string{"href": "/api/audit/sessions/" + e.SessionID, "exchange": exchange},
		})
	}
	ev := &model.AuditEvent{Actor: c.Principal.Name, ActorID: c.Principal.ID, Action: "search-trails", ObjectType: "trail-index",
		SourceAddress: clientIP(r), Outcome: "success", Diff: map[string]any{"query": q.Encode(), "matches": total}}
	if err := s.Store.AppendAudit(r.Context(), ev); err != nil {
		s.log().Error("writing audit event failed", "action", ev.Action, "err", err)
	}
	m := pathMeta("/api/audit/sessions")
	m.MatchCount = &total
	writeJSON(w, http.StatusOK, map[string]any{"items": out, "meta": m})
	return nil
}
