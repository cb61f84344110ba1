package e2e_test

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// fxAttack is one hand-written request sent over a raw connection to the full server.
type fxAttack struct {
	name string
	// tunnel is the CONNECT authority (placeholders allowed); empty sends req in absolute form on the proxy port.
	tunnel string
	// connectAuth is the Proxy-Authorization value on the CONNECT, if any.
	connectAuth string
	// sni overrides the TLS server name inside the tunnel.
	sni string
	// req is the request as bytes on the wire, with placeholders (see fxExpand).
	req string
	// status is the answer expected; 0 means the TLS handshake must fail.
	status int
	// reach names the origin that may see the request ("" for none) and path the exact path it must see.
	reach, path string
}

// fxExpand fills the placeholders of an attack: {A} alpha's HTTPS origin, {P} alpha's plain HTTP origin, {B}
// beta's origin (a target the same user may also use), {S} the secret of alpha's credential, {C} its id.
func fxExpand(s string, f *fixture, c cred) string {
	return strings.NewReplacer("{A}", f.https.HostPort, "{P}", f.http.HostPort, "{B}", f.other.HostPort,
		"{S}", c.Secret, "{C}", c.ID).Replace(s)
}

// fxSend runs one attack over a fresh TCP connection and returns the response, or the error that stopped it.
func fxSend(t *testing.T, f *fixture, c cred, a fxAttack) (*http.Response, string, error) {
	t.Helper()
	conn, err := net.Dial("tcp", f.gh.Server.ProxyAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	var rw io.ReadWriter = conn
	if a.tunnel != "" {
		authority := fxExpand(a.tunnel, f, c)
		head := "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n"
		if a.connectAuth != "" {
			head += "Proxy-Authorization: " + fxExpand(a.connectAuth, f, c) + "\r\n"
		}
		if _, err := io.WriteString(conn, head+"\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			t.Fatalf("CONNECT %s: %v", authority, err)
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			return resp, string(b), nil
		}
		if br.Buffered() > 0 {
			t.Fatalf("CONNECT %s: %d bytes after the 200", authority, br.Buffered())
		}
		name := a.sni
		if name == "" {
			name, _, _ = net.SplitHostPort(authority)
		}
		tc := tls.Client(conn, &tls.Config{ServerName: name, RootCAs: f.proxyPool, NextProtos: []string{"http/1.1"}})
		if err := tc.Handshake(); err != nil {
			return nil, "", fmt.Errorf("tls: %w", err)
		}
		rw = tc
	}
	if _, err := io.WriteString(rw, fxExpand(a.req, f, c)); err != nil {
		return nil, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(rw), nil)
	if err != nil {
		return nil, "", err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), nil
}

// TestAttackCorpus sends path, framing, Host/SNI, header and credential tricks through the full server and checks
// each answer and what every origin received: refused requests never reach a target, and the allowed
// normalizations reach it with exactly the matched path and the injected credential.
func TestAttackCorpus(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	c := f.credential(f.alpha, "attacker-laptop", nil)
	auth := "Authorization: Bearer {S}\r\n"
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: {A}\r\n" + auth + "\r\n" }
	// Basic is encoded here from the real values: placeholders are filled in after encoding.
	basicFor := func(cr cred) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(cr.ID+":"+cr.Secret))
	}

	cases := []fxAttack{
		// The baseline: the plain paths these tricks are after.
		{name: "plain allowed path", tunnel: "{A}", req: get("/api/items/1"), status: 200, reach: "A", path: "/api/items/1"},
		{name: "plain unauthorized endpoint", tunnel: "{A}", req: get("/api/admin/users"), status: 403},
		{name: "plain path outside the rules", tunnel: "{A}", req: get("/admin"), status: 403},

		// Path tricks: resolved to the path the plain form names, or refused.
		{name: "dot segments climb out of /api", tunnel: "{A}", req: get("/api/../admin"), status: 403},
		{name: "dot segments into the unauthorized endpoint", tunnel: "{A}", req: get("/api/items/../admin/users"), status: 403},
		{name: "encoded dot segments", tunnel: "{A}", req: get("/api/%2e%2e/api/admin/users"), status: 403},
		{name: "encoded dot segments mixed case", tunnel: "{A}", req: get("/api/%2E%2e/admin"), status: 403},
		{name: "double-encoded dots", tunnel: "{A}", req: get("/api/%252e%252e/admin"), status: 400},
		{name: "encoded slash", tunnel: "{A}", req: get("/api/admin%2fusers"), status: 400},
		{name: "encoded slash lower case before admin", tunnel: "{A}", req: get("/api%2Fadmin/users"), status: 400},
		{name: "empty segment", tunnel: "{A}", req: get("/api//admin/users"), status: 400},
		{name: "leading double slash", tunnel: "{A}", req: get("//api/admin/users"), status: 400},
		{name: "path parameter", tunnel: "{A}", req: get("/api/admin;x=1/users"), status: 400},
		{name: "path parameter on allowed prefix", tunnel: "{A}", req: get("/api;/admin/users"), status: 400},
		{name: "encoded NUL", tunnel: "{A}", req: get("/api/items%00/../admin"), status: 400},
		{name: "encoded newline", tunnel: "{A}", req: get("/api/items%0a"), status: 400},
		{name: "upper-case prefix", tunnel: "{A}", req: get("/API/items/1"), status: 403},
		{name: "encoded letter into the unauthorized endpoint", tunnel: "{A}", req: get("/api/%61dmin/users"), status: 403},
		// Deny rules hold against what case-insensitive and Windows origins (Express by default, IIS) route as
		// /api/admin/ (issue 9); allow rules still match the exact path.
		{name: "encoded upper-case letter into the unauthorized endpoint", tunnel: "{A}", req: get("/api/%41dmin/users"), status: 403},
		{name: "upper-case unauthorized endpoint", tunnel: "{A}", req: get("/api/ADMIN/users"), status: 403},
		{name: "mixed-case unauthorized endpoint", tunnel: "{A}", req: get("/api/Admin/users"), status: 403},
		{name: "trailing dot on the unauthorized segment", tunnel: "{A}", req: get("/api/admin./users"), status: 403},
		{name: "trailing space on the unauthorized segment", tunnel: "{A}", req: get("/api/admin%20/users"), status: 403},
		{name: "trailing no-break space", tunnel: "{A}", req: get("/api/admin%C2%A0/users"), status: 403},
		{name: "NTFS stream suffix", tunnel: "{A}", req: get("/api/admin::$DATA/users"), status: 403},
		{name: "fullwidth letters", tunnel: "{A}", req: get("/api/%EF%BD%81%EF%BD%84%EF%BD%8D%EF%BD%89%EF%BD%8E/users"), status: 403},
		{name: "dotless i", tunnel: "{A}", req: get("/api/adm%C4%B1n/users"), status: 403},
		{name: "overlong UTF-8 dots", tunnel: "{A}", req: get("/api/items/%C0%AE%C0%AE/admin/users"), status: 400},
		{name: "fullwidth solidus", tunnel: "{A}", req: get("/api/items/..%EF%BC%8Fadmin/users"), status: 400},
		{name: "division slash", tunnel: "{A}", req: get("/api/items/..%E2%88%95admin/users"), status: 400},
		{name: "one-dot leaders", tunnel: "{A}", req: get("/api/items/%E2%80%A4%E2%80%A4/admin/users"), status: 400},
		{name: "segment of dots and spaces", tunnel: "{A}", req: get("/api/items/.%20./admin/users"), status: 400},
		{name: "upper-case allowed path stays exact", tunnel: "{A}", req: get("/api/Items/7"), status: 200, reach: "A", path: "/api/Items/7"},
		{name: "backslash", tunnel: "{A}", req: get("/api\\..\\admin"), status: 400},
		{name: "encoded unreserved is decoded", tunnel: "{A}", req: get("/api/%69tems/2"), status: 200, reach: "A", path: "/api/items/2"},
		{name: "dot segment inside /api resolves", tunnel: "{A}", req: get("/api/x/../items/3"), status: 200, reach: "A", path: "/api/items/3"},
		{name: "dot segments on plain HTTP", req: "GET http://{P}/api/../admin HTTP/1.1\r\nHost: {P}\r\n" + auth + "\r\n", status: 403},

		// Framing: ambiguous bodies are refused before anything is forwarded.
		{name: "CL and TE", tunnel: "{A}", req: "POST /api/echo HTTP/1.1\r\nHost: {A}\r\n" + auth + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400},
		{name: "duplicate CL", tunnel: "{A}", req: "POST /api/echo HTTP/1.1\r\nHost: {A}\r\n" + auth + "Content-Length: 2\r\nContent-Length: 2\r\n\r\nhi", status: 400},
		{name: "conflicting CL", tunnel: "{A}", req: "POST /api/echo HTTP/1.1\r\nHost: {A}\r\n" + auth + "Content-Length: 2\r\nContent-Length: 3\r\n\r\nhi!", status: 400},
		{name: "invalid CL", tunnel: "{A}", req: "POST /api/echo HTTP/1.1\r\nHost: {A}\r\n" + auth + "Content-Length: 0x2\r\n\r\nhi", status: 400},
		{name: "TE identity", tunnel: "{A}", req: "POST /api/echo HTTP/1.1\r\nHost: {A}\r\n" + auth + "Transfer-Encoding: identity\r\n\r\nhi", status: 400},
		{name: "TE chunked twice", tunnel: "{A}", req: "POST /api/echo HTTP/1.1\r\nHost: {A}\r\n" + auth + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", status: 400},
		{name: "bad chunk size", tunnel: "{A}", req: "POST /api/echo HTTP/1.1\r\nHost: {A}\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n0\r\n\r\n", status: 400},
		{name: "chunk longer than its size", tunnel: "{A}", req: "POST /api/echo HTTP/1.1\r\nHost: {A}\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\n1\r\nhi\r\n0\r\n\r\n", status: 400},
		{name: "bare LF", tunnel: "{A}", req: "GET /api/items/1 HTTP/1.1\nHost: {A}\nAuthorization: Bearer {S}\n\n", status: 400},
		{name: "obs-fold", tunnel: "{A}", req: "GET /api/items/1 HTTP/1.1\r\nHost: {A}\r\n" + auth + "X-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n", status: 400},
		{name: "valid chunked body is forwarded with a length", tunnel: "{A}", req: "POST /api/echo HTTP/1.1\r\nHost: {A}\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", status: 201, reach: "A", path: "/api/echo"},

		// Host, CONNECT authority, absolute URI and SNI must all name the same target.
		{name: "Host is another target than CONNECT", tunnel: "{A}", req: "GET /api/items/1 HTTP/1.1\r\nHost: {B}\r\n" + auth + "\r\n", status: 400},
		{name: "absolute URI is another target than CONNECT", tunnel: "{A}", req: "GET https://{B}/api/items/1 HTTP/1.1\r\nHost: {A}\r\n" + auth + "\r\n", status: 400},
		{name: "two Host headers", tunnel: "{A}", req: "GET /api/items/1 HTTP/1.1\r\nHost: {A}\r\nHost: {B}\r\n" + auth + "\r\n", status: 400},
		{name: "absolute URI disagrees with Host", req: "GET http://{P}/api/items/1 HTTP/1.1\r\nHost: {B}\r\n" + auth + "\r\n", status: 400},
		{name: "absolute URI disagrees with Host port", req: "GET http://{P}/api/items/1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n" + auth + "\r\n", status: 400},
		{name: "SNI names another host than CONNECT", tunnel: "{A}", sni: "localhost", req: get("/api/items/1"), status: 0},
		{name: "SNI names a NAT name", tunnel: "{A}", sni: natHTTPSName, req: get("/api/items/1"), status: 0},

		// Header tricks.
		{name: "Connection names Authorization", tunnel: "{A}", req: "GET /api/items/4 HTTP/1.1\r\nHost: {A}\r\n" + auth + "Connection: Authorization, X-Forwarded-For\r\n\r\n", status: 200, reach: "A", path: "/api/items/4"},
		{name: "client X-Forwarded-For is dropped", tunnel: "{A}", req: "GET /api/items/5 HTTP/1.1\r\nHost: {A}\r\n" + auth + "X-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\n\r\n", status: 200, reach: "A", path: "/api/items/5"},
		{name: "two Authorization headers", tunnel: "{A}", req: "GET /api/items/1 HTTP/1.1\r\nHost: {A}\r\n" + auth + "Authorization: Bearer other\r\n\r\n", status: 401},
		{name: "Authorization and Proxy-Authorization", req: "GET http://{P}/api/items/1 HTTP/1.1\r\nHost: {P}\r\n" + auth + "Proxy-Authorization: Bearer wrong-secret\r\n\r\n", status: 200, reach: "P", path: "/api/items/1"},

		// Protocol switches: only a complete WebSocket handshake may ask for one (issue 9); h2c or an invented
		// token would open a pipe on which nothing is authorized.
		{name: "h2c upgrade", tunnel: "{A}", req: "GET /api/items/1 HTTP/1.1\r\nHost: {A}\r\n" + auth + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", status: 400},
		{name: "invented upgrade token", tunnel: "{A}", req: "GET /api/items/1 HTTP/1.1\r\nHost: {A}\r\n" + auth + "Connection: Upgrade\r\nUpgrade: raw-pipe\r\n\r\n", status: 400},
		{name: "WebSocket without a key", tunnel: "{A}", req: "GET /api/items/1 HTTP/1.1\r\nHost: {A}\r\n" + auth + "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n", status: 400},
		{name: "WebSocket that the origin does not accept", tunnel: "{A}", req: "GET /api/items/1 HTTP/1.1\r\nHost: {A}\r\n" + auth + "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", status: 200, reach: "A", path: "/api/items/1"},

		// Method overrides and underscored twins of stripped headers are dropped (issue 9).
		{name: "method override headers", tunnel: "{A}", req: "POST /api/items/8 HTTP/1.1\r\nHost: {A}\r\n" + auth + "X-HTTP-Method-Override: DELETE\r\nX-HTTP-Method: DELETE\r\nX-Method-Override: DELETE\r\nX-Original-URL: /api/admin/users\r\nX-Rewrite-URL: /api/admin/users\r\nContent-Length: 0\r\n\r\n", status: 200, reach: "A", path: "/api/items/8"},
		{name: "method override in the query", tunnel: "{A}", req: "POST /api/echo?_method=DELETE HTTP/1.1\r\nHost: {A}\r\n" + auth + "Content-Length: 0\r\n\r\n", status: 400},
		{name: "underscored header twins", tunnel: "{A}", req: "GET /api/items/9 HTTP/1.1\r\nHost: {A}\r\n" + auth + "X_Forwarded_For: 6.6.6.6\r\nProxy_Authorization: Bearer {S}\r\nX_Api_Key: x\r\n\r\n", status: 200, reach: "A", path: "/api/items/9"},

		// The origin reflects the request headers, the injected token among them: the client reads it masked.
		{name: "origin reflects the injected token", tunnel: "{A}", req: get("/api/headers"), status: 200, reach: "A", path: "/api/headers"},
		{name: "TRACE is not covered by the allowed methods", tunnel: "{A}", req: "TRACE /api/items/1 HTTP/1.1\r\nHost: {A}\r\n" + auth + "\r\n", status: 403},

		// Credential confusion: alpha's credential never opens beta.
		{name: "bearer of target A for target B", tunnel: "{B}", req: "GET /api/items/1 HTTP/1.1\r\nHost: {B}\r\n" + auth + "\r\n", status: 403},
		{name: "CONNECT Basic of target A for target B", tunnel: "{B}", connectAuth: basicFor(c), req: "GET /api/items/1 HTTP/1.1\r\nHost: {B}\r\n\r\n", status: 403},
		{name: "CONNECT Bearer of target A for target B", tunnel: "{B}", connectAuth: "Bearer {S}", req: "GET /api/items/1 HTTP/1.1\r\nHost: {B}\r\n\r\n", status: 403},
		{name: "absolute-form Proxy-Authorization of A for an unknown host", req: "GET http://127.0.0.1:1/api/items/1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\nProxy-Authorization: Bearer {S}\r\n\r\n", status: 403},
		{name: "CONNECT Basic with the wrong id", tunnel: "{A}", connectAuth: basicFor(cred{ID: "00000000-0000-0000-0000-000000000000", Secret: c.Secret}), req: "GET /api/items/1 HTTP/1.1\r\nHost: {A}\r\n\r\n", status: 407},

		// A secret anywhere but a credential header authenticates nothing.
		{name: "secret in the query string", tunnel: "{A}", req: "GET /api/items/1?access_token={S} HTTP/1.1\r\nHost: {A}\r\n\r\n", status: 401},
		{name: "secret as a cookie", tunnel: "{A}", req: "GET /api/items/1 HTTP/1.1\r\nHost: {A}\r\nCookie: token={S}\r\n\r\n", status: 401},
		{name: "secret in a custom header", tunnel: "{A}", req: "GET /api/items/1 HTTP/1.1\r\nHost: {A}\r\nX-Api-Key: {S}\r\n\r\n", status: 401},

		// Resource exhaustion (issue 9; the floods themselves are in dos_test.go): a tunnel nobody can serve is
		// refused before a leaf is minted for it.
		{name: "CONNECT to a host no target serves", tunnel: "unserved.e2e.test:443", req: get("/api/items/1"), status: 403},
		{name: "CONNECT to a served host on another port", tunnel: "127.0.0.1:1", req: get("/api/items/1"), status: 403},
		{name: "CONNECT to a NAT target host by its address", tunnel: "127.0.0.1:443", req: get("/api/items/1"), status: 403},
	}
	origins := map[string]*origin{"A": f.https, "P": f.http, "B": f.other}
	for _, a := range cases {
		t.Run(a.name, func(t *testing.T) {
			for _, o := range origins {
				o.Reset()
			}
			resp, body, err := fxSend(t, f, c, a)
			switch {
			case a.status == 0:
				if err == nil {
					t.Errorf("want the TLS handshake refused, got %d %s", resp.StatusCode, body)
				}
			case err != nil:
				t.Fatalf("want %d, got error %v", a.status, err)
			case resp.StatusCode != a.status:
				t.Errorf("status %d, want %d: %s", resp.StatusCode, a.status, body)
			case a.status >= 400 && !strings.Contains(body, `"error_code"`):
				t.Errorf("refusal without a JSON error body: %q", body)
			}
			if resp != nil && a.status == 407 && resp.Header.Get("Proxy-Authenticate") == "" {
				t.Errorf("407 without Proxy-Authenticate")
			}
			noSecret(t, "the answer", body, c.Secret, alphaToken, betaToken)
			if resp != nil {
				var h strings.Builder
				resp.Header.Write(&h)
				noSecret(t, "the answer's header", h.String(), c.Secret, alphaToken, betaToken)
			}
			if a.status == 403 && (!strings.Contains(body, "request refused by policy") || !strings.Contains(body, `"request_id":"`) ||
				strings.Contains(body, "endpoint") || resp.Header.Get("X-Request-Id") == "") {
				t.Errorf("denial is not the neutral refusal with a request id: %s", body)
			}
			for name, o := range origins {
				got := o.Requests()
				if name != a.reach {
					if len(got) != 0 {
						t.Errorf("origin %s received %d requests, want none: %+v", name, len(got), got)
					}
					continue
				}
				if len(got) != 1 {
					t.Fatalf("origin %s received %d requests, want 1: %+v", name, len(got), got)
				}
				if got[0].Path != a.path {
					t.Errorf("origin %s saw path %q, want exactly %q", name, got[0].Path, a.path)
				}
				checkInjected(t, got[0], alphaToken, c.Secret)
				for name := range got[0].Header {
					if l := strings.ToLower(name); strings.Contains(l, "_") || strings.Contains(l, "method") || strings.HasSuffix(l, "-url") || l == "http2-settings" {
						t.Errorf("origin got header %s: %q", name, got[0].Header[name])
					}
				}
				for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip"} {
					if v := got[0].Header.Get(h); strings.Contains(v, "6.6.6.6") {
						t.Errorf("origin got the client's %s: %q", h, v)
					}
				}
			}
		})
	}

	// The valid chunked body arrives whole, with Content-Length framing.
	t.Run("chunked body content", func(t *testing.T) {
		f.https.Reset()
		a := cases[len(cases)-1]
		for _, x := range cases {
			if strings.HasPrefix(x.name, "valid chunked") {
				a = x
			}
		}
		if _, _, err := fxSend(t, f, c, a); err != nil {
			t.Fatal(err)
		}
		s := only(t, f.https)
		if s.Body != "hi" || s.Header.Get("Transfer-Encoding") != "" {
			t.Errorf("origin got body %q, TE %q", s.Body, s.Header.Get("Transfer-Encoding"))
		}
	})
}
