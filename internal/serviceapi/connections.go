package serviceapi

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/recording"
	"github.com/gatehouse-dev/gatehouse/internal/sessions"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// ConnectionView is an API session as the connection manager shows it (the console reads the same type).
type ConnectionView struct {
	ID                string         `json:"id"`
	Type              string         `json:"type"`
	User              ConnectionUser `json:"user"`
	Target            model.Ref      `json:"target"`
	Credential        model.Ref      `json:"credential"`
	ClientAddress     string         `json:"client_address"`
	Status            string         `json:"status"`
	TerminationReason string         `json:"termination_reason,omitempty"`
	Connected         time.Time      `json:"connected"`
	Disconnected      *time.Time     `json:"disconnected,omitempty"`
	LastActivity      time.Time      `json:"last_activity"`
	Requests          int64          `json:"requests"`
	BytesIn           int64          `json:"bytes_in"`
	BytesOut          int64          `json:"bytes_out"`
	AuditEnabled      bool           `json:"audit_enabled"`
	Node              string         `json:"node,omitempty"`
	// ConnectionPolicy is the key of the configuration API connection policy that admitted the session.
	ConnectionPolicy string `json:"connection_policy,omitempty"`
	LegalHold        bool   `json:"legal_hold"`
	LegalHoldReason  string `json:"legal_hold_reason,omitempty"`
	// RemoteAddress and TargetAPIData repeat the client address and the target under PrivX's names.
	RemoteAddress string    `json:"remote_address"`
	TargetAPIData model.Ref `json:"target_api_data"`
}

// ConnectionUser is the connection's user: Gatehouse's name and PrivX's display_name.
type ConnectionUser struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
}

// idList is a search constraint given as one id or, as PrivX sends it, a list of ids.
type idList []string

func (l *idList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		if one != "" {
			*l = idList{one}
		}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return badRequest("user_id", "user_id must be a string or a list of strings")
	}
	*l = many
	return nil
}

// privxConnectionSearch are the PrivX connection search constraints of features Gatehouse lacks (hosts,
// networks, access roles, UEBA, proxies); they must be zero.
type privxConnectionSearch struct {
	ID                   json.RawMessage `json:"id" why:"fetch one connection with GET .../connections/{id}"`
	ProxyID              json.RawMessage `json:"proxy_id" why:"connections are not indexed by proxy"`
	Type                 json.RawMessage `json:"type" why:"every Gatehouse connection is of type API"`
	Mode                 json.RawMessage `json:"mode" why:"connections have no mode"`
	UserAgent            json.RawMessage `json:"user_agent" why:"connections are not indexed by user agent"`
	AuthMethod           json.RawMessage `json:"authentication_method" why:"connections are not indexed by authentication method"`
	UserDisplayName      json.RawMessage `json:"user_display_name" why:"use user_id or keywords"`
	UserRoles            json.RawMessage `json:"user_roles" why:"connections are not indexed by role"`
	TargetHost           json.RawMessage `json:"target_host_id" why:"host connections are not supported"`
	TargetHostCommonName json.RawMessage `json:"target_host_common_name" why:"host connections are not supported"`
	TargetHostAddress    json.RawMessage `json:"target_host_address" why:"host connections are not supported"`
	TargetHostAccount    json.RawMessage `json:"target_host_account" why:"host connections are not supported"`
	TargetHostRoles      json.RawMessage `json:"target_host_roles" why:"host connections are not supported"`
	RemoteAddress        json.RawMessage `json:"remote_address" why:"use keywords"`
	Connected            json.RawMessage `json:"connected" why:"use from and to"`
	Disconnected         json.RawMessage `json:"disconnected" why:"use from and to"`
	LastActivity         json.RawMessage `json:"last_activity" why:"use from and to"`
	ForceDisconnect      json.RawMessage `json:"force_disconnect" why:"use status TERMINATED"`
	AccessRoles          json.RawMessage `json:"access_roles" why:"connection access roles are not supported"`
	HasAccessRoles       json.RawMessage `json:"has_access_roles" why:"connection access roles are not supported"`
	SessionID            json.RawMessage `json:"session_id" why:"connections are not indexed by login session"`
	Tags                 json.RawMessage `json:"tags" why:"connections have no tags"`
}

