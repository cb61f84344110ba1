package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
)

const connectionsPath = "/connection-manager/api/v1"

var connectionsResource = &resource{
	noun: "session", path: connectionsPath + "/connections",
	columns: []column{{"ID", "id"}, {"STATUS", "status"}, {"USER", "user.name"}, {"TARGET", "target.name"},
		{"CLIENT", "client_address"}, {"CONNECTED", "connected"}, {"REQUESTS", "requests"}, {"REASON", "termination_reason"}},
}

// sessionsCmd is `gatehouse sessions`: the proxy's API sessions (the connection manager).
type sessionsCmd struct {
	List      sessionListCmd      `cmd:"" help:"List API sessions, newest first."`
	Show      getCmd              `cmd:"" help:"Show one session with its counters."`
	Terminate sessionTerminateCmd `cmd:"" help:"Terminate an open session (or all of a user's with --user); in-flight requests abort and the credential is refused from that address for the cool-down period."`
	Hold      sessionHoldCmd      `cmd:"" help:"Put a session under a legal hold (retention keeps it, its trail and its index entries), or --release it."`
}

// ProvideResource hands the sessions resource to the generic subcommands.
func (*sessionsCmd) ProvideResource() *resource { return connectionsResource }

type sessionListCmd struct {
	Status []string `help:"Only these statuses: CONNECTED, DISCONNECTED, TERMINATED, UNAUTHORIZED."`
	User   string   `placeholder:"USER" help:"Only this user's sessions (username or id)."`
	Target string   `placeholder:"TARGET" help:"Only sessions to this target (name or id)."`
	listFlags
	outputFlags
}

func (c *sessionListCmd) Run(g *Globals) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	if len(c.Status) == 0 && c.User == "" && c.Target == "" {
		items, err := api.listAll(g.Ctx, connectionsResource.path, c.query())
		if err != nil {
			return err
		}
		return printList(g.Stdout, c.outputFlags, items, connectionsResource.columns)
	}
	var page struct {
		Items []json.RawMessage `json:"items"`
	}
	user, err := resolveOrID(g, api, usersResource, c.User)
	if err != nil {
		return err
	}
	target, err := resolveOrID(g, api, targetsResource, c.Target)
	if err != nil {
		return err
	}
	body := map[string]any{"status": c.Status, "user_id": user, "target_id": target, "keywords": c.Filter}
	q := url.Values{"limit": {"1000"}}
	if err := api.call(g.Ctx, http.MethodPost, connectionsPath+"/connections/search?"+q.Encode(), body, &page); err != nil {
		return err
	}
	return printList(g.Stdout, c.outputFlags, page.Items, connectionsResource.columns)
}

// resolveOrID turns a name or id into an id. Someone who may see sessions need not be allowed to read users or
// targets: then ref is passed on as an id and the server decides.
func resolveOrID(g *Globals, api *apiClient, r *resource, ref string) (string, error) {
	if ref == "" {
		return "", nil
	}
	id, err := r.resolve(g.Ctx, api, ref)
	if isForbidden(err) {
		return ref, nil
	}
	return id, err
}

type sessionTerminateCmd struct {
	ID   string `arg:"" optional:"" name:"session-id" help:"The session to terminate."`
	User string `placeholder:"USER" help:"Terminate every open session of this user (username or id) instead."`
}

