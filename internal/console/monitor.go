package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/recording"
	"github.com/gatehouse-dev/gatehouse/internal/serviceapi"
)

const connAPI = "/connection-manager/api/v1"

// connection is an API session as the connection manager answers it: the API's own type, so the console never
// reads a field the API does not write.
type connection = serviceapi.ConnectionView

// connFilter is the connection list's filter form, read from the query string.
type connFilter struct {
	User, Target, Status, Keywords, From, To string
	Offset, Limit                            int
}

const pageSize = 50

func readConnFilter(q url.Values) (connFilter, *apiError) {
	f := connFilter{User: q.Get("user"), Target: q.Get("target"), Status: q.Get("status"), Keywords: q.Get("keywords"),
		From: q.Get("from"), To: q.Get("to"), Limit: pageSize}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return f, &apiError{Status: http.StatusBadRequest, Property: "offset", Message: "offset must be a whole number"}
		}
		f.Offset = n
	}
	return f, nil
}

// search is the API's search body for f.
func (f connFilter) search() (map[string]any, *apiError) {
	body := map[string]any{}
	if f.User != "" {
		body["user_id"] = f.User
	}
	if f.Target != "" {
		body["target_id"] = f.Target
	}
	if f.Keywords != "" {
		body["keywords"] = f.Keywords
	}
	if f.Status != "" {
		body["status"] = []string{f.Status}
	}
	for _, p := range []struct{ name, v string }{{"from", f.From}, {"to", f.To}} {
		t, ok := utcInput(p.v)
		if !ok {
			return nil, &apiError{Status: http.StatusBadRequest, Property: p.name, Message: p.name + " must be a date and time"}
		}
		if t != "" {
			body[p.name] = t
		}
	}
	return body, nil
}

func (f connFilter) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"user": f.User, "target": f.Target, "status": f.Status, "keywords": f.Keywords, "from": f.From, "to": f.To} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// pageLink is the list URL for another offset with the same filters.
func (f connFilter) pageLink(base string, offset int) string {
	q := f.query()
	if offset > 0 {
		q.Set("offset", strconv.Itoa(offset))
	}
	if len(q) == 0 {
		return base
	}
	return base + "?" + q.Encode()
}

type connectionsPage struct {
	Filter    connFilter
	Conns     list[connection]
	Users     []ref
	Targets   []ref
	Statuses  []string
	Events    string
	Prev      string
	Next      string
	First     int
	Last      int
	Terminate bool
}

func (c *Console) searchConnections(r *http.Request, s *session, f connFilter) (list[connection], error) {
	body, ae := f.search()
	if ae != nil {
		return list[connection]{}, ae
	}
	var out list[connection]
	path := query(connAPI+"/connections/search", "offset", strconv.Itoa(f.Offset), "limit", strconv.Itoa(f.Limit), "sortkey", "connected", "sortdir", "desc")
	err := c.call(r.Context(), r, s, "POST", path, body, &out)
	return out, err
}