func (a *API) viewConnection(s *store.APISession) ConnectionView {
	if s.Status == store.SessionConnected && a.Sessions != nil {
		// The store's counters are flushed in batches; an open session's live ones are fresher.
		if live, ok := a.Sessions.Live(s.ID); ok {
			s.Requests, s.BytesIn, s.BytesOut, s.LastActivity = live.Requests, live.BytesIn, live.BytesOut, live.LastActivity
		}
	}
	v := ConnectionView{
		ID: s.ID, Type: "API", User: ConnectionUser{ID: s.UserID, Name: s.UserName, DisplayName: s.UserName}, Target: model.Ref{ID: s.TargetID, Name: s.TargetName},
		Credential: model.Ref{ID: s.CredentialID, Name: s.CredentialName}, ClientAddress: s.ClientAddress, Status: s.Status,
		TerminationReason: s.TerminationReason, Connected: s.Connected, LastActivity: s.LastActivity, Requests: s.Requests,
		BytesIn: s.BytesIn, BytesOut: s.BytesOut, AuditEnabled: s.AuditEnabled, Node: s.NodeID, ConnectionPolicy: s.ConnectionPolicy,
		LegalHold: s.LegalHold, LegalHoldReason: s.LegalHoldReason,
		RemoteAddress: s.ClientAddress, TargetAPIData: model.Ref{ID: s.TargetID, Name: s.TargetName},
	}
	if !s.Disconnected.IsZero() {
		d := s.Disconnected
		v.Disconnected = &d
	}
	return v
}

func (a *API) listConnections(w http.ResponseWriter, r *http.Request) error {
	return a.writeConnections(w, r, store.SessionFilter{})
}

// searchConnections is POST /connections/search with {"status":[...],"user_id","target_id","keywords","from","to"}.
func (a *API) searchConnections(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Status   []string   `json:"status"`
		UserID   idList     `json:"user_id"`
		TargetID string     `json:"target_id"`
		Keywords string     `json:"keywords"`
		From     *time.Time `json:"from"`
		To       *time.Time `json:"to"`
		privxConnectionSearch
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := refuseUnsupported(&in.privxConnectionSearch); err != nil {
		return err
	}
	f := store.SessionFilter{TargetID: in.TargetID, Keywords: in.Keywords}
	switch len(in.UserID) {
	case 0:
	case 1:
		f.UserID = in.UserID[0]
	default:
		return notSupported("user_id", "search one user_id at a time")
	}
	for i, st := range in.Status {
		st = strings.ToUpper(st)
		switch st {
		case store.SessionConnected, store.SessionDisconnected, store.SessionTerminated, store.SessionUnauthorized:
		default:
			return badRequest(fieldIndex("status", i), "status must be CONNECTED, DISCONNECTED, TERMINATED or UNAUTHORIZED")
		}
		f.Status = append(f.Status, st)
	}
	if in.From != nil {
		f.From = *in.From
	}
	if in.To != nil {
		f.To = *in.To
	}
	return a.writeConnections(w, r, f)
}

func (a *API) writeConnections(w http.ResponseWriter, r *http.Request, f store.SessionFilter) error {
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	if f.Keywords, err = filterAsKeywords(opts.Filter, f.Keywords); err != nil {
		return err
	}
	var list []*store.APISession
	var total int
	if scope, ok := r.Context().Value(auditScopeKey{}).(*auditScope); ok {
		list, total, err = a.auditedSessions(r.Context(), principal(r.Context()), scope, f, opts)
	} else {
		list, total, err = a.Store.ListSessions(r.Context(), f, opts)
	}
	if err != nil {
		return err
	}
	out := make([]ConnectionView, 0, len(list))
	for _, s := range list {
		out = append(out, a.viewConnection(s))
	}
	writeJSON(w, http.StatusOK, newList(out, total))
	return nil
}

func (a *API) getConnection(w http.ResponseWriter, r *http.Request) error {
	s, err := a.Store.Session(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotExist) {
		return notFound("connection")
	} else if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.viewConnection(s))
	return nil
}

