package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// trailSearchCmd is `gatehouse trail search`: exchanges of every recorded session that match, through the service
// API's trail index (POST /trail-index/api/v1/index/search).
type trailSearchCmd struct {
	Method           string        `help:"Only this method (DELETE, GET, ...)."`
	Path             string        `help:"Only paths at or under this prefix, e.g. /apis/apps/v1/namespaces/prod."`
	Host             string        `help:"Only this host[:port]."`
	User             string        `help:"Only this user (name)."`
	Target           string        `help:"Only this API target (name)."`
	Session          string        `help:"Only this session (id)."`
	Status           int           `help:"Only this response status."`
	Decision         string        `help:"Only decisions starting with this, e.g. denied."`
	Contains         string        `help:"Text in the request line or either body (case-insensitive)."`
	RequestContains  string        `name:"request-contains" help:"Text in the request body."`
	ResponseContains string        `name:"response-contains" help:"Text in the response body."`
	Since            time.Duration `help:"Only exchanges of the last duration, e.g. 168h for a week."`
	From             string        `help:"Only exchanges from this RFC 3339 time on."`
	To               string        `help:"Only exchanges up to this RFC 3339 time."`
	Limit            int           `default:"50" help:"Show at most this many matches."`
	Offset           int           `help:"Skip this many matches."`
	outputFlags
}

func (c *trailSearchCmd) Run(g *Globals) error {
	if c.Since > 0 && c.From != "" {
		return &exitError{code: 2, msg: "give --since or --from, not both"}
	}
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	body := map[string]any{"method": c.Method, "path_prefix": c.Path, "host": c.Host, "user": c.User, "target": c.Target,
		"connection_id": c.Session, "status": c.Status, "decision": c.Decision, "keywords": c.Contains,
		"request_contains": c.RequestContains, "response_contains": c.ResponseContains, "start_time": c.From, "end_time": c.To}
	if c.Since > 0 {
		body["start_time"] = time.Now().Add(-c.Since).UTC().Format(time.RFC3339)
	}
	var page struct {
		Count int               `json:"count"`
		Items []json.RawMessage `json:"items"`
	}
	q := url.Values{"limit": {fmt.Sprint(c.Limit)}, "offset": {fmt.Sprint(c.Offset)}}
	if err := api.call(g.Ctx, http.MethodPost, "/trail-index/api/v1/index/search?"+q.Encode(), body, &page); err != nil {
		return err
	}
	if c.json() {
		return printJSON(g.Stdout, map[string]any{"count": page.Count, "items": page.Items})
	}
	cols := []column{{"TIME", "timestamp"}, {"SESSION", "connection_id"}, {"SEQ", "position"}, {"USER", "user.name"},
		{"TARGET", "target.name"}, {"METHOD", "method"}, {"PATH", "path"}, {"STATUS", "status"}, {"MATCH", "content"}}
	if err := printList(g.Stdout, c.outputFlags, page.Items, cols); err != nil {
		return err
	}
	fmt.Fprintf(g.Stdout, "(%d of %d matches; gatehouse trail show <session> --offset <seq-1> --limit 1 shows one)\n", len(page.Items), page.Count)
	return nil
}

// sessionHoldCmd is `gatehouse sessions hold`: put a session under a legal hold, or release it.
type sessionHoldCmd struct {
	ID      string `arg:"" name:"session-id"`
	Reason  string `help:"Why the session is held (required unless --release)."`
	Release bool   `help:"Release the hold: retention may then delete the session when it is old enough."`
	outputFlags
}

func (c *sessionHoldCmd) Run(g *Globals) error {
	if !c.Release && c.Reason == "" {
		return &exitError{code: 2, msg: "a legal hold needs --reason"}
	}
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	var out json.RawMessage
	body := map[string]any{"hold": !c.Release, "reason": c.Reason}
	if err := api.call(g.Ctx, http.MethodPut, connectionsPath+"/connections/"+url.PathEscape(c.ID)+"/legal-hold", body, &out); err != nil {
		return err
	}
	if c.json() {
		return printJSON(g.Stdout, out)
	}
	if c.Release {
		fmt.Fprintf(g.Stdout, "released the legal hold on %s\n", c.ID)
	} else {
		fmt.Fprintf(g.Stdout, "%s is under a legal hold: %s\n", c.ID, c.Reason)
	}
	return nil
}
