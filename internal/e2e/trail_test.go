package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
	"github.com/google/go-cmp/cmp"
)

// TestTerminate has an admin terminate a session, then all of a user's sessions: the next request is refused for
// the cool-down, the list shows TERMINATED with the reason, and access returns once the cool-down is over.
func TestTerminate(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	f.gh.JSON("PUT", proxyAPI+"/settings", f.adm, map[string]any{"session_cooldown": 2}, http.StatusOK, nil)
	hc := f.client(true)

	for _, tt := range []struct {
		name      string
		terminate func(sessionID string)
	}{
		{"connection", func(id string) {
			f.gh.JSON("POST", connsAPI+"/terminate/connection/"+id, f.adm, nil, http.StatusOK, nil)
		}},
		{"user", func(string) {
			open := 0
			for _, cn := range f.connections() {
				if cn.User.ID == f.userID && cn.Status == "CONNECTED" {
					open++
				}
			}
			var out struct {
				Terminated int `json:"terminated"`
			}
			f.gh.JSON("POST", connsAPI+"/terminate/user/"+f.userID, f.adm, nil, http.StatusOK, &out)
			if out.Terminated != open || open < 1 {
				t.Errorf("terminate/user terminated %d sessions, want the %d open", out.Terminated, open)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := f.in(t)
			c := f.credential(f.alpha, "terminate-"+tt.name, nil)
			if st, body := f.do(hc, "GET", f.https.URL+"/api/items", c.Secret, ""); st != 200 {
				t.Fatalf("first request: %d %s", st, body)
			}
			id := f.session(c.ID)
			tt.terminate(id)
			f.https.Reset()
			st, body := f.do(hc, "GET", f.https.URL+"/api/items", c.Secret, "")
			// The client gets the neutral refusal; the reason is in the log line of its request id.
			var refusal struct {
				RequestID string `json:"request_id"`
			}
			if st != http.StatusForbidden || json.Unmarshal([]byte(body), &refusal) != nil || refusal.RequestID == "" {
				t.Errorf("request right after termination: %d %s, want the neutral 403", st, body)
			} else if !logHas(f.gh.Logs.String(), refusal.RequestID, "cool-down") {
				t.Errorf("no access log line of request %s says cool-down", refusal.RequestID)
			}
			if got := f.https.Requests(); len(got) != 0 {
				t.Errorf("a request in cool-down reached the origin: %+v", got)
			}
			cn := f.waitConnection(c.ID, func(cn connection) bool { return cn.ID == id && cn.Status != "CONNECTED" })
			if cn.Status != "TERMINATED" || !strings.Contains(cn.TerminationReason, "admin") {
				t.Errorf("terminated session listed as %s %q, want TERMINATED by admin", cn.Status, cn.TerminationReason)
			}
			var one connection
			f.gh.JSON("GET", connsAPI+"/connections/"+id, f.adm, nil, http.StatusOK, &one)
			if one.Status != "TERMINATED" || one.Requests != 1 {
				t.Errorf("GET connection: %+v", one)
			}
			// Access returns after the (2 s) cool-down, in a new session.
			deadline := time.Now().Add(15 * time.Second)
			for {
				st, _ := f.do(hc, "GET", f.https.URL+"/api/items", c.Secret, "")
				if st == 200 {
					break
				}
				if st != http.StatusForbidden || time.Now().After(deadline) {
					t.Fatalf("after the cool-down: %d", st)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if next := f.session(c.ID); next == id {
				t.Errorf("access after the cool-down reused the terminated session %s", id)
			}
		})
	}
}

// TestTerminateAbortsInFlight terminates a session while a request of it waits on the origin: the request is
// aborted, and the other sessions of the audited target go on being served (the aborted request's exchange must not
// count as a recording failure, which would close every audited target).
func TestTerminateAbortsInFlight(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	c := f.credential(f.alpha, "in-flight", nil)
	bystander := f.credential(f.alpha, "bystander", nil)
	hc := f.client(false)
	if st, _ := f.do(hc, "GET", f.https.URL+"/api/items", c.Secret, ""); st != 200 {
		t.Fatalf("first request: %d", st)
	}
	id := f.session(c.ID)
	f.https.Reset()
	type result struct {
		status int
		err    error
		took   time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		req, _ := http.NewRequest("GET", f.https.URL+"/api/slow", nil)
		req.Header.Set("Authorization", "Bearer "+c.Secret)
		resp, err := f.client(false).Do(req)
		r := result{err: err}
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			r.status = resp.StatusCode
		}
		r.took = time.Since(start)
		done <- r
	}()
	for deadline := time.Now().Add(10 * time.Second); len(f.https.Requests()) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the slow request never reached the origin")
		}
	}
	f.gh.JSON("POST", connsAPI+"/terminate/connection/"+id, f.adm, nil, http.StatusOK, nil)
	select {
	case r := <-done:
		if r.err == nil && r.status == 200 {
			t.Errorf("the in-flight request completed with 200 after termination")
		}
	case <-time.After(8 * time.Second):
		t.Fatal("the in-flight request was not aborted by the termination")
	}
	if st, body := f.do(hc, "GET", f.https.URL+"/api/items", bystander.Secret, ""); st != 200 {
		t.Errorf("another session of the audited target right after the termination: %d %s", st, body)
	}
	if logs := f.gh.Logs.String(); strings.Contains(logs, "recording failed") {
		t.Errorf("terminating a session with a request in flight was logged as a recording failure")
	}
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	Event, Data string
}