// connections is Monitoring → Connections: filtered and paginated on the server, kept live by the script through
// connectionEvents.
func (c *Console) connections(w http.ResponseWriter, r *http.Request, s *session) error {
	f, ae := readConnFilter(r.URL.Query())
	p := &connectionsPage{Filter: f, Statuses: []string{"CONNECTED", "DISCONNECTED", "TERMINATED", "UNAUTHORIZED"},
		Terminate: s.principal.Permissions.Has(auth.ConnectionsTerminate)}
	v := &view{Title: "Connections", Active: "/monitor/connections", Data: p}
	status := http.StatusOK
	if ae == nil {
		var err error
		p.Conns, err = c.searchConnections(r, s, f)
		if fe, ok := formErr(err); ok && fe.Status == http.StatusBadRequest {
			ae = fe
		} else if err != nil {
			return err
		}
	}
	if ae != nil {
		status, v.Errors = http.StatusBadRequest, fieldErrors(ae)
		if len(v.Errors) == 0 {
			v.Error = ae.Message
		}
	}
	// The filter choices; a user who may not list users or targets filters by keywords instead.
	var us list[struct {
		ID       string `json:"id"`
		Username string `json:"username"`
	}]
	if c.call(r.Context(), r, s, "GET", "/local-user-store/api/v1/users?limit=1000&sortkey=username", nil, &us) == nil {
		for _, u := range us.Items {
			p.Users = append(p.Users, ref{u.ID, u.Username})
		}
	}
	var ts list[ref]
	if c.call(r.Context(), r, s, "GET", proxyAPI+"/api-targets?limit=1000", nil, &ts) == nil {
		p.Targets = ts.Items
	}
	q := f.query()
	p.Events = "/monitor/connections/events"
	if len(q) > 0 || f.Offset > 0 {
		if f.Offset > 0 {
			q.Set("offset", strconv.Itoa(f.Offset))
		}
		p.Events += "?" + q.Encode()
	}
	if f.Offset > 0 {
		p.Prev = f.pageLink("/monitor/connections", max(f.Offset-pageSize, 0))
	}
	if f.Offset+len(p.Conns.Items) < p.Conns.Count {
		p.Next = f.pageLink("/monitor/connections", f.Offset+pageSize)
	}
	p.First, p.Last = f.Offset+1, f.Offset+len(p.Conns.Items)
	c.render(w, r, s, status, "connections", v)
	return nil
}

// connectionEvents is the live feed of the connection list: Server-Sent Events with the current page of the same
// filtered search whenever it changes. The script renders the rows; a page without script reloads by hand.
func (c *Console) connectionEvents(w http.ResponseWriter, r *http.Request, s *session) error {
	f, ae := readConnFilter(r.URL.Query())
	if ae != nil {
		return ae
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		return &httpError{Status: http.StatusInternalServerError, Message: "streaming unsupported"}
	}
	// The first search answers errors as a normal page, before the stream starts.
	first, err := c.searchConnections(r, s, f)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	poll := c.LivePoll
	if poll <= 0 {
		poll = time.Second
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	var last []byte
	send := func(l list[connection]) bool {
		b, err := json.Marshal(l)
		if err != nil {
			return false
		}
		if bytes.Equal(b, last) {
			fmt.Fprint(w, ": unchanged\n\n")
		} else {
			fmt.Fprintf(w, "event: connections\ndata: %s\n\n", b)
			last = b
		}
		flusher.Flush()
		return true
	}
	if !send(first) {
		return nil
	}
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-c.Done:
			fmt.Fprint(w, "event: ended\ndata: {}\n\n")
			flusher.Flush()
			return nil
		case <-tick.C:
		}
		// Each poll is a full API call as this user, so a revoked user or lost permission ends the feed.
		s2, err := c.resolve(r)
		if err != nil || s2 == nil {
			fmt.Fprint(w, "event: ended\ndata: {}\n\n")
			flusher.Flush()
			return nil
		}
		l, err := c.searchConnections(r, s2, f)
		if err != nil {
			fmt.Fprint(w, "event: ended\ndata: {}\n\n")
			flusher.Flush()
			return nil
		}
		if !send(l) {
			return nil
		}
	}
}

// verification is GET .../trail/verify's answer.
type verification struct {
	OK           bool   `json:"ok"`
	Records      int    `json:"records"`
	Closed       bool   `json:"closed"`
	Interrupted  bool   `json:"interrupted"`
	Sealed       bool   `json:"sealed"`
	MatchesSeal  bool   `json:"matches_seal"`
	Problem      string `json:"problem"`
	FirstBadLine int    `json:"first_bad_line"`
}

type trailPage struct {
	Count int                  `json:"count"`
	Items []recording.Exchange `json:"items"`
}

type connectionPage struct {
	Conn      connection
	Trail     *trailPage
	TrailNote string
	Verify    *verification
	Live      bool
	Terminate bool
	Prev      string
	Next      string
}

const trailPageSize = 100