func (c *sessionTerminateCmd) Run(g *Globals) error {
	if (c.ID == "") == (c.User == "") {
		return &exitError{code: 2, msg: "give a session id or --user, not both"}
	}
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	if c.User != "" {
		var out struct {
			Terminated int `json:"terminated"`
		}
		user, err := resolveOrID(g, api, usersResource, c.User)
		if err != nil {
			return err
		}
		if err := api.call(g.Ctx, http.MethodPost, connectionsPath+"/terminate/user/"+url.PathEscape(user), nil, &out); err != nil {
			return err
		}
		fmt.Fprintf(g.Stdout, "terminated %d session(s)\n", out.Terminated)
		return nil
	}
	if err := api.call(g.Ctx, http.MethodPost, connectionsPath+"/terminate/connection/"+url.PathEscape(c.ID), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(g.Stdout, "terminated %s\n", c.ID)
	return nil
}

// trailCmd is `gatehouse trail`: a session's recorded exchanges.
type trailCmd struct {
	Show   trailShowCmd   `cmd:"" help:"Print a session's recorded exchanges (secrets are redacted at recording time)."`
	Export trailExportCmd `cmd:"" help:"Write a session's trail as HAR 1.2 (opens in browser dev tools) or JSON."`
	Follow trailFollowCmd `cmd:"" help:"Print exchanges of an open session as they happen, until it closes."`
	Verify trailVerifyCmd `cmd:"" help:"Check trail hash chains on the server's disk with its master key (works while the server is down); exit 1 on any failure."`
	Search trailSearchCmd `cmd:"" help:"Search inside every recorded session: method, path, user, target, time, and text in bodies."`
}

type trailShowCmd struct {
	ID     string `arg:"" name:"session-id"`
	Offset int    `help:"Skip this many exchanges."`
	Limit  int    `default:"50" help:"Show at most this many exchanges."`
	outputFlags
}

func trailPath(id string) string {
	return connectionsPath + "/connections/" + url.PathEscape(id) + "/trail"
}

func (c *trailShowCmd) Run(g *Globals) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	var page struct {
		Count int               `json:"count"`
		Items []json.RawMessage `json:"items"`
	}
	q := url.Values{"offset": {fmt.Sprint(c.Offset)}, "limit": {fmt.Sprint(c.Limit)}}
	if err := api.get(g.Ctx, trailPath(c.ID), q, &page); err != nil {
		return err
	}
	if c.json() {
		return printJSON(g.Stdout, map[string]any{"count": page.Count, "items": page.Items})
	}
	cols := []column{{"SEQ", "seq"}, {"STARTED", "started"}, {"METHOD", "method"}, {"URL", "url"}, {"STATUS", "status"},
		{"MS", "duration_ms"}, {"REQ BYTES", "request_bytes"}, {"RESP BYTES", "response_bytes"}, {"ERROR", "error"}}
	if err := printList(g.Stdout, c.outputFlags, page.Items, cols); err != nil {
		return err
	}
	fmt.Fprintf(g.Stdout, "(%d of %d exchanges)\n", len(page.Items), page.Count)
	return nil
}

type trailExportCmd struct {
	ID  string `arg:"" name:"session-id"`
	HAR bool   `name:"har" help:"HAR 1.2 (the default)." default:"true" negatable:""`
	Out string `short:"O" help:"Write to this file instead of standard output."`
}

func (c *trailExportCmd) Run(g *Globals) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	q := url.Values{"format": {"har"}}
	if !c.HAR {
		q = url.Values{"limit": {"1000"}}
	}
	b, err := api.do(g.Ctx, request{method: http.MethodGet, path: trailPath(c.ID), query: q})
	if err != nil {
		return err
	}
	if c.Out == "" {
		_, err = g.Stdout.Write(b)
		return err
	}
	if err := os.WriteFile(c.Out, b, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(g.Stderr, "wrote %s (%d bytes)\n", c.Out, len(b))
	return nil
}

type trailFollowCmd struct {
	ID string `arg:"" name:"session-id"`
	outputFlags
}

// Run reads the Server-Sent Events feed and prints one line per exchange.
func (c *trailFollowCmd) Run(g *Globals) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	if api.sess.expired(api.now()) {
		if err := api.sess.refresh(g.Ctx, api.http); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(g.Ctx, http.MethodGet, api.sess.Server+trailPath(c.ID)+"/stream", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+api.sess.AccessToken)
	req.Header.Set("Accept", "text/event-stream")
	hc := *api.http
	hc.Timeout = 0 // the feed lasts as long as the session
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var buf [4096]byte
		n, _ := resp.Body.Read(buf[:])
		return decodeAPIError(resp.StatusCode, buf[:n])
	}
	fmt.Fprintf(g.Stderr, "following session %s (Ctrl-C to stop)\n", c.ID)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "exchange":
			data := strings.TrimPrefix(line, "data: ")
			if c.json() {
				fmt.Fprintln(g.Stdout, data)
				continue
			}
			var ex struct {
				Seq        int64   `json:"seq"`
				Method     string  `json:"method"`
				URL        string  `json:"url"`
				Status     int     `json:"status"`
				DurationMS float64 `json:"duration_ms"`
				Error      string  `json:"error"`
			}
			if json.Unmarshal([]byte(data), &ex) == nil {
				fmt.Fprintf(g.Stdout, "%d\t%s %s\t%d\t%.1fms %s\n", ex.Seq, ex.Method, ex.URL, ex.Status, ex.DurationMS, ex.Error)
			}
		case strings.HasPrefix(line, "data: ") && event == "end":
			fmt.Fprintln(g.Stderr, "session closed")
			return nil
		case strings.HasPrefix(line, "data: ") && event == "revoked":
			return errors.New("the server ended the stream: your token or your access to this trail ended")
		case line == "":
			event = ""
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, g.Ctx.Err()) {
		return err
	}
	return nil
}