// follow opens the trail stream of a session and returns its events; it returns once the stream is subscribed.
func follow(t *testing.T, f *fixture, sessionID string) <-chan sseEvent {
	t.Helper()
	return followAs(t, f, sessionID, f.adm)
}

// followAs is follow with the access token of another watcher.
func followAs(t *testing.T, f *fixture, sessionID, token string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", f.gh.URL+connsAPI+"/connections/"+sessionID+"/trail/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := f.gh.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		t.Fatalf("trail stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := make(chan sseEvent, 16)
	go func() {
		defer resp.Body.Close()
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Event != "" {
					events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.Event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.Data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return events
}

func nextEvent(t *testing.T, events <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("trail stream ended early")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no trail event within 10s")
	}
	return sseEvent{}
}

// trailExchange is the part of a recorded exchange the tests check.
type trailExchange struct {
	Seq                   int64               `json:"seq"`
	Method                string              `json:"method"`
	URL                   string              `json:"url"`
	Status                int                 `json:"status"`
	RequestHeaders        map[string][]string `json:"request_headers"`
	ResponseHeaders       map[string][]string `json:"response_headers"`
	RequestBody           []byte              `json:"request_body"`
	ResponseBody          []byte              `json:"response_body"`
	RequestBodyTruncated  bool                `json:"request_body_truncated"`
	ResponseBodyTruncated bool                `json:"response_body_truncated"`
	RequestBytes          int64               `json:"request_bytes"`
	ResponseBytes         int64               `json:"response_bytes"`
}

// TestTrail records an audited session and reads it back three ways: live over SSE while following, as paginated
// JSON, and as HAR 1.2. Secrets (the user's, the target's, cookies) are redacted everywhere, bodies included, and an
// over-limit body is cut and marked.
func TestTrail(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	hc := f.client(true)
	c := f.credential(f.alpha, "trail", nil)
	if st, _ := f.do(hc, "GET", f.https.URL+"/api/items?page=1", c.Secret, ""); st != 200 {
		t.Fatalf("first request: %d", st)
	}
	id := f.session(c.ID)
	events := follow(t, f, id)

	// A JSON body carrying the user's own secret, echoed back by the origin.
	post := `{"name":"widget","leak":"` + c.Secret + `"}`
	st, body := f.do(hc, "POST", f.https.URL+"/api/echo", c.Secret, post)
	if st != http.StatusCreated || body != post {
		t.Fatalf("POST /api/echo: %d %s", st, body)
	}
	ev := nextEvent(t, events)
	var live trailExchange
	if ev.Event != "exchange" || json.Unmarshal([]byte(ev.Data), &live) != nil || live.Method != "POST" || !strings.HasSuffix(live.URL, "/api/echo") {
		t.Fatalf("live event: %+v", ev)
	}
	noSecret(t, "the live event", ev.Data, c.Secret, alphaToken)

	// A response larger than the recording body limit (64 KiB by default).
	if st, body := f.do(hc, "GET", f.https.URL+"/api/big", c.Secret, ""); st != 200 || len(body) != bigBody {
		t.Fatalf("GET /api/big: %d, %d bytes", st, len(body))
	}
	if ev := nextEvent(t, events); ev.Event != "exchange" || !strings.Contains(ev.Data, "/api/big") {
		t.Fatalf("live event for /api/big: %.200s", ev.Data)
	}
	f.gh.JSON("POST", connsAPI+"/terminate/connection/"+id, f.adm, nil, http.StatusOK, nil)
	if ev := nextEvent(t, events); ev.Event != "end" {
		t.Errorf("after termination the stream sent %q, want end", ev.Event)
	}

	status, raw := f.gh.Do("GET", connsAPI+"/connections/"+id+"/trail", f.adm, nil)
	if status != 200 {
		t.Fatalf("trail: %d %s", status, raw)
	}
	noSecret(t, "the trail", string(raw), c.Secret, alphaToken, "cookie-value-42")
	var trail struct {
		Count  int             `json:"count"`
		Items  []trailExchange `json:"items"`
		Closed *struct {
			Reason string `json:"reason"`
		} `json:"closed"`
	}
	if err := json.Unmarshal(raw, &trail); err != nil {
		t.Fatal(err)
	}
	type summary struct {
		Seq    int64
		Method string
		URL    string
		Status int
	}
	var got []summary
	for _, x := range trail.Items {
		got = append(got, summary{x.Seq, x.Method, x.URL, x.Status})
	}
	base := "https://" + f.https.HostPort
	want := []summary{{1, "GET", base + "/api/items?page=1", 200}, {2, "POST", base + "/api/echo", 201}, {3, "GET", base + "/api/big", 200}}
	if diff := cmp.Diff(want, got); diff != "" || trail.Count != 3 {
		t.Fatalf("trail (count %d) differs (-want +got):\n%s", trail.Count, diff)
	}
	if trail.Closed == nil || !strings.Contains(trail.Closed.Reason, "admin") {
		t.Errorf("trail close record: %+v", trail.Closed)
	}

	echo := trail.Items[1]
	if got := echo.RequestHeaders["Authorization"]; len(got) != 1 || !strings.Contains(got[0], "[REDACTED]") {
		t.Errorf("recorded Authorization %q, want it redacted", got)
	}
	if got := echo.ResponseHeaders["Set-Cookie"]; len(got) != 1 || !strings.Contains(got[0], "[REDACTED]") {
		t.Errorf("recorded Set-Cookie %q, want its value redacted", got)
	}
	if got := echo.ResponseHeaders["X-Origin"]; len(got) != 1 || got[0] != "e2e" {
		t.Errorf("recorded X-Origin %q", got)
	}
	wantBody := `{"name":"widget","leak":"[REDACTED]"}`
	if string(echo.RequestBody) != wantBody || string(echo.ResponseBody) != wantBody {
		t.Errorf("recorded bodies %q / %q, want %q with the secret redacted", echo.RequestBody, echo.ResponseBody, wantBody)
	}
	if echo.RequestBytes != int64(len(post)) || echo.ResponseBytes != int64(len(post)) {
		t.Errorf("recorded byte counts %d/%d, want %d", echo.RequestBytes, echo.ResponseBytes, len(post))
	}
	big := trail.Items[2]
	if !big.ResponseBodyTruncated || big.ResponseBytes != bigBody || len(big.ResponseBody) == 0 || len(big.ResponseBody) >= bigBody {
		t.Errorf("big response recorded %d of %d bytes, truncated %v; want cut at the limit and marked",
			len(big.ResponseBody), big.ResponseBytes, big.ResponseBodyTruncated)
	}

	// Pagination.
	var page struct {
		Count int             `json:"count"`
		Items []trailExchange `json:"items"`
	}
	f.gh.JSON("GET", connsAPI+"/connections/"+id+"/trail?offset=1&limit=1", f.adm, nil, http.StatusOK, &page)
	if page.Count != 3 || len(page.Items) != 1 || page.Items[0].Seq != 2 {
		t.Errorf("page offset=1 limit=1: count %d, %d items", page.Count, len(page.Items))
	}

	status, raw = f.gh.Do("GET", connsAPI+"/connections/"+id+"/trail?format=har", f.adm, nil)
	if status != 200 {
		t.Fatalf("har: %d %s", status, raw)
	}
	noSecret(t, "the HAR", string(raw), c.Secret, alphaToken, "cookie-value-42")
	var har struct {
		Log struct {
			Version string `json:"version"`
			Creator struct {
				Name string `json:"name"`
			} `json:"creator"`
			Entries []struct {
				StartedDateTime string  `json:"startedDateTime"`
				Time            float64 `json:"time"`
				Request         struct {
					Method      string `json:"method"`
					URL         string `json:"url"`
					HTTPVersion string `json:"httpVersion"`
					Headers     []struct{ Name, Value string }
				} `json:"request"`
				Response struct {
					Status  int `json:"status"`
					Content struct {
						Size     int64  `json:"size"`
						MimeType string `json:"mimeType"`
					} `json:"content"`
				} `json:"response"`
			} `json:"entries"`
		} `json:"log"`
	}
	if err := json.Unmarshal(raw, &har); err != nil {
		t.Fatalf("HAR does not parse: %v", err)
	}
	if har.Log.Version != "1.2" || har.Log.Creator.Name == "" || len(har.Log.Entries) != 3 {
		t.Fatalf("HAR log: version %q creator %q, %d entries", har.Log.Version, har.Log.Creator.Name, len(har.Log.Entries))
	}
	var harGot []summary
	for i, e := range har.Log.Entries {
		if _, err := time.Parse(time.RFC3339, e.StartedDateTime); err != nil {
			t.Errorf("entry %d startedDateTime %q: %v", i, e.StartedDateTime, err)
		}
		harGot = append(harGot, summary{int64(i + 1), e.Request.Method, e.Request.URL, e.Response.Status})
	}
	if diff := cmp.Diff(want, harGot); diff != "" {
		t.Errorf("HAR entries differ (-want +got):\n%s", diff)
	}
	if sz := har.Log.Entries[2].Response.Content.Size; sz != bigBody {
		t.Errorf("HAR content size of /api/big %d, want %d", sz, bigBody)
	}
}

// requestsTotal scrapes /metrics and returns gatehouse_proxy_requests_total by "target decision code", and the
// whole scrape.
func requestsTotal(t *testing.T, f *fixture) (map[string]float64, string) {
	t.Helper()
	// Not http.Get: the default transport would read the proxy environment once for the whole process, and
	// TestGoProxyFromEnvironment needs to be first to read it.
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://" + f.gh.Server.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	label := regexp.MustCompile(`(\w+)="([^"]*)"`)
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "gatehouse_proxy_requests_total{") {
			continue
		}
		end := strings.LastIndexByte(line, '}')
		labels := map[string]string{}
		for _, m := range label.FindAllStringSubmatch(line[:end], -1) {
			labels[m[1]] = m[2]
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		out[labels["target"]+" "+labels["decision"]+" "+labels["code"]] = v
	}
	return out, string(b)
}

// TestMetricsAndLogs checks that proxy requests are counted by target, decision and status, and that neither the
// scrape nor the JSON logs ever hold a secret.
// deniedFor reports whether body is the proxy's neutral refusal and the access log line of its request id gives
// reason.
func deniedFor(f *fixture, body, reason string) bool {
	var refusal struct {
		RequestID string `json:"request_id"`
	}
	return json.Unmarshal([]byte(body), &refusal) == nil && refusal.RequestID != "" &&
		logHas(f.gh.Logs.String(), refusal.RequestID, reason)
}

// logHas reports whether one log line holds the request id and the text.
func logHas(logs, requestID, text string) bool {
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `"request_id":"`+requestID+`"`) && strings.Contains(line, text) {
			return true
		}
	}
	return false
}

