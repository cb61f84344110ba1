package proxy

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAttackCorpus sends ambiguous and mismatched requests as raw bytes,
// because Go's own client would never produce them, and checks that each is
// refused with 400 and that the counting origin received nothing.
func TestAttackCorpus(t *testing.T) {
	st := newSetup(t, false, nil, nil)
	host := st.origin.hostPort()
	auth := "Authorization: Bearer " + userSecret + "\r\n"
	for _, tc := range []struct {
		name string
		// tunnel sends the bytes inside a plain CONNECT tunnel to the
		// origin; otherwise they go to the proxy port as absolute-form.
		tunnel bool
		raw    string
		want   int
	}{
		{"CL and TE", true, "POST /x HTTP/1.1\r\nHost: {H}\r\n" + auth + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE and CL", true, "POST /x HTTP/1.1\r\nHost: {H}\r\n" + auth + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", 400},
		{"duplicate equal CL", true, "POST /x HTTP/1.1\r\nHost: {H}\r\n" + auth + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400},
		{"differing CL", true, "POST /x HTTP/1.1\r\nHost: {H}\r\n" + auth + "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
		{"CL list", true, "POST /x HTTP/1.1\r\nHost: {H}\r\n" + auth + "Content-Length: 3, 3\r\n\r\nabc", 400},
		{"signed CL", true, "POST /x HTTP/1.1\r\nHost: {H}\r\n" + auth + "Content-Length: +3\r\n\r\nabc", 400},
		{"TE gzip chunked", true, "POST /x HTTP/1.1\r\nHost: {H}\r\n" + auth + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE identity", true, "POST /x HTTP/1.1\r\nHost: {H}\r\n" + auth + "Transfer-Encoding: identity\r\n\r\n", 400},
		// net/http ignores Transfer-Encoding on HTTP/1.0 and would read no body; checkHead reads a chunked one.
		// crossCheck refuses what the two parsers frame differently (the case FuzzCrossCheck found).
		{"TE chunked on HTTP/1.0", true, "POST /x HTTP/1.0\r\nHost: {H}\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n", 400},
		{"TE chunked on HTTP/1.0, absolute form", false, "POST http://{H}/x HTTP/1.0\r\nHost: {H}\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n", 400},
		{"TE twice", true, "POST /x HTTP/1.1\r\nHost: {H}\r\n" + auth + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE with space before colon", true, "POST /x HTTP/1.1\r\nHost: {H}\r\n" + auth + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE vertical tab", true, "POST /x HTTP/1.1\r\nHost: {H}\r\n" + auth + "Transfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n", 400},
		{"obs-fold", true, "GET /x HTTP/1.1\r\nHost: {H}\r\n" + auth + "X-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n", 400},
		{"bare LF", true, "GET /x HTTP/1.1\nHost: H\n" + strings.TrimSuffix(auth, "\r\n") + "\n\r\n\r\n", 400},
		{"bad chunk size", true, "POST /x HTTP/1.1\r\nHost: {H}\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400},
		{"chunk longer than size", true, "POST /x HTTP/1.1\r\nHost: {H}\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n0\r\n\r\n", 400},
		{"bare LF in chunk", true, "POST /x HTTP/1.1\r\nHost: {H}\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", 400},
		{"Host differs from CONNECT", true, "GET /x HTTP/1.1\r\nHost: evil.example\r\n" + auth + "\r\n", 400},
		{"Host port differs from CONNECT", true, "GET /x HTTP/1.1\r\nHost: 127.0.0.1:1\r\n" + auth + "\r\n", 400},
		{"two Hosts", true, "GET /x HTTP/1.1\r\nHost: {H}\r\nHost: evil.example\r\n" + auth + "\r\n", 400},
		{"no Host", true, "GET /x HTTP/1.1\r\n" + auth + "\r\n", 400},
		{"absolute URI differs from Host in tunnel", true, "GET http://evil.example/x HTTP/1.1\r\nHost: {H}\r\n" + auth + "\r\n", 400},
		{"absolute URI differs from Host", false, "GET http://{H}/x HTTP/1.1\r\nHost: evil.example\r\n" + auth + "\r\n", 400},
		{"absolute URI userinfo", false, "GET http://user@{H}/x HTTP/1.1\r\nHost: {H}\r\n" + auth + "\r\n", 400},
		// Dot segments inside the path are resolved and the resolved path is what is authorized and forwarded
		// (internal/e2e's attack corpus checks that against the real policy); climbing above the root is refused.
		{"dot segments above the root", true, "GET /public/../../admin HTTP/1.1\r\nHost: {H}\r\n" + auth + "\r\n", 400},
		{"encoded dot segments above the root", true, "GET /%2e%2e/admin HTTP/1.1\r\nHost: {H}\r\n" + auth + "\r\n", 400},
		{"encoded slash", true, "GET /a%2Fb HTTP/1.1\r\nHost: {H}\r\n" + auth + "\r\n", 400},
		{"backslash", true, "GET /a\\..\\b HTTP/1.1\r\nHost: {H}\r\n" + auth + "\r\n", 400},
		{"overlong UTF-8 dots", true, "GET /api/%C0%AE%C0%AE/admin HTTP/1.1\r\nHost: {H}\r\n" + auth + "\r\n", 400},
		{"fullwidth solidus", true, "GET /api/..%EF%BC%8Fadmin HTTP/1.1\r\nHost: {H}\r\n" + auth + "\r\n", 400},
		{"fraction slash", true, "GET /api/..%E2%81%84admin HTTP/1.1\r\nHost: {H}\r\n" + auth + "\r\n", 400},
		{"one-dot leaders", true, "GET /api/%E2%80%A4%E2%80%A4/admin HTTP/1.1\r\nHost: {H}\r\n" + auth + "\r\n", 400},
		{"three dots", true, "GET /api/.../admin HTTP/1.1\r\nHost: {H}\r\n" + auth + "\r\n", 400},
		{"h2c upgrade", true, "GET /x HTTP/1.1\r\nHost: {H}\r\n" + auth + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", 400},
		{"upgrade on absolute form", false, "GET http://{H}/x HTTP/1.1\r\nHost: {H}\r\n" + auth + "Connection: Upgrade\r\nUpgrade: raw\r\n\r\n", 400},
		{"asterisk form", true, "OPTIONS * HTTP/1.1\r\nHost: {H}\r\n" + auth + "\r\n", 400},
		// A body on a CONNECT would become the tunnel's first bytes, unauthorized.
		{"CONNECT with a length", false, "CONNECT {H} HTTP/1.1\r\nHost: {H}\r\n" + auth + "Content-Length: 5\r\n\r\nhello", 400},
		{"CONNECT chunked", false, "CONNECT {H} HTTP/1.1\r\nHost: {H}\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400},
		{"CONNECT in tunnel", true, "CONNECT {H} HTTP/1.1\r\nHost: {H}\r\n" + auth + "\r\n", 400},
		{"HTTP/0.9 style", true, "GET /x\r\n\r\n", 400},
		{"head too large", true, "GET /x HTTP/1.1\r\nHost: {H}\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n", 431},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := st.origin.hits.Load()
			var conn net.Conn
			var br *bufio.Reader
			if tc.tunnel {
				conn, br = plainTunnel(t, st.addr, host)
			} else {
				c, err := net.Dial("tcp", st.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				conn, br = c, bufio.NewReader(c)
			}
			resp := rawExchange(t, conn, br, strings.ReplaceAll(tc.raw, "{H}", host))
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
			var e errorBody
			if err := json.Unmarshal(body, &e); err != nil || e.ErrorCode == "" {
				t.Errorf("body %q is not a JSON error", body)
			}
			// Give a wrongly forwarded request time to arrive before
			// counting.
			time.Sleep(20 * time.Millisecond)
			if n := st.origin.hits.Load() - before; n != 0 {
				t.Errorf("origin received %d requests, want none", n)
			}
		})
	}
}

// TestChunkedForwardedWithLength checks the good case of the corpus: a valid
// chunked body arrives whole, framed by Content-Length.
func TestChunkedForwardedWithLength(t *testing.T) {
	var gotTE []string
	var gotCL int64
	st := newSetup(t, false, func(w http.ResponseWriter, r *http.Request) {
		gotTE, gotCL = r.TransferEncoding, r.ContentLength
	}, nil)
	conn, br := plainTunnel(t, st.addr, st.origin.hostPort())
	resp := rawExchange(t, conn, br, "POST /x HTTP/1.1\r\nHost: "+st.origin.hostPort()+"\r\nAuthorization: Bearer "+userSecret+
		"\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if string(st.origin.bodies[0]) != "abcde" || len(gotTE) != 0 || gotCL != 5 {
		t.Errorf("origin got body %q TE %v CL %d, want abcde framed by Content-Length 5", st.origin.bodies[0], gotTE, gotCL)
	}
}

// TestStrippedRequestHeaders pins issue 9's header weaknesses: method-override headers would let a GET- or
// POST-only endpoint run a DELETE at origins that honour them, and a header spelled with "_" instead of "-"
// reaches CGI, WSGI and PHP origins as the header it imitates (X_Api_Key as X-Api-Key, Proxy_Authorization as
// Proxy-Authorization). None of them may reach the target; ordinary headers still do.
func TestStrippedRequestHeaders(t *testing.T) {
	st := newSetup(t, false, nil, func(_ *Server, tg *Target) {
		tg.Credential = TargetCredential{Type: CredentialHeader, HeaderName: "X-Api-Key", HeaderValue: targetToken}
	})
	conn, br := plainTunnel(t, st.addr, st.origin.hostPort())
	resp := rawExchange(t, conn, br, "POST /api/items HTTP/1.1\r\nHost: "+st.origin.hostPort()+"\r\nAuthorization: Bearer "+userSecret+"\r\n"+
		"X-HTTP-Method-Override: DELETE\r\nX-HTTP-Method: DELETE\r\nX-Method-Override: DELETE\r\nx-http-method-override: PUT\r\n"+
		"X_Api_Key: client-chosen\r\nX_Forwarded_For: 6.6.6.6\r\nProxy_Authorization: Basic Zm9vOmJhcg==\r\nX-Custom_Header: 1\r\n"+
		"X-Original-URL: /api/admin\r\nX-Rewrite-URL: /api/admin\r\nX-Original-Method: DELETE\r\n"+
		"X-Request-Tag: kept\r\nContent-Length: 2\r\n\r\nhi")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	h := st.origin.lastHeader()
	for name := range h {
		lower := strings.ToLower(name)
		if strings.Contains(lower, "_") || strings.Contains(lower, "method") || strings.Contains(lower, "url") {
			t.Errorf("origin received %s: %q", name, h[name])
		}
	}
	if got := h.Values("X-Api-Key"); len(got) != 1 || got[0] != targetToken {
		t.Errorf("origin got X-Api-Key %q, want only the injected one", got)
	}
	if h.Get("X-Request-Tag") != "kept" {
		t.Errorf("an ordinary header was dropped: %v", h)
	}
}

// TestMethodOverrideInQuery: _method (and the override header names) in the query would make an origin with a
// query getter run another method than the one authorized; such requests are refused before they reach it.
func TestMethodOverrideInQuery(t *testing.T) {
	st := newSetup(t, false, nil, nil)
	host := st.origin.hostPort()
	conn, br := plainTunnel(t, st.addr, host)
	for _, q := range []string{"_method=DELETE", "a=1&_method=PUT", "_METHOD=delete", "%5Fmethod=DELETE", "%5f%6d%65%74%68%6f%64=DELETE",
		"x;_method=DELETE", "X-HTTP-Method-Override=DELETE", "x-method-override=PATCH", "+_method+=DELETE"} {
		resp := rawExchange(t, conn, br, "POST /api/items?"+q+" HTTP/1.1\r\nHost: "+host+"\r\nAuthorization: Bearer "+userSecret+"\r\nContent-Length: 0\r\n\r\n")
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("?%s: status %d, want 400", q, resp.StatusCode)
		}
	}
	if n := st.origin.hits.Load(); n != 0 {
		t.Errorf("origin got %d requests", n)
	}
	resp := rawExchange(t, conn, br, "GET /api/items?method=x&my_method=y HTTP/1.1\r\nHost: "+host+"\r\nAuthorization: Bearer "+userSecret+"\r\n\r\n")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("an ordinary query was refused: %d", resp.StatusCode)
	}
}

// TestMethodOverrideInBody: Rails, Laravel and Symfony take the method from a _method field of a POST body, so a
// POST-only endpoint would run a DELETE. Such a body is cut off before the field's value leaves the proxy; names
// that only end in _method, other methods and binary uploads pass.
func TestMethodOverrideInBody(t *testing.T) {
	st := newSetup(t, false, nil, nil)
	host := st.origin.hostPort()
	mp := "--XyZ\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--XyZ--\r\n"
	for _, tc := range []struct {
		name, method, ctype, body string
		chunked                   bool
		want                      int
	}{
		{"form", "POST", "application/x-www-form-urlencoded", "_method=DELETE", false, 400},
		{"form later field", "POST", "application/x-www-form-urlencoded", "a=1&_method=DELETE", false, 400},
		{"form encoded name", "POST", "application/x-www-form-urlencoded", "%5Fmethod=DELETE", false, 400},
		{"form partly encoded name", "POST", "application/x-www-form-urlencoded", "_%6Dethod=DELETE", false, 400},
		{"form upper case", "POST", "application/x-www-form-urlencoded; charset=utf-8", "_METHOD=DELETE", false, 400},
		{"form after 100 KiB", "POST", "application/x-www-form-urlencoded", strings.Repeat("a=b&", 25600) + "_method=DELETE", false, 400},
		{"form chunked", "POST", "application/x-www-form-urlencoded", "_method=DELETE", true, 400},
		{"no content type", "POST", "", "_method=DELETE", false, 400},
		{"json", "POST", "application/json", `{"name":"x","_method":"DELETE"}`, false, 400},
		{"json escaped", "POST", "application/vnd.api+json", `{"\u005fmethod":"DELETE"}`, false, 400},
		{"multipart", "POST", "multipart/form-data; boundary=XyZ", mp, false, 400},
		{"name ending in _method", "POST", "application/json", `{"payment_method":"DELETE"}`, false, 200},
		{"form field ending in _method", "POST", "application/x-www-form-urlencoded", "my_method=DELETE", false, 200},
		{"binary upload", "POST", "application/octet-stream", "_method=DELETE", false, 200},
		{"PUT is not overridden", "PUT", "application/x-www-form-urlencoded", "_method=DELETE", false, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(st.origin.bodies)
			conn, br := plainTunnel(t, st.addr, host)
			head := tc.method + " /api/items HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + userSecret + "\r\n"
			if tc.ctype != "" {
				head += "Content-Type: " + tc.ctype + "\r\n"
			}
			body := tc.body
			if tc.chunked {
				head += "Transfer-Encoding: chunked\r\n"
				body = strconv.FormatInt(int64(len(body)), 16) + "\r\n" + body + "\r\n0\r\n\r\n"
			} else {
				head += "Content-Length: " + itoa(len(body)) + "\r\n"
			}
			resp := rawExchange(t, conn, br, head+"\r\n"+body)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			time.Sleep(20 * time.Millisecond) // let a cut-off request finish at the origin
			st.origin.mu.Lock()
			defer st.origin.mu.Unlock()
			for _, b := range st.origin.bodies[before:] {
				if tc.want == 400 && strings.Contains(string(b), "DELETE") {
					t.Errorf("origin received the override's value: %q", b)
				}
				if tc.want == 200 && string(b) != tc.body {
					t.Errorf("origin received %q, want %q", b, tc.body)
				}
			}
		})
	}
}
