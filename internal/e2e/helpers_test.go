package e2e_test

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testca"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

const (
	usersAPI = "/local-user-store/api/v1"
	rolesAPI = "/role-store/api/v1"
	proxyAPI = "/api-proxy/api/v1"
	connsAPI = "/connection-manager/api/v1"

	userPassword = "User-pass-e2e-1234"

	// natHTTPSName and natHTTPName resolve nowhere; only Gatehouse's nat_target_host makes them reachable.
	natHTTPSName = "api.e2e.test"
	natHTTPName  = "plain.e2e.test"
)

// testCA is the origins' CA (internal/testca); targets trust it through tls_trust_anchors, so the upstream TLS
// check is real.
type testCA struct {
	*testca.CA
	key *ecdsa.PrivateKey
	pem string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca := testca.New(t, "e2e origin CA")
	return &testCA{CA: ca, key: ca.Key, pem: string(ca.PEM)}
}

// leaf issues a server certificate for 127.0.0.1, localhost and natHTTPSName.
func (ca *testCA) leaf(t *testing.T) tls.Certificate {
	t.Helper()
	return ca.Server(t, "localhost", natHTTPSName, "127.0.0.1").TLS
}

// seen is one request as an origin received it.
type seen struct {
	Method string
	Path   string // escaped path as it arrived on the wire
	Query  string
	Host   string
	Proto  string
	Header http.Header
	Body   string
}

// origin is an upstream API on loopback that records every request it receives.
//
// It answers JSON with a few headers worth redacting; /echo... returns the request body, /big... returns
// bigBody bytes, and /secret-echo returns the request's headers in the body (so a trail could leak them).
type origin struct {
	srv      *httptest.Server
	HostPort string // 127.0.0.1:port
	URL      string // scheme://127.0.0.1:port

	mu   sync.Mutex
	reqs []seen
}

const bigBody = 200 << 10

func startOrigin(t *testing.T, cert *tls.Certificate) *origin {
	t.Helper()
	o := &origin{}
	o.srv = httptest.NewUnstartedServer(http.HandlerFunc(o.serve))
	if cert != nil {
		o.srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
		o.srv.EnableHTTP2 = true
		o.srv.StartTLS()
	} else {
		o.srv.Start()
	}
	t.Cleanup(o.srv.Close)
	o.URL = o.srv.URL
	o.HostPort = o.srv.Listener.Addr().String()
	return o
}