func TestMetricsAndLogs(t *testing.T) {
	f := newFixture(t, testserver.Options{Configure: func(c *config.Config) { c.MetricsListen = "127.0.0.1:0" }})
	if f.gh.Server.MetricsAddr() == "" {
		t.Fatal("the metrics listener is not running")
	}
	hc := f.client(true)
	c := f.credential(f.alpha, "metrics", nil)
	before, _ := requestsTotal(t, f)

	for _, r := range []struct {
		path, secret string
		want         int
	}{
		{"/api/items", c.Secret, 200},
		{"/api/items?x=1", c.Secret, 200},
		{"/api/admin/users", c.Secret, 403},
		{"/api/items", "ghp_wrong-secret", 401},
	} {
		if st, body := f.do(hc, "GET", f.https.URL+r.path, r.secret, ""); st != r.want {
			t.Fatalf("GET %s: %d %s, want %d", r.path, st, body, r.want)
		}
	}

	after, scrape := requestsTotal(t, f)
	delta := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			delta[k] = d
		}
	}
	// A policy denial of a good credential carries its target's label (the gate names who was refused); an
	// unauthenticated request has none. The CONNECT that opened the tunnel (without a credential: the requests
	// inside carry it) counts under the target that serves its host.
	want := map[string]float64{"alpha allow 200": 3, "alpha deny 403": 1, "none unauthenticated 401": 1}
	if len(delta) != len(want) {
		t.Errorf("counters changed: %v, want only %v", delta, want)
	}
	for k, v := range want {
		if delta[k] != v {
			t.Errorf("gatehouse_proxy_requests_total{%s} grew by %v, want %v (all changes: %v)", k, delta[k], v, delta)
		}
	}
	for _, m := range []string{"gatehouse_proxy_request_duration_seconds_bucket", "gatehouse_proxy_active_sessions", "gatehouse_recording_healthy 1"} {
		if !strings.Contains(scrape, m) {
			t.Errorf("the scrape has no %s", m)
		}
	}
	noSecret(t, "the metrics scrape", scrape, c.Secret, alphaToken, betaToken)

	logs := f.gh.Logs.String()
	if !strings.Contains(logs, `"msg":"proxy request"`) || !strings.Contains(logs, `"decision":"deny"`) {
		t.Errorf("the logs have no access line with a decision")
	}
	noSecret(t, "the logs", logs, c.Secret, alphaToken, betaToken, userPassword)

	// What an operator alerts on besides the proxy requests: the management API by route and status, logins by
	// outcome, sessions open by target and closed by status, recording failures, the policy snapshot's age.
	f.gh.Do("GET", "/no/such/route", f.adm, nil)
	f.gh.Token("alice", userPassword)
	// Do sends a JSON content type, which the token endpoint refuses (400): a failed login.
	if code, _ := f.gh.Do("POST", "/auth/api/v1/oauth/token", "", "grant_type=password&client_id=gatehouse-cli&username=alice&password=wrong"); code != 400 {
		t.Fatalf("token request with the wrong content type: %d, want 400", code)
	}
	_, scrape = requestsTotal(t, f)
	for _, m := range []string{
		`gatehouse_api_requests_total{code="404",route="unmatched"} 1`,
		`gatehouse_api_requests_total{code="201",route="POST /api-proxy/api/v1/users/{user}/client-credentials"} 1`,
		`gatehouse_api_logins_total{api="service",outcome="success"}`,
		`gatehouse_api_logins_total{api="service",outcome="failure"} 1`,
		`gatehouse_api_request_duration_seconds_bucket{route="GET /healthz"`,
		`gatehouse_sessions_open{target="alpha"} 1`,
		`gatehouse_recording_failures_total 0`,
		`gatehouse_policy_snapshot_age_seconds `,
	} {
		if !strings.Contains(scrape, m) {
			t.Errorf("the scrape has no %s", m)
		}
	}
	f.gh.JSON("POST", connsAPI+"/terminate/connection/"+f.session(c.ID), f.adm, nil, http.StatusOK, nil)
	_, scrape = requestsTotal(t, f)
	for _, m := range []string{`gatehouse_sessions_closed_total{status="TERMINATED",target="alpha"} 1`} {
		if !strings.Contains(scrape, m) {
			t.Errorf("after a termination, the scrape has no %s", m)
		}
	}
	if strings.Contains(scrape, `gatehouse_sessions_open{target="alpha"}`) {
		t.Errorf("the terminated session is still counted open")
	}
}
