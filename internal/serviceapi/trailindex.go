package serviceapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/trailindex"
)

// TrailSearcher answers searches of the trail index; *store.Store is the implementation on both engines.
type TrailSearcher interface {
	SearchTrails(ctx context.Context, q store.TrailQuery) ([]store.TrailEntry, int, bool, error)
}

var _ TrailSearcher = (*store.Store)(nil)

// transcriptSearch is the body of POST /trail-index/api/v1/index/search: PrivX's TranscriptSearch, plus the fields
// an HTTP exchange has that a terminal transcript does not. Every field narrows the search; none is required.
type transcriptSearch struct {
	ConnectionID string `json:"connection_id"`
	// ChannelID names one exchange of the connection: its sequence number.
	ChannelID string `json:"channel_id"`
	// Protocol is the URL scheme, http or https.
	Protocol  string `json:"protocol"`
	Keywords  string `json:"keywords"`
	StartTime string `json:"start_time"`
	EndTime   string `json:"end_time"`
	// StartPos and EndPos bound the exchange sequence numbers (inclusive; 0 means open).
	StartPos int `json:"start_position"`
	EndPos   int `json:"end_position"`

	UserID           string `json:"user_id"`
	User             string `json:"user"`
	TargetID         string `json:"target_id"`
	Target           string `json:"target"`
	ClientAddress    string `json:"client_address"`
	Method           string `json:"method"`
	Host             string `json:"host"`
	PathPrefix       string `json:"path_prefix"`
	Status           int    `json:"status"`
	Decision         string `json:"decision"`
	RequestContains  string `json:"request_contains"`
	ResponseContains string `json:"response_contains"`
}

// trailIndexResponse is one search result: PrivX's TrailIndexResponse, plus the exchange's fields and links to
// the session and to the exchange in its trail.
type trailIndexResponse struct {
	ConnectionType string          `json:"connection_type"`
	ConnID         string          `json:"connection_id"`
	ChanID         string          `json:"channel_id"`
	Protocol       string          `json:"protocol"`
	ChannelType    string          `json:"type"`
	Extra          trailIndexExtra `json:"extra"`
	TimeStamp      time.Time       `json:"timestamp"`
	Position       int64           `json:"position"`
	Content        string          `json:"content"`

	User          model.Ref       `json:"user"`
	Target        model.Ref       `json:"target"`
	ClientAddress string          `json:"client_address"`
	Method        string          `json:"method"`
	Host          string          `json:"host"`
	Path          string          `json:"path"`
	Query         string          `json:"query,omitempty"`
	Status        int             `json:"status"`
	DurationMS    float64         `json:"duration_ms"`
	Decision      string          `json:"decision"`
	Links         trailIndexLinks `json:"links"`
}

// trailIndexPage is the answer of a search: the service API's {"count","items"}, where count stops at
// store.MaxTrailCount and count_exact says whether it did not.
type trailIndexPage struct {
	Count      int                  `json:"count"`
	CountExact bool                 `json:"count_exact"`
	Items      []trailIndexResponse `json:"items"`
}

type trailIndexExtra struct {
	HTTPRequest           string `json:"http_request"`
	HTTPRequestID         string `json:"http_request_id,omitempty"`
	HTTPResponse          string `json:"http_response"`
	HTTPResponseTimeStamp string `json:"http_response_timestamp"`
	HTTPTransport         string `json:"http_transport"`
}

type trailIndexLinks struct {
	Connection string `json:"connection"`
	Exchange   string `json:"exchange"`
}

// searchTrailIndex is POST /trail-index/api/v1/index/search?offset=&limit=&sortdir=: exchanges of every recorded
// session that match, newest first. It needs connections-trails, like reading a trail, because results show body
// text; every search is audited.
func (a *API) searchTrailIndex(w http.ResponseWriter, r *http.Request) error {
	var in transcriptSearch
	if err := decode(r, &in); err != nil {
		return err
	}
	q, err := in.query()
	if err != nil {
		return err
	}
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	q.Offset, q.Limit = opts.Offset, opts.Limit
	switch strings.ToLower(opts.SortDir) {
	case "", "desc":
	case "asc":
		q.Ascending = true
	default:
		return badRequest("sortdir", "sortdir must be asc or desc")
	}
	if opts.SortKey != "" && opts.SortKey != "timestamp" {
		return badRequest("sortkey", "results are sorted by timestamp only")
	}
	var idx TrailSearcher = a.Store
	if a.TrailIndex != nil {
		idx = a.TrailIndex
	}
	list, total, exact, err := idx.SearchTrails(r.Context(), q)
	if err != nil {
		return err
	}
	out := make([]trailIndexResponse, 0, len(list))
	for i := range list {
		out = append(out, viewTrailEntry(&list[i], q))
	}
	a.audit(r, "search-trails", "trail-index", "", nil, map[string]any{"query": in, "matches": total})
	writeJSON(w, http.StatusOK, trailIndexPage{Count: total, CountExact: exact, Items: out})
	return nil
}

