package e2e_test

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// The configuration API collections the policy tests write.
const (
	cfgConnections = "/api/configuration/http/connections"
	cfgChannels    = "/api/configuration/http/channel_policies"
	cfgSettings    = "/api/configuration/http/settings_policies"
	cfgAudit       = "/api/configuration/policies/audit_policies"
	cfgUserlists   = "/api/configuration/policies/userlists"
)

// cfgAdmin is an administrator of the configuration API as the reference scripts it with curl: Basic login once,
// then the session_id cookie from a cookie jar, changes staged in a transaction and committed.
type cfgAdmin struct {
	t  *testing.T
	gh *testserver.Instance
	c  *http.Client
}

func newCfgAdmin(t *testing.T, gh *testserver.Instance) *cfgAdmin {
	t.Helper()
	return newCfgAdminAs(t, gh, "admin", testserver.AdminPassword)
}

// newCfgAdminAs is newCfgAdmin logged in as another user.
func newCfgAdminAs(t *testing.T, gh *testserver.Instance, username, password string) *cfgAdmin {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := gh.Client.Transport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	a := &cfgAdmin{t: t, gh: gh, c: &http.Client{Jar: jar, Transport: tr, Timeout: 30 * time.Second}}
	req, _ := http.NewRequest("GET", gh.URL+"/api/authentication", nil)
	req.SetBasicAuth(username, password)
	resp, err := a.c.Do(req)
	if err != nil {
		t.Fatalf("configuration API login: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("configuration API login: %d", resp.StatusCode)
	}
	return a
}

// call sends body as JSON and fails unless the answer is want; it returns the answer's body.
func (a *cfgAdmin) call(method, path string, body any, want int) []byte {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.gh.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		a.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	return b
}

// create POSTs an object into a collection and returns its key.
func (a *cfgAdmin) create(collection string, body map[string]any) string {
	a.t.Helper()
	var out struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(a.call("POST", collection, body, http.StatusCreated), &out); err != nil || out.Key == "" {
		a.t.Fatalf("POST %s: key %q, %v", collection, out.Key, err)
	}
	return out.Key
}

// body returns an object's body as the API shows it (committed or staged in this session's transaction).
func (a *cfgAdmin) body(path string) map[string]any {
	a.t.Helper()
	var out struct {
		Body map[string]any `json:"body"`
	}
	if err := json.Unmarshal(a.call("GET", path, nil, http.StatusOK), &out); err != nil {
		a.t.Fatal(err)
	}
	return out.Body
}

// edit replaces an object's body with what change makes of the current one.
func (a *cfgAdmin) edit(path string, change func(body map[string]any)) {
	a.t.Helper()
	b := a.body(path)
	change(b)
	a.call("PUT", path, b, http.StatusOK)
}

func (a *cfgAdmin) commit() {
	a.t.Helper()
	a.call("PUT", "/api/transaction", map[string]string{"status": "commit"}, http.StatusOK)
}

// setDefaultActive turns the built-in connection policy (key -1, which admits everything) on or off.
func (a *cfgAdmin) setDefaultActive(active bool) {
	a.t.Helper()
	a.edit(cfgConnections+"/-1", func(b map[string]any) { b["active"] = active })
}

// connectionPolicy creates a connection policy; policies maps fields of "policies" (channel_policy, settings,
// audit_policy) to keys, the rest keep the built-in defaults.
func (a *cfgAdmin) connectionPolicy(name string, clients, targets []string, ports []int, policies map[string]string) string {
	a.t.Helper()
	if ports == nil {
		ports = []int{}
	}
	body := map[string]any{"name": name, "active": true,
		"network": map[string]any{"clients": clients, "targets": targets, "ports": ports}}
	if len(policies) > 0 {
		p := map[string]any{"channel_policy": "-1", "settings": "-1", "audit_policy": "-1", "authentication_policy": "-1"}
		for k, v := range policies {
			p[k] = v
		}
		body["policies"] = p
	}
	return a.create(cfgConnections, body)
}

// tunnel is one client connection to the proxy: a CONNECT tunnel with TLS to the intercepting proxy inside, so
// every request on it reuses the connection the policy admitted.
type tunnel struct {
	t      *testing.T
	conn   net.Conn
	br     *bufio.Reader
	target string // the CONNECT authority, also the Host of the requests
}

// dialProxy connects to the proxy listener, from the local address from when it is not "".
func dialProxy(t *testing.T, f *fixture, from string) net.Conn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	conn, err := d.Dial("tcp", f.gh.Server.ProxyAddr())
	if err != nil {
		t.Fatalf("dial proxy from %q: %v", from, err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	return conn
}

// connect opens a tunnel to authority from the local address from. It returns the CONNECT status; the tunnel is
// nil unless the proxy answered 200.
func connect(t *testing.T, f *fixture, from, authority string) (int, *tunnel) {
	t.Helper()
	conn := dialProxy(t, f, from)
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", authority, authority)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil {
		t.Fatalf("CONNECT %s from %q: %v", authority, from, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		conn.Close()
		return resp.StatusCode, nil
	}
	host, _, err := net.SplitHostPort(authority)
	if err != nil {
		t.Fatal(err)
	}
	// Bytes buffered after the CONNECT answer would be the start of TLS; the proxy sends none before the hello.
	if br.Buffered() > 0 {
		t.Fatalf("CONNECT %s: %d unexpected bytes after the answer", authority, br.Buffered())
	}
	tc := tls.Client(conn, &tls.Config{RootCAs: f.proxyPool, ServerName: host, NextProtos: []string{"http/1.1"}})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS through the tunnel to %s: %v", authority, err)
	}
	return http.StatusOK, &tunnel{t: t, conn: tc, br: bufio.NewReader(tc), target: authority}
}

// mustConnect opens a tunnel and fails unless the proxy admits it.
func mustConnect(t *testing.T, f *fixture, from, authority string) *tunnel {
	t.Helper()
	st, tn := connect(t, f, from, authority)
	if st != http.StatusOK {
		t.Fatalf("CONNECT %s from %q: %d, want 200", authority, from, st)
	}
	return tn
}

// get sends one keep-alive request over the tunnel with the secret as bearer; extra adds request headers. It
// returns the status and the body.
func (tn *tunnel) get(path, secret string, extra ...string) (int, string) {
	tn.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, tn.target)
	if secret != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", secret)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", extra[i], extra[i+1])
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(tn.conn, b.String()); err != nil {
		tn.t.Fatalf("GET %s via %s: %v", path, tn.target, err)
	}
	resp, err := http.ReadResponse(tn.br, &http.Request{Method: "GET"})
	if err != nil {
		tn.t.Fatalf("GET %s via %s: %v", path, tn.target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil && resp.StatusCode != http.StatusSwitchingProtocols {
		tn.t.Fatalf("GET %s via %s: read: %v", path, tn.target, err)
	}
	return resp.StatusCode, string(body)
}

// upgrade asks for a WebSocket upgrade over the tunnel and returns the status; on 101 it checks that the
// connection now carries the origin's echo.
func (tn *tunnel) upgrade(path, secret string) int {
	tn.t.Helper()
	fmt.Fprintf(tn.conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", path, tn.target, secret)
	resp, err := http.ReadResponse(tn.br, &http.Request{Method: "GET"})
	if err != nil {
		tn.t.Fatalf("upgrade %s via %s: %v", path, tn.target, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if _, err := io.WriteString(tn.conn, "ping"); err != nil {
		tn.t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(tn.br, buf); err != nil || string(buf) != "ping" {
		tn.t.Fatalf("after 101 the origin echoed %q, %v", buf, err)
	}
	return resp.StatusCode
}

// plainGet sends one absolute-form http:// request (a connection of its own to the policy) from the local address
// from, and returns the status.
func plainGet(t *testing.T, f *fixture, from, rawURL, secret string) int {
	t.Helper()
	conn := dialProxy(t, f, from)
	defer conn.Close()
	host := strings.SplitN(strings.TrimPrefix(rawURL, "http://"), "/", 2)[0]
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", rawURL, host, secret)
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: "GET"})
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// wsOrigin is a TLS origin that speaks just enough WebSocket: an upgrade request gets 101 and an echo of the
// first four bytes; anything else gets a JSON answer. It records every request it receives.
type wsOrigin struct {
	HostPort string
	mu       sync.Mutex
	reqs     []string // "METHOD path upgrade=..."
}

func startWSOrigin(t *testing.T, f *fixture) *wsOrigin {
	t.Helper()
	o := &wsOrigin{}
	cert := f.ca.leaf(t)
	srv := startOriginHandler(t, &cert, func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.reqs = append(o.reqs, r.Method+" "+r.URL.Path+" upgrade="+r.Header.Get("Upgrade"))
		o.mu.Unlock()
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"origin":"ws"}`))
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		// A real WebSocket server answers the client's key; Gatehouse refuses a 101 that does not.
		sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")
		brw.Flush()
		buf := make([]byte, 4)
		if _, err := io.ReadFull(brw, buf); err == nil {
			conn.Write(buf)
		}
	})
	o.HostPort = srv
	return o
}

// Requests returns what the origin received so far.
func (o *wsOrigin) Requests() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.reqs...)
}

// startOriginHandler serves h over TLS (HTTP/1.1 only, so upgrades work) on loopback and returns host:port.
func startOriginHandler(t *testing.T, cert *tls.Certificate, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{*cert}, NextProtos: []string{"http/1.1"}}}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// userWithRole creates a user holding the given roles and a credential of theirs for a target, and returns the
// credential.
func userWithRole(t *testing.T, f *fixture, username, targetID string, roleIDs ...string) cred {
	t.Helper()
	id := f.gh.Create(usersAPI+"/users", f.adm, map[string]any{"username": username, "password": userPassword, "enabled": true})
	refs := make([]map[string]string, 0, len(roleIDs))
	for _, r := range roleIDs {
		refs = append(refs, map[string]string{"id": r})
	}
	f.gh.JSON("PUT", rolesAPI+"/users/"+id+"/roles", f.adm, refs, http.StatusOK, nil)
	c := cred{ID: f.gh.Create(proxyAPI+"/users/"+id+"/client-credentials", f.adm, map[string]any{"name": username + "-cred",
		"target": map[string]string{"id": targetID}})}
	st, secret := f.gh.Do("GET", c.path(id)+"/secret", f.gh.Token(username, userPassword), nil) // only the owner reads it
	if st != http.StatusOK {
		t.Fatalf("secret of %s: %d %s", username, st, secret)
	}
	c.Secret = string(secret)
	return c
}