func (c *Console) connection(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	p := &connectionPage{Terminate: s.principal.Permissions.Has(auth.ConnectionsTerminate)}
	if err := c.call(r.Context(), r, s, "GET", connAPI+"/connections/"+url.PathEscape(id), nil, &p.Conn); err != nil {
		return err
	}
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	offset = max(offset, 0)
	var tp trailPage
	err := c.call(r.Context(), r, s, "GET", query(connAPI+"/connections/"+url.PathEscape(id)+"/trail", "offset", strconv.Itoa(offset), "limit", strconv.Itoa(trailPageSize)), nil, &tp)
	if ae, ok := formErr(err); ok {
		p.TrailNote = ae.Message
	} else if err != nil {
		return err
	} else {
		p.Trail = &tp
		p.Live = p.Conn.Status == "CONNECTED" && offset+len(tp.Items) >= tp.Count
		base := "/monitor/connections/" + url.PathEscape(id)
		if offset > 0 {
			p.Prev = base + "?offset=" + strconv.Itoa(max(offset-trailPageSize, 0))
		}
		if offset+len(tp.Items) < tp.Count {
			p.Next = base + "?offset=" + strconv.Itoa(offset+trailPageSize)
		}
		var vr verification
		if err := c.call(r.Context(), r, s, "GET", connAPI+"/connections/"+url.PathEscape(id)+"/trail/verify", nil, &vr); err == nil {
			p.Verify = &vr
		}
	}
	c.render(w, r, s, http.StatusOK, "connection", &view{Title: "Connection " + p.Conn.User.Name + " → " + p.Conn.Target.Name,
		Active: "/monitor/connections", Data: p})
	return nil
}

// connectionStream relays the API's live trail (Server-Sent Events) to the page's script, as the signed-in user.
func (c *Console) connectionStream(w http.ResponseWriter, r *http.Request, s *session) error {
	// The relayed stream ends with the server's shutdown too, not only when the browser leaves.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-c.Done:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := c.apiRequest(ctx, r, s, "GET", connAPI+"/connections/"+url.PathEscape(r.PathValue("id"))+"/trail/stream", nil)
	if err != nil {
		return err
	}
	c.Backend.ServeHTTP(w, req)
	return nil
}

// connectionTrailJSON relays a page of the trail as the API answers it, for the script to catch up on exchanges
// recorded between rendering the page and opening the live stream.
func (c *Console) connectionTrailJSON(w http.ResponseWriter, r *http.Request, s *session) error {
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	var b []byte
	path := query(connAPI+"/connections/"+url.PathEscape(r.PathValue("id"))+"/trail", "offset", strconv.Itoa(max(offset, 0)), "limit", strconv.Itoa(trailPageSize))
	if err := c.call(r.Context(), r, s, "GET", path, nil, &b); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
	return nil
}

