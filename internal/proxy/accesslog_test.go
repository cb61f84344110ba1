package proxy

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"
)

// namingAuthorizer names the target of a CONNECT authority, as the gate does.
type namingAuthorizer struct{ Authorizer }

func (namingAuthorizer) TargetFor(authority string) string {
	if authority == "api.example.com:443" {
		return "origin"
	}
	return ""
}

// TestAccessLogLine pins the access log line, field by field and in order, in both formats `gatehouse serve`
// writes (JSON and text, through Logger.With("component", "proxy") as internal/server sets it up): log
// collectors parse these lines, so a faster way of writing them must write the same bytes. Only the time
// differs from one run to the next; it is checked for presence and stripped.
func TestAccessLogLine(t *testing.T) {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	client := netip.MustParseAddrPort("192.0.2.7:51234")
	grant := &Grant{Target: &Target{ID: "t1", Name: "origin"}, Session: SessionInfo{UserName: "al\"ice", UserID: "u-1",
		CredentialName: "laptop"}}
	for _, tc := range []struct {
		name      string
		rs        *requestState
		in, out   int64
		json, txt string
	}{
		{"allowed", &requestState{id: "r1", start: start, client: client, clientStr: "192.0.2.7:51234", method: "GET",
			scheme: "https", host: "api.example.com:443", path: "/v1/widgets/42", status: 200, decision: decisionAllow,
			grant: grant}, 120, 3400,
			`{"level":"INFO","msg":"proxy request","component":"proxy","request_id":"r1","client":"192.0.2.7:51234","method":"GET","scheme":"https","host":"api.example.com:443","path":"/v1/widgets/42","status":200,"decision":"allow","user":"al\"ice","user_id":"u-1","credential":"laptop","target":"origin","unauthenticated":false,"duration":1500000,"bytes_in":120,"bytes_out":3400}`,
			`level=INFO msg="proxy request" component=proxy request_id=r1 client=192.0.2.7:51234 method=GET scheme=https host=api.example.com:443 path=/v1/widgets/42 status=200 decision=allow user="al\"ice" user_id=u-1 credential=laptop target=origin unauthenticated=false duration=1.5ms bytes_in=120 bytes_out=3400`},
		{"upstream failure", &requestState{id: "r2", start: start, client: client, method: "POST", scheme: "http",
			host: "api.example.com", path: "/v1/x y", status: 502, decision: decisionAllow, grant: grant,
			reason: "target unreachable", upstream: "dial", err: errors.New("connection refused")}, 7, 0,
			`{"level":"WARN","msg":"proxy request","component":"proxy","request_id":"r2","client":"192.0.2.7:51234","method":"POST","scheme":"http","host":"api.example.com","path":"/v1/x y","status":502,"decision":"allow","user":"al\"ice","user_id":"u-1","credential":"laptop","target":"origin","unauthenticated":false,"reason":"target unreachable","upstream_error":"dial","error":"connection refused","duration":1500000,"bytes_in":7,"bytes_out":0}`,
			`level=WARN msg="proxy request" component=proxy request_id=r2 client=192.0.2.7:51234 method=POST scheme=http host=api.example.com path="/v1/x y" status=502 decision=allow user="al\"ice" user_id=u-1 credential=laptop target=origin unauthenticated=false reason="target unreachable" upstream_error=dial error="connection refused" duration=1.5ms bytes_in=7 bytes_out=0`},
		{"refused before parsing", &requestState{id: "r3", start: start, client: client, status: 400,
			decision: decisionBadRequest, reason: "malformed request"}, 0, 0,
			`{"level":"INFO","msg":"proxy request","component":"proxy","request_id":"r3","client":"192.0.2.7:51234","method":"","scheme":"","host":"","path":"","status":400,"decision":"bad_request","reason":"malformed request","duration":1500000,"bytes_in":0,"bytes_out":0}`,
			`level=INFO msg="proxy request" component=proxy request_id=r3 client=192.0.2.7:51234 method="" scheme="" host="" path="" status=400 decision=bad_request reason="malformed request" duration=1.5ms bytes_in=0 bytes_out=0`},
		{"denied CONNECT named by the authorizer", &requestState{id: "r4", start: start, client: client, method: "CONNECT",
			host: "api.example.com:443", status: 403, decision: decisionDeny, reason: "no role"}, 0, 0,
			`{"level":"INFO","msg":"proxy request","component":"proxy","request_id":"r4","client":"192.0.2.7:51234","method":"CONNECT","scheme":"","host":"api.example.com:443","path":"","status":403,"decision":"deny","target":"origin","reason":"no role","duration":1500000,"bytes_in":0,"bytes_out":0}`,
			`level=INFO msg="proxy request" component=proxy request_id=r4 client=192.0.2.7:51234 method=CONNECT scheme="" host=api.example.com:443 path="" status=403 decision=deny target=origin reason="no role" duration=1.5ms bytes_in=0 bytes_out=0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, f := range []struct {
				name, want string
				handler    func(*bytes.Buffer) slog.Handler
				time       *regexp.Regexp
			}{
				{"json", tc.json, func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, &slog.HandlerOptions{}) },
					regexp.MustCompile(`^\{"time":"[0-9T:.+Z-]+",`)},
				{"text", tc.txt, func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, &slog.HandlerOptions{}) },
					regexp.MustCompile(`^time=[0-9T:.+Z-]+ `)},
			} {
				var buf bytes.Buffer
				s := &Server{Logger: slog.New(f.handler(&buf)).With("component", "proxy"), Authorizer: namingAuthorizer{},
					now: func() time.Time { return start.Add(1500 * time.Microsecond) }}
				s.logAccess(context.Background(), tc.rs, tc.in, tc.out)
				line := strings.TrimSuffix(buf.String(), "\n")
				if strings.Count(buf.String(), "\n") != 1 {
					t.Fatalf("%s: want one line, got %q", f.name, buf.String())
				}
				loc := f.time.FindStringIndex(line)
				if loc == nil {
					t.Fatalf("%s: no time first in %s", f.name, line)
				}
				got := line[loc[1]:]
				if f.name == "json" {
					got = "{" + got
				}
				if got != f.want {
					t.Errorf("%s line\n got %s\nwant %s", f.name, got, f.want)
				}
			}
		})
	}
}

// TestAccessLogLevel checks that the line is not written below the handler's level (a warn-level log shows
// failed requests only) and is written at WARN for server errors.
func TestAccessLogLevel(t *testing.T) {
	var buf bytes.Buffer
	s := &Server{Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	s.init()
	s.logAccess(context.Background(), &requestState{id: "ok", start: time.Now(), status: 200, decision: decisionAllow}, 0, 0)
	s.logAccess(context.Background(), &requestState{id: "bad", start: time.Now(), status: 503, decision: decisionError}, 0, 0)
	if out := buf.String(); strings.Contains(out, `"request_id":"ok"`) || !strings.Contains(out, `"request_id":"bad"`) {
		t.Errorf("warn-level log:\n%s", out)
	}
}