func (o *origin) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	o.mu.Lock()
	o.reqs = append(o.reqs, seen{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Host: r.Host,
		Proto: r.Proto, Header: r.Header.Clone(), Body: string(body)})
	o.mu.Unlock()
	w.Header().Set("Set-Cookie", "origin-session=cookie-value-42; Path=/")
	w.Header().Set("X-Origin", "e2e")
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/echo"):
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		w.WriteHeader(http.StatusCreated)
		w.Write(body)
	case strings.HasPrefix(r.URL.Path, "/api/big"):
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(strings.Repeat("b", bigBody)))
	case r.URL.Path == "/api/slow":
		// Hold the request open until Gatehouse gives up on it (or a bound passes), to test aborting.
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		w.Write([]byte("slow"))
	case r.URL.Path == "/api/headers":
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r.Header)
	default:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"origin":"e2e","method":%q,"path":%q}`, r.Method, r.URL.Path)
	}
}

// Requests returns what the origin received so far.
func (o *origin) Requests() []seen {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]seen(nil), o.reqs...)
}

// Reset forgets what the origin received.
func (o *origin) Reset() {
	o.mu.Lock()
	o.reqs = nil
	o.mu.Unlock()
}

// fixture is a Gatehouse with a user holding a role, and three origins: "https" and "http" behind the audited
// target alpha, "other" behind target beta (whose endpoints the same role may also use).
type fixture struct {
	t      *testing.T
	gh     *testserver.Instance
	adm    string
	ca     *testCA
	https  *origin
	http   *origin
	other  *origin
	roleID string
	userID string
	alpha  string // target id
	beta   string // target id

	proxyCAFile string         // the /conf CA chain, as a file for curl and python
	proxyPool   *x509.CertPool // the same chain, for Go clients
}

// Target credentials, which clients must never see and origins must always get.
const (
	alphaToken = "alpha-upstream-token-0123456789"
	betaToken  = "beta-upstream-token-9876543210"
)

// in returns the fixture reporting to t, for use inside a subtest.
func (f *fixture) in(t *testing.T) *fixture {
	c := *f
	c.t = t
	return &c
}

func newFixture(t *testing.T, opts testserver.Options) *fixture {
	t.Helper()
	f := &fixture{t: t, ca: newTestCA(t)}
	f.gh = testserver.Start(t, opts)
	f.adm = f.gh.AdminToken()
	httpsCert, otherCert := f.ca.leaf(t), f.ca.leaf(t)
	f.https, f.http, f.other = startOrigin(t, &httpsCert), startOrigin(t, nil), startOrigin(t, &otherCert)

	f.roleID = f.gh.Create(rolesAPI+"/roles", f.adm, map[string]any{"name": "api-users", "permissions": []string{"api-proxy-credentials-own"}})
	f.userID = f.gh.Create(usersAPI+"/users", f.adm, map[string]any{"username": "alice", "password": userPassword, "enabled": true})
	f.setRoles(f.roleID)

	f.alpha = f.gh.Create(proxyAPI+"/api-targets", f.adm, map[string]any{
		"name": "alpha", "roles": []map[string]string{{"id": f.roleID}}, "audit_enabled": true,
		"tls_trust_anchors": f.ca.pem,
		"authorized_endpoints": []map[string]any{
			{"host": f.https.HostPort, "protocols": []string{"https"}, "methods": []string{"GET", "POST"}, "paths": []string{"/api/**"}},
			{"host": f.http.HostPort, "protocols": []string{"http"}, "methods": []string{"GET", "POST"}, "paths": []string{"/api/**"}},
			// Names for clients that never proxy loopback addresses (Go's ProxyFromEnvironment): Gatehouse connects
			// to the origin on 127.0.0.1 while Host and SNI stay as the client asked.
			{"host": f.natHTTPS(), "protocols": []string{"https"}, "methods": []string{"GET", "POST"}, "paths": []string{"/api/**"}, "nat_target_host": "127.0.0.1"},
			{"host": f.natHTTP(), "protocols": []string{"http"}, "methods": []string{"GET", "POST"}, "paths": []string{"/api/**"}, "nat_target_host": "127.0.0.1"},
		},
		"unauthorized_endpoints": []map[string]any{
			{"host": f.https.HostPort, "protocols": []string{"https"}, "methods": []string{"*"}, "paths": []string{"/api/admin/**"}},
		},
		"target_credential": map[string]any{"type": "token", "bearer_token": alphaToken},
	})
	f.beta = f.gh.Create(proxyAPI+"/api-targets", f.adm, map[string]any{
		"name": "beta", "roles": []map[string]string{{"id": f.roleID}}, "tls_trust_anchors": f.ca.pem,
		"authorized_endpoints": []map[string]any{
			{"host": f.other.HostPort, "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/**"}},
		},
		"target_credential": map[string]any{"type": "token", "bearer_token": betaToken},
	})

	// The client side is configured exactly as the issue says: proxy address, the CA from /conf, the secret.
	var conf struct {
		Addresses []string `json:"addresses"`
		Chain     string   `json:"ca_certificate_chain"`
	}
	f.gh.JSON("GET", proxyAPI+"/conf", f.gh.Token("alice", userPassword), nil, http.StatusOK, &conf)
	if conf.Chain == "" || len(conf.Addresses) == 0 || conf.Addresses[0] != f.gh.Server.ProxyAddr() {
		t.Fatalf("conf: %+v, proxy at %s", conf, f.gh.Server.ProxyAddr())
	}
	f.proxyCAFile = filepath.Join(t.TempDir(), "gatehouse-ca.pem")
	if err := os.WriteFile(f.proxyCAFile, []byte(conf.Chain), 0o600); err != nil {
		t.Fatal(err)
	}
	f.proxyPool = x509.NewCertPool()
	if !f.proxyPool.AppendCertsFromPEM([]byte(conf.Chain)) {
		t.Fatalf("conf chain holds no certificate: %q", conf.Chain)
	}
	return f
}

// natHTTPS and natHTTP are the names (with the origins' ports) that alpha maps to 127.0.0.1.
func (f *fixture) natHTTPS() string { return natHTTPSName + ":" + port(f.https.HostPort) }
func (f *fixture) natHTTP() string  { return natHTTPName + ":" + port(f.http.HostPort) }

func port(hostPort string) string {
	_, p, _ := net.SplitHostPort(hostPort)
	return p
}

func (f *fixture) setRoles(ids ...string) {
	f.t.Helper()
	refs := make([]map[string]string, 0, len(ids))
	for _, id := range ids {
		refs = append(refs, map[string]string{"id": id})
	}
	f.gh.JSON("PUT", rolesAPI+"/users/"+f.userID+"/roles", f.adm, refs, http.StatusOK, nil)
}

// cred is a proxy credential and its secret.
type cred struct {
	ID, Secret string
}

func (c cred) path(userID string) string {
	return proxyAPI + "/users/" + userID + "/client-credentials/" + c.ID
}

// credential creates a credential of alice's for a target; extra adds or overrides fields.
func (f *fixture) credential(targetID, name string, extra map[string]any) cred {
	f.t.Helper()
	body := map[string]any{"name": name, "target": map[string]string{"id": targetID}}
	for k, v := range extra {
		body[k] = v
	}
	c := cred{ID: f.gh.Create(proxyAPI+"/users/"+f.userID+"/client-credentials", f.adm, body)}
	// Only the owner can read a credential's secret.
	status, secret := f.gh.Do("GET", c.path(f.userID)+"/secret", f.gh.Token("alice", userPassword), nil)
	if status != http.StatusOK || !strings.HasPrefix(string(secret), "ghp_") {
		f.t.Fatalf("secret of %s: %d %q", name, status, secret)
	}
	c.Secret = string(secret)
	return c
}

// proxyURL is the proxy as clients configure it.
func (f *fixture) proxyURL() *url.URL {
	return &url.URL{Scheme: "http", Host: f.gh.Server.ProxyAddr()}
}

// client is a Go client through the proxy that trusts only the proxy CA; h2 lets it negotiate HTTP/2 with the
// intercepting proxy.
func (f *fixture) client(h2 bool) *http.Client {
	tr := &http.Transport{
		Proxy:             http.ProxyURL(f.proxyURL()),
		TLSClientConfig:   &tls.Config{RootCAs: f.proxyPool},
		ForceAttemptHTTP2: h2,
	}
	f.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// get sends one request through the proxy with the secret as the Authorization bearer and returns status and body.
func (f *fixture) do(c *http.Client, method, rawURL, secret, body string) (int, string) {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	resp, err := c.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatalf("%s %s: read: %v", method, rawURL, err)
	}
	return resp.StatusCode, string(b)
}

// connection is the part of a connection-manager entry the tests look at.
type connection struct {
	ID                string `json:"id"`
	Type              string `json:"type"`
	User              struct{ ID, Name string }
	Target            struct{ ID, Name string }
	Credential        struct{ ID, Name string }
	ClientAddress     string `json:"client_address"`
	Status            string `json:"status"`
	TerminationReason string `json:"termination_reason"`
	Requests          int64  `json:"requests"`
	BytesIn           int64  `json:"bytes_in"`
	BytesOut          int64  `json:"bytes_out"`
	AuditEnabled      bool   `json:"audit_enabled"`
}

func (f *fixture) connections() []connection {
	f.t.Helper()
	var list struct {
		Count int          `json:"count"`
		Items []connection `json:"items"`
	}
	f.gh.JSON("GET", connsAPI+"/connections?limit=100", f.adm, nil, http.StatusOK, &list)
	return list.Items
}

// waitConnection polls the connection list (bounded) until a session of the credential satisfies ok.
func (f *fixture) waitConnection(credID string, ok func(connection) bool) connection {
	f.t.Helper()
	var last []connection
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		last = f.connections()
		for _, c := range last {
			if c.Credential.ID == credID && ok(c) {
				return c
			}
		}
	}
	f.t.Fatalf("no connection of credential %s as expected; list: %+v", credID, last)
	return connection{}
}

// session returns the id of the credential's open session.
func (f *fixture) session(credID string) string {
	f.t.Helper()
	return f.waitConnection(credID, func(c connection) bool { return c.Status == "CONNECTED" }).ID
}

// checkInjected asserts the origin got exactly the target credential and never the user's secret or a proxy
// credential header.
func checkInjected(t *testing.T, s seen, want, secret string) {
	t.Helper()
	if got := s.Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer "+want {
		t.Errorf("origin got Authorization %q, want the injected target token", got)
	}
	if h := s.Header.Get("Proxy-Authorization"); h != "" {
		t.Errorf("origin got Proxy-Authorization %q", h)
	}
	noSecret(t, "the origin's request", fmt.Sprint(s.Header)+s.Path+s.Query+s.Body, secret)
}

// noSecret fails when text holds any of the secrets.
func noSecret(t *testing.T, where, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s contains the secret %.8s…", where, s)
		}
	}
}

// only returns the single request an origin got, failing otherwise.
func only(t *testing.T, o *origin) seen {
	t.Helper()
	r := o.Requests()
	if len(r) != 1 {
		t.Fatalf("origin got %d requests, want 1: %+v", len(r), r)
	}
	return r[0]
}