// query checks the search and turns it into a store query; a bad field is refused by name.
func (in *transcriptSearch) query() (store.TrailQuery, error) {
	q := store.TrailQuery{SessionID: in.ConnectionID, UserID: in.UserID, UserName: in.User, TargetID: in.TargetID,
		TargetName: in.Target, ClientAddress: in.ClientAddress, Method: strings.ToUpper(in.Method), Host: in.Host,
		PathPrefix: in.PathPrefix, Status: in.Status, Decision: in.Decision, Keywords: in.Keywords,
		RequestText: in.RequestContains, ResponseText: in.ResponseContains, SeqFrom: int64(in.StartPos), SeqTo: int64(in.EndPos)}
	var err error
	if q.From, err = searchTime("start_time", in.StartTime); err != nil {
		return q, err
	}
	if q.To, err = searchTime("end_time", in.EndTime); err != nil {
		return q, err
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		return q, badRequest("end_time", "end_time is before start_time")
	}
	if in.ChannelID != "" {
		n, err := strconv.ParseInt(in.ChannelID, 10, 64)
		if err != nil || n < 1 {
			return q, badRequest("channel_id", "channel_id is an exchange's sequence number (1, 2, ...)")
		}
		q.SeqFrom, q.SeqTo = n, n
	}
	if in.StartPos < 0 || in.EndPos < 0 || (in.EndPos > 0 && in.EndPos < in.StartPos) {
		return q, badRequest("end_position", "positions are exchange sequence numbers; end_position must not be before start_position")
	}
	switch p := strings.ToLower(in.Protocol); p {
	case "", "http", "https":
		q.Scheme = p
	default:
		return q, badRequest("protocol", "protocol must be http or https")
	}
	if in.Status != 0 && (in.Status < 100 || in.Status > 999) {
		return q, badRequest("status", "status must be an HTTP status code")
	}
	if in.PathPrefix != "" && !strings.HasPrefix(in.PathPrefix, "/") {
		return q, badRequest("path_prefix", "path_prefix must start with /")
	}
	for f, v := range map[string]string{"keywords": in.Keywords, "request_contains": in.RequestContains, "response_contains": in.ResponseContains} {
		if len(v) > 1000 {
			return q, badRequest(f, f+" must be at most 1000 bytes")
		}
		if v != "" && utf8.RuneCountInString(v) < store.MinSearchText {
			return q, badRequest(f, fmt.Sprintf("%s needs at least %d characters (the trigram index serves nothing shorter)", f, store.MinSearchText))
		}
	}
	return q, nil
}

func searchTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, badRequest(field, field+" must be an RFC 3339 time, such as 2026-11-24T00:00:00Z")
	}
	return t, nil
}

func viewTrailEntry(e *store.TrailEntry, q store.TrailQuery) trailIndexResponse {
	typ := "http"
	if e.WebSocket {
		typ = "websocket"
	}
	conn := "/connection-manager/api/v1/connections/" + e.SessionID
	return trailIndexResponse{
		ConnectionType: "API", ConnID: e.SessionID, ChanID: strconv.FormatInt(e.Seq, 10), Protocol: e.Scheme, ChannelType: typ,
		Extra: trailIndexExtra{HTTPRequest: e.RequestLine(), HTTPRequestID: e.RequestID,
			HTTPResponse:          strings.TrimSpace(fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))),
			HTTPResponseTimeStamp: e.Started.Add(time.Duration(e.DurationMS * float64(time.Millisecond))).UTC().Format(time.RFC3339Nano),
			HTTPTransport:         e.Proto},
		TimeStamp: e.Started, Position: e.Seq, Content: trailindex.Snippet(e, q),
		User: model.Ref{ID: e.UserID, Name: e.UserName}, Target: model.Ref{ID: e.TargetID, Name: e.TargetName},
		ClientAddress: e.ClientAddress, Method: e.Method, Host: e.Host, Path: e.Path, Query: e.Query, Status: e.Status,
		DurationMS: e.DurationMS, Decision: e.Decision,
		Links: trailIndexLinks{Connection: conn, Exchange: fmt.Sprintf("%s/trail?offset=%d&limit=1", conn, e.Seq-1)},
	}
}