func (a *API) terminateConnection(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if a.Sessions == nil {
		return notFound("active connection")
	}
	p := principal(r.Context())
	err := a.Sessions.Terminate(r.Context(), id, "terminated by "+p.Name)
	if errors.Is(err, sessions.ErrNotActive) {
		if _, serr := a.Store.Session(r.Context(), id); serr == nil {
			return &Error{Status: http.StatusConflict, Code: "NOT_ACTIVE", Message: "the connection is not active"}
		}
		return notFound("connection")
	} else if err != nil {
		return err
	}
	a.audit(r, "terminate", "connection", id, nil, nil)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (a *API) terminateUser(w http.ResponseWriter, r *http.Request) error {
	uid := r.PathValue("user_id")
	if _, err := a.Store.User(r.Context(), uid); errors.Is(err, store.ErrNotExist) {
		return notFound("user")
	} else if err != nil {
		return err
	}
	n := 0
	if a.Sessions != nil {
		n = a.Sessions.TerminateUser(r.Context(), uid, "terminated by "+principal(r.Context()).Name)
	}
	a.audit(r, "terminate-user-connections", "user", uid, nil, map[string]any{"terminated": n})
	writeJSON(w, http.StatusOK, map[string]int{"terminated": n})
	return nil
}

// trailPage is GET .../trail: a page of recorded exchanges.
type trailPage struct {
	Count       int                      `json:"count"`
	Items       []recording.Exchange     `json:"items"`
	Meta        recording.SessionMeta    `json:"session"`
	Closed      *recording.CloseInfo     `json:"closed,omitempty"`
	Interrupted *recording.InterruptInfo `json:"interrupted,omitempty"`
}

// recorded checks that the connection exists and was recorded.
func (a *API) recorded(r *http.Request, id string) error {
	_, err := a.recordedSession(r, id)
	return err
}

func (a *API) recordedSession(r *http.Request, id string) (*store.APISession, error) {
	sess, err := a.Store.Session(r.Context(), id)
	if errors.Is(err, store.ErrNotExist) {
		return nil, notFound("connection")
	} else if err != nil {
		return nil, err
	}
	if !sess.AuditEnabled || a.Trails == nil {
		return nil, &Error{Status: http.StatusNotFound, Code: "NO_TRAIL", Message: "this connection was not recorded"}
	}
	if a.elsewhere(r, sess) {
		return nil, errForward{node: sess.NodeID}
	}
	return sess, nil
}

// auditDownload records a read, export or follow of a trail, unless the session's connection policy has
// log_audit_trail_downloads off.
func (a *API) auditDownload(r *http.Request, sess *store.APISession, action string, after map[string]any) {
	if a.AuditTrailDownloads != nil && !a.AuditTrailDownloads(sess.ConnectionPolicy) {
		return
	}
	a.audit(r, action, "connection", sess.ID, nil, after)
}

// forwardedHeader marks a request passed on by another node, which must be answered here and never passed on
// again (no loops between nodes that disagree about a session's owner).
const forwardedHeader = "X-Gatehouse-Forwarded-By"

// elsewhere says whether the trail of sess is open on another node, which alone can serve it until it closes.
func (a *API) elsewhere(r *http.Request, sess *store.APISession) bool {
	return a.Peers != nil && sess.Status == store.SessionConnected && sess.NodeID != "" &&
		sess.NodeID != a.Peers.Self() && r.Header.Get(forwardedHeader) == ""
}

// errForward is recorded's answer for a trail served by another node.
type errForward struct{ node string }

func (e errForward) Error() string { return "trail served by node " + e.node }

// forwarded passes the request to the node named by err when err is an errForward; other errors it returns.
func (a *API) forwarded(w http.ResponseWriter, r *http.Request, err error) error {
	var f errForward
	if !errors.As(err, &f) {
		return err
	}
	r.Header.Set(forwardedHeader, a.Peers.Self())
	return a.Peers.Forward(w, r, f.node)
}

// connectionTrail is GET .../connections/{id}/trail (JSON, paginated) or ?format=har.
func (a *API) connectionTrail(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	sess, err := a.recordedSession(r, id)
	if err != nil {
		return a.forwarded(w, r, err)
	}
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	if format == "har" {
		opts.Offset, opts.Limit = 0, 0
	} else if format != "" && format != "json" {
		return badRequest("format", "format must be json or har")
	}
	if opts.Limit == 0 && format != "har" {
		opts.Limit = store.DefaultLimit
	}
	page, err := a.Trails.Read(r.Context(), id, opts.Offset, opts.Limit)
	if errors.Is(err, recording.ErrNotExist) {
		return &Error{Status: http.StatusNotFound, Code: "NO_TRAIL", Message: "no trail is stored for this connection"}
	} else if err != nil {
		return err
	}
	a.auditDownload(r, sess, "read-trail", map[string]any{"format": format})
	if format == "har" {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="gatehouse-%s.har"`, id))
		return recording.WriteHAR(w, page.Meta, page.Items)
	}
	items := page.Items
	if items == nil {
		items = []recording.Exchange{}
	}
	writeJSON(w, http.StatusOK, trailPage{Count: page.Total, Items: items, Meta: page.Meta, Closed: page.Close, Interrupted: page.Interrupted})
	return nil
}

// connectionTrailStream is GET .../trail/stream: Server-Sent Events, one "exchange" event per recorded exchange
// as it happens, and an "end" event when the session closes. The caller is judged again, on its token and current
// roles, before every exchange and keep-alive: when its token is cut off or it loses the access it opened the
// stream with, a "revoked" event ends the stream and nothing more is sent.
func (a *API) connectionTrailStream(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	sess, err := a.recordedSession(r, id)
	if err != nil {
		return a.forwarded(w, r, err)
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		return &Error{Status: http.StatusInternalServerError, Code: "INTERNAL_ERROR", Message: "streaming unsupported"}
	}
	feed, stop := a.Trails.Subscribe(id)
	defer stop()
	a.auditDownload(r, sess, "follow-trail", nil)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, ": following session %s\n\n", id)
	flusher.Flush()
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	revoked := func() bool {
		if a.mayFollow(r, id) {
			return false
		}
		fmt.Fprint(w, "event: revoked\ndata: {\"reason\":\"the token or the access to this trail ended\"}\n\n")
		flusher.Flush()
		return true
	}
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-heartbeat.C:
			if revoked() {
				return nil
			}
			fmt.Fprint(w, ": keep-alive\n\n")
			flusher.Flush()
		case ex, ok := <-feed:
			if !ok {
				fmt.Fprint(w, "event: end\ndata: {}\n\n")
				flusher.Flush()
				return nil
			}
			if revoked() {
				return nil
			}
			b, err := json.Marshal(ex)
			if err != nil {
				return nil
			}
			fmt.Fprintf(w, "id: %d\nevent: exchange\ndata: %s\n\n", ex.Seq, b)
			flusher.Flush()
		}
	}
}

// mayFollow judges the caller of a trail stream afresh, as guardConnection judged it when the stream opened.
func (a *API) mayFollow(r *http.Request, id string) bool {
	p, err := a.authenticate(r)
	return err == nil && (p.Permissions.Has(auth.ConnectionsTrails) || a.auditorOf(r.Context(), p, id))
}

// trailVerification is GET .../trail/verify: the trail's hash chain checked, and compared with the seal stored when
// the session closed, which is what catches exchanges cut from the end of a closed trail.
type trailVerification struct {
	OK           bool   `json:"ok"`
	Records      int64  `json:"records"`
	Head         string `json:"head"`
	Closed       bool   `json:"closed"`
	Interrupted  bool   `json:"interrupted"`
	TornTail     bool   `json:"torn_tail"`
	Sealed       bool   `json:"sealed"`
	MatchesSeal  bool   `json:"matches_seal"`
	FirstBadLine int    `json:"first_bad_line,omitempty"`
	Problem      string `json:"problem,omitempty"`
}

func (a *API) verifyTrail(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := a.recorded(r, id); err != nil {
		return a.forwarded(w, r, err)
	}
	sess, err := a.Store.Session(r.Context(), id)
	if err != nil {
		return err
	}
	rep, err := a.Trails.Verify(r.Context(), id)
	if errors.Is(err, recording.ErrNotExist) {
		return &Error{Status: http.StatusNotFound, Code: "NO_TRAIL", Message: "no trail is stored for this connection"}
	} else if err != nil {
		return err
	}
	v := trailVerification{OK: rep.OK, Records: rep.Records, Head: rep.Head, Closed: rep.Closed, Interrupted: rep.Interrupted,
		TornTail: rep.TornTail, FirstBadLine: rep.FirstBadLine, Problem: rep.Problem, Sealed: sess.TrailRecords > 0}
	if sc := recording.CheckSeal(rep, recording.Seal{Head: sess.TrailHead, Records: sess.TrailRecords}); sc.Sealed {
		v.MatchesSeal = sc.Matches
		if !sc.Matches {
			v.OK = false
			v.Problem = cmp.Or(v.Problem, sc.Problem)
		}
	}
	a.audit(r, "verify-trail", "connection", id, nil, map[string]any{"ok": v.OK})
	writeJSON(w, http.StatusOK, v)
	return nil
}

// legalHold is PUT .../connections/{id}/legal-hold {"hold":true,"reason":"..."}: a held session, its trail and its
// index entries are kept by retention until the hold is released ({"hold":false}). Each change is audited.
func (a *API) setLegalHold(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Hold   *bool  `json:"hold"`
		Reason string `json:"reason"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Hold == nil {
		return badRequest("hold", "hold is required: true to hold, false to release")
	}
	if *in.Hold && strings.TrimSpace(in.Reason) == "" {
		return badRequest("reason", "a legal hold needs a reason")
	}
	if len(in.Reason) > 1000 {
		return badRequest("reason", "reason must be at most 1000 bytes")
	}
	id := r.PathValue("id")
	before, err := a.Store.Session(r.Context(), id)
	if errors.Is(err, store.ErrNotExist) {
		return notFound("connection")
	} else if err != nil {
		return err
	}
	if err := a.Store.SetLegalHold(r.Context(), id, *in.Hold, strings.TrimSpace(in.Reason)); err != nil {
		return err
	}
	after, err := a.Store.Session(r.Context(), id)
	if err != nil {
		return err
	}
	action := "legal-hold"
	if !*in.Hold {
		action = "legal-hold-release"
	}
	a.audit(r, action, "connection", id, map[string]any{"legal_hold": before.LegalHold, "legal_hold_reason": before.LegalHoldReason},
		map[string]any{"legal_hold": after.LegalHold, "legal_hold_reason": after.LegalHoldReason})
	writeJSON(w, http.StatusOK, a.viewConnection(after))
	return nil
}