func (c *Console) connectionHAR(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	var b []byte
	if err := c.call(r.Context(), r, s, "GET", connAPI+"/connections/"+url.PathEscape(id)+"/trail?format=har", nil, &b); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="gatehouse-`+safeFile(id)+`.har"`)
	w.Write(b)
	return nil
}

type confirmPage struct {
	Question, Action, Back string
	Details                []string
	// Button labels the confirming button; empty means Terminate.
	Button string
}

func (c *Console) confirmTerminate(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	var conn connection
	if err := c.call(r.Context(), r, s, "GET", connAPI+"/connections/"+url.PathEscape(id), nil, &conn); err != nil {
		return err
	}
	c.render(w, r, s, http.StatusOK, "confirm", &view{Title: "Terminate connection", Active: "/monitor/connections", Data: &confirmPage{
		Question: "Terminate this connection?",
		Details: []string{"User: " + conn.User.Name, "Target: " + conn.Target.Name, "Client: " + conn.ClientAddress,
			"Connected: " + timestamp(conn.Connected)},
		Action: "/monitor/connections/" + url.PathEscape(id) + "/terminate", Back: "/monitor/connections/" + url.PathEscape(id)}})
	return nil
}

func (c *Console) terminate(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	if err := c.call(r.Context(), r, s, "POST", connAPI+"/terminate/connection/"+url.PathEscape(id), nil, nil); err != nil {
		return err
	}
	c.awaitClosed(r, s, id)
	http.Redirect(w, r, "/monitor/connections/"+url.PathEscape(id), http.StatusSeeOther)
	return nil
}

// awaitClosed waits, briefly and boundedly, until the store shows the terminated session closed: the session
// manager writes the close after answering, and the page the browser is sent to should not show it still open.
func (c *Console) awaitClosed(r *http.Request, s *session, id string) {
	for i := 0; i < 40; i++ {
		var conn connection
		if err := c.call(r.Context(), r, s, "GET", connAPI+"/connections/"+url.PathEscape(id), nil, &conn); err != nil || conn.Status != "CONNECTED" {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Console) confirmTerminateUser(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	name := r.URL.Query().Get("name")
	if name == "" {
		name = id
	}
	c.render(w, r, s, http.StatusOK, "confirm", &view{Title: "Terminate a user's connections", Active: "/monitor/connections", Data: &confirmPage{
		Question: "Terminate every open connection of " + name + "?",
		Details:  []string{"Their next requests are refused for the cool-down period."},
		Action:   "/monitor/users/" + url.PathEscape(id) + "/terminate", Back: "/monitor/connections?user=" + url.QueryEscape(id)}})
	return nil
}

func (c *Console) terminateUser(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	if err := c.call(r.Context(), r, s, "POST", connAPI+"/terminate/user/"+url.PathEscape(id), nil, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/monitor/connections?user="+url.QueryEscape(id), http.StatusSeeOther)
	return nil
}

type auditEvent struct {
	ID            int64          `json:"id"`
	Time          time.Time      `json:"time"`
	Actor         string         `json:"actor"`
	Action        string         `json:"action"`
	ObjectType    string         `json:"object_type"`
	ObjectID      string         `json:"object_id"`
	SourceAddress string         `json:"source_address"`
	Outcome       string         `json:"outcome"`
	Diff          map[string]any `json:"diff"`
}

type auditPage struct {
	Actor, Action, ObjectType, ObjectID, From, To string
	Events                                        list[auditEvent]
	Prev, Next                                    string
}

// audit is Monitoring → Audit events, filtered by the API's own filters.
func (c *Console) audit(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	p := &auditPage{Actor: q.Get("actor"), Action: q.Get("action"), ObjectType: q.Get("object_type"), ObjectID: q.Get("object_id"),
		From: q.Get("from"), To: q.Get("to")}
	v := &view{Title: "Audit events", Active: "/monitor/audit", Data: p}
	offset, _ := strconv.Atoi(q.Get("offset"))
	offset = max(offset, 0)
	args := []string{"actor", p.Actor, "action", p.Action, "object_type", p.ObjectType, "object_id", p.ObjectID,
		"offset", strconv.Itoa(offset), "limit", strconv.Itoa(pageSize), "sortdir", "desc"}
	for _, t := range []struct{ name, v string }{{"from", p.From}, {"to", p.To}} {
		rfc, ok := utcInput(t.v)
		if !ok {
			v.Errors = map[string]string{t.name: t.name + " must be a date and time"}
			c.render(w, r, s, http.StatusBadRequest, "audit", v)
			return nil
		}
		args = append(args, t.name, rfc)
	}
	err := c.call(r.Context(), r, s, "GET", query("/audit/api/v1/events", args...), nil, &p.Events)
	if ae, ok := formErr(err); ok && ae.Status == http.StatusBadRequest {
		v.Errors = fieldErrors(ae)
		v.Error = ae.Message
		c.render(w, r, s, http.StatusBadRequest, "audit", v)
		return nil
	} else if err != nil {
		return err
	}
	link := func(off int) string {
		qq := url.Values{}
		for k, vals := range q {
			if k != "offset" && len(vals) > 0 && vals[0] != "" {
				qq.Set(k, vals[0])
			}
		}
		if off > 0 {
			qq.Set("offset", strconv.Itoa(off))
		}
		return "/monitor/audit?" + qq.Encode()
	}
	if offset > 0 {
		p.Prev = link(max(offset-pageSize, 0))
	}
	if offset+len(p.Events.Items) < p.Events.Count {
		p.Next = link(offset + pageSize)
	}
	c.render(w, r, s, http.StatusOK, "audit", v)
	return nil
}

// diffText shows an audit event's details compactly.
func diffText(d map[string]any) string {
	if len(d) == 0 {
		return ""
	}
	b, err := json.Marshal(d)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
