package e2e_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
	"golang.org/x/net/http/httpproxy"
	"gopkg.in/yaml.v3"
)

// curl runs the real curl (no shell) and returns the body and the HTTP status of the last response; when the
// proxy refused the CONNECT (curl exits 56 with no response), the status is the CONNECT's and the body empty.
func curl(t *testing.T, args ...string) (string, int) {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl is required (scripts/test.sh installs it): %v", err)
	}
	full := append([]string{"--silent", "--show-error", "--max-time", "20", "--write-out", "\n%{http_code} %{http_connect}"}, args...)
	var stderr bytes.Buffer
	cmd := exec.Command(path, full...)
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), "http_proxy=", "https_proxy=", "HTTPS_PROXY=", "HTTP_PROXY=", "no_proxy=", "NO_PROXY=")
	out, runErr := cmd.Output()
	i := bytes.LastIndexByte(out, '\n')
	code, connect, _ := strings.Cut(string(out[i+1:]), " ")
	if code == "000" {
		code = connect
	}
	status, err := strconv.Atoi(code)
	if err != nil || status == 0 {
		t.Fatalf("curl %s: %v: %s (write-out %q)", strings.Join(args, " "), runErr, stderr.String(), out[i+1:])
	}
	return string(out[:i]), status
}

// TestCurl sends curl through the proxy as the README tells users to: the secret in the client's own
// Authorization header (HTTPS through CONNECT, and plain HTTP in absolute form), or as --proxy-user (or in the proxy
// URL) on the CONNECT or the absolute-form request, with the credential id or the owner's username as the user.
func TestCurl(t *testing.T) {
	for _, db := range []struct {
		name     string
		postgres bool
	}{{"sqlite", false}, {"postgres", true}} {
		t.Run(db.name, func(t *testing.T) {
			f := newFixture(t, testserver.Options{Postgres: db.postgres})
			c := f.credential(f.alpha, "curl", nil)
			proxy := "http://" + f.gh.Server.ProxyAddr()
			for _, tt := range []struct {
				name   string
				o      *origin
				args   []string
				want   int
				reachs bool
			}{
				{"https bearer", f.https, []string{"-H", "Authorization: Bearer " + c.Secret, f.https.URL + "/api/items?page=2"}, 200, true},
				{"http absolute-form bearer", f.http, []string{"-H", "Authorization: Bearer " + c.Secret, f.http.URL + "/api/items?page=2"}, 200, true},
				{"https proxy-user on CONNECT", f.https, []string{"--proxy-user", c.ID + ":" + c.Secret, f.https.URL + "/api/items?page=2"}, 200, true},
				{"http proxy-user", f.http, []string{"--proxy-user", c.ID + ":" + c.Secret, f.http.URL + "/api/items?page=2"}, 200, true},
				// The proxy URL form, http://USER:SECRET@gatehouse:PORT, with the owner's username instead of the id.
				{"https username in the proxy URL", f.https, []string{"--proxy", "http://alice:" + c.Secret + "@" + f.gh.Server.ProxyAddr(), f.https.URL + "/api/items?page=2"}, 200, true},
				{"http username in the proxy URL", f.http, []string{"--proxy", "http://alice:" + c.Secret + "@" + f.gh.Server.ProxyAddr(), f.http.URL + "/api/items?page=2"}, 200, true},
				{"https another username in the proxy URL", f.https, []string{"--proxy", "http://bob:" + c.Secret + "@" + f.gh.Server.ProxyAddr(), f.https.URL + "/api/items"}, 407, false},
				{"https no credential", f.https, []string{f.https.URL + "/api/items"}, 401, false},
				{"https wrong secret", f.https, []string{"-H", "Authorization: Bearer ghp_not-the-secret", f.https.URL + "/api/items"}, 401, false},
				{"http no credential", f.http, []string{f.http.URL + "/api/items"}, 407, false},
				{"https proxy-user wrong secret", f.https, []string{"--proxy-user", c.ID + ":ghp_wrong", f.https.URL + "/api/items"}, 407, false},
			} {
				t.Run(tt.name, func(t *testing.T) {
					tt.o.Reset()
					body, status := curl(t, append([]string{"--proxy", proxy, "--cacert", f.proxyCAFile}, tt.args...)...)
					if status != tt.want {
						t.Fatalf("status %d, want %d: %s", status, tt.want, body)
					}
					noSecret(t, "the response", body, alphaToken)
					if !tt.reachs {
						if got := tt.o.Requests(); len(got) != 0 {
							t.Fatalf("a refused request reached the origin: %+v", got)
						}
						var e struct {
							Code string `json:"error_code"`
						}
						if body != "" && (json.Unmarshal([]byte(body), &e) != nil || e.Code != "UNAUTHENTICATED") {
							t.Errorf("error body %q, want a JSON error UNAUTHENTICATED", body)
						}
						return
					}
					if !strings.Contains(body, `"origin":"e2e"`) {
						t.Errorf("body %q is not the origin's", body)
					}
					got := only(t, tt.o)
					if got.Method != "GET" || got.Path != "/api/items" || got.Query != "page=2" {
						t.Errorf("origin got %s %s?%s", got.Method, got.Path, got.Query)
					}
					checkInjected(t, got, alphaToken, c.Secret)
				})
			}
			f.waitConnection(c.ID, func(cn connection) bool {
				return cn.Status == "CONNECTED" && cn.Type == "API" && cn.User.Name == "alice" && cn.Target.Name == "alpha" &&
					cn.ClientAddress == "127.0.0.1" && cn.Requests >= 4 && cn.AuditEnabled
			})
		})
	}
}

// TestGoProxyFromEnvironment uses Go's net/http the way an SDK does: HTTPS_PROXY/HTTP_PROXY from the environment
// and the proxy CA as the only trust anchor, over HTTP/1.1 and HTTP/2 to the proxy. Go never proxies loopback
// addresses, so the client asks for names that alpha maps to the origins with nat_target_host.
func TestGoProxyFromEnvironment(t *testing.T) {
	// net/http reads the proxy environment once per process, so every run of this test (-count=N) must put the
	// proxy at the same address.
	f := newFixture(t, testserver.Options{Configure: func(c *config.Config) { c.ProxyListen = envProxyAddr(t) }})
	c := f.credential(f.alpha, "go", nil)
	t.Setenv("HTTPS_PROXY", f.proxyURL().String())
	t.Setenv("HTTP_PROXY", f.proxyURL().String())
	t.Setenv("NO_PROXY", "")
	for _, tt := range []struct {
		name      string
		h2        bool
		url       string
		o         *origin
		wantProto string // between client and proxy
	}{
		{"https http1.1", false, "https://" + f.natHTTPS() + "/api/items", f.https, "HTTP/1.1"},
		{"https h2", true, "https://" + f.natHTTPS() + "/api/items", f.https, "HTTP/2.0"},
		{"http", false, "http://" + f.natHTTP() + "/api/items", f.http, "HTTP/1.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Reset()
			// envProxy is http.ProxyFromEnvironment without its once-per-process cache (net/http uses this very
			// package): whichever test of the package first made a request through a default transport would
			// otherwise have fixed the empty environment for this one.
			envProxy := func(r *http.Request) (*url.URL, error) { return httpproxy.FromEnvironment().ProxyFunc()(r.URL) }
			tr := &http.Transport{Proxy: envProxy, TLSClientConfig: &tls.Config{RootCAs: f.proxyPool}, ForceAttemptHTTP2: tt.h2}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequest("POST", tt.url, strings.NewReader(`{"n":1}`))
			req.Header.Set("Authorization", "Bearer "+c.Secret)
			req.Header.Set("Content-Type", "application/json")
			if pu, err := envProxy(req); err != nil || pu == nil || pu.Host != f.gh.Server.ProxyAddr() {
				t.Fatalf("proxy from the environment = %v, %v; want the Gatehouse proxy", pu, err)
			}
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Proto != tt.wantProto {
				t.Fatalf("status %d proto %s, want 200 %s", resp.StatusCode, resp.Proto, tt.wantProto)
			}
			got := only(t, tt.o)
			if got.Host != req.URL.Host {
				t.Errorf("origin got Host %q, want the name the client asked for", got.Host)
			}
			if got.Method != "POST" || got.Body != `{"n":1}` {
				t.Errorf("origin got %s with body %q", got.Method, got.Body)
			}
			if tt.o == f.https && got.Proto != "HTTP/2.0" {
				t.Errorf("Gatehouse reached an h2 origin over %s, want HTTP/2 when offered", got.Proto)
			}
			checkInjected(t, got, alphaToken, c.Secret)
		})
	}
}

var envProxy struct {
	once sync.Once
	addr string
	err  error
}

// envProxyAddr picks, once per process, a free loopback address for the proxy of TestGoProxyFromEnvironment.
func envProxyAddr(t *testing.T) string {
	envProxy.once.Do(func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			envProxy.err = err
			return
		}
		envProxy.addr = ln.Addr().String()
		envProxy.err = ln.Close()
	})
	if envProxy.err != nil {
		t.Fatal(envProxy.err)
	}
	return envProxy.addr
}

// pythonScript is a minimal Python requests client: proxy and CA come only from HTTPS_PROXY/HTTP_PROXY and
// REQUESTS_CA_BUNDLE, the secret from the environment.
const pythonScript = `
import json, os, sys
import requests
method, url = sys.argv[1], sys.argv[2]
body = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
r = requests.request(method, url, json=body, timeout=20,
                     headers={"Authorization": "Bearer " + os.environ["GATEHOUSE_SECRET"]})
print(r.status_code)
print(r.text)
`

// TestPythonRequests runs Debian's python3-requests against the HTTPS and HTTP origins through the proxy.
func TestPythonRequests(t *testing.T) {
	const py = "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import requests").CombinedOutput(); err != nil {
		t.Fatalf("%s with python3-requests is required (scripts/test.sh installs it): %v: %s", py, err, out)
	}
	f := newFixture(t, testserver.Options{})
	c := f.credential(f.alpha, "python", nil)
	script := filepath.Join(t.TempDir(), "client.py")
	if err := os.WriteFile(script, []byte(pythonScript), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, method, url, body string
		o                       *origin
		want                    int
	}{
		{"https get", "GET", f.https.URL + "/api/items", "", f.https, 200},
		{"https post json", "POST", f.https.URL + "/api/echo", `{"kind":"widget"}`, f.https, 201},
		{"http get", "GET", f.http.URL + "/api/items", "", f.http, 200},
		{"https denied path", "GET", f.https.URL + "/private", "", f.https, 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Reset()
			args := []string{script, tt.method, tt.url}
			if tt.body != "" {
				args = append(args, tt.body)
			}
			cmd := exec.Command(py, args...)
			// Both spellings: Python lets an empty lower-case variable cancel the upper-case one.
			proxy := f.proxyURL().String()
			cmd.Env = append(os.Environ(), "HTTPS_PROXY="+proxy, "HTTP_PROXY="+proxy, "https_proxy="+proxy, "http_proxy="+proxy,
				"NO_PROXY=", "no_proxy=", "ALL_PROXY=", "all_proxy=", "REQUESTS_CA_BUNDLE="+f.proxyCAFile,
				"CURL_CA_BUNDLE=", "GATEHOUSE_SECRET="+c.Secret)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("python: %v: %s", err, out)
			}
			status, body, _ := strings.Cut(string(out), "\n")
			if status != strconv.Itoa(tt.want) {
				t.Fatalf("status %s, want %d: %s", status, tt.want, body)
			}
			noSecret(t, "the response", body, alphaToken)
			if tt.want == 403 {
				if got := tt.o.Requests(); len(got) != 0 {
					t.Fatalf("a denied request reached the origin: %+v", got)
				}
				return
			}
			got := only(t, tt.o)
			if got.Method != tt.method || (tt.body != "" && strings.ReplaceAll(got.Body, " ", "") != tt.body) {
				t.Errorf("origin got %s with body %q", got.Method, got.Body)
			}
			checkInjected(t, got, alphaToken, c.Secret)
		})
	}
}

// kubeconfig is the part of a kubeconfig a client-go style client reads.
type kubeconfig struct {
	Clusters []struct {
		Name    string `yaml:"name"`
		Cluster struct {
			Server                   string `yaml:"server"`
			ProxyURL                 string `yaml:"proxy-url"`
			CertificateAuthorityData string `yaml:"certificate-authority-data"`
		} `yaml:"cluster"`
	} `yaml:"clusters"`
	Users []struct {
		Name string `yaml:"name"`
		User struct {
			Token string `yaml:"token"`
		} `yaml:"user"`
	} `yaml:"users"`
	Contexts []struct {
		Name    string `yaml:"name"`
		Context struct {
			Cluster string `yaml:"cluster"`
			User    string `yaml:"user"`
		} `yaml:"context"`
	} `yaml:"contexts"`
	CurrentContext string `yaml:"current-context"`
}

// TestKubeconfigClient fetches ?format=kubeconfig and builds a client from it the way client-go does
// (proxy-url, certificate-authority-data as the only roots, the token as a bearer), then calls the cluster server.
func TestKubeconfigClient(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	c := f.credential(f.alpha, "kubectl", nil)
	status, doc := f.gh.Do("GET", c.path(f.userID)+"/secret?format=kubeconfig", f.gh.Token("alice", userPassword), nil)
	if status != http.StatusOK {
		t.Fatalf("kubeconfig: %d %s", status, doc)
	}
	var kc kubeconfig
	if err := yaml.Unmarshal(doc, &kc); err != nil {
		t.Fatalf("kubeconfig does not parse: %v\n%s", err, doc)
	}
	// Resolve the current context exactly as kubectl would.
	var server, proxyURL, caData, token string
	for _, x := range kc.Contexts {
		if x.Name != kc.CurrentContext {
			continue
		}
		for _, cl := range kc.Clusters {
			if cl.Name == x.Context.Cluster {
				server, proxyURL, caData = cl.Cluster.Server, cl.Cluster.ProxyURL, cl.Cluster.CertificateAuthorityData
			}
		}
		for _, u := range kc.Users {
			if u.Name == x.Context.User {
				token = u.User.Token
			}
		}
	}
	if server != f.https.URL || proxyURL != f.proxyURL().String() || token != c.Secret {
		t.Fatalf("kubeconfig: server %q proxy-url %q token ok %v; want server %s proxy %s", server, proxyURL, token == c.Secret, f.https.URL, f.proxyURL())
	}
	caPEM, err := base64.StdEncoding.DecodeString(caData)
	if err != nil {
		t.Fatalf("certificate-authority-data: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("certificate-authority-data holds no certificate")
	}
	pu, err := url.Parse(proxyURL)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", server+"/api/v1/namespaces", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/v1/namespaces through the kubeconfig: %d", resp.StatusCode)
	}
	got := only(t, f.https)
	if got.Path != "/api/v1/namespaces" {
		t.Errorf("origin got %s", got.Path)
	}
	checkInjected(t, got, alphaToken, c.Secret)
}

// TestDenialsNeverReachTheOrigin checks each kind of refusal through a real tunnel: the client gets 403 and the
// origin gets nothing. Changes to the credential, and the loss of the user's role, apply to the very next request
// and mark the open session UNAUTHORIZED.
func TestDenialsNeverReachTheOrigin(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	hc := f.client(true)
	c := f.credential(f.alpha, "denials", nil)

	for _, tt := range []struct {
		name, method, url string
		o                 *origin
	}{
		{"wrong method", "DELETE", f.https.URL + "/api/items", f.https},
		{"path outside", "GET", f.https.URL + "/internal/items", f.https},
		{"dot segments out of the glob", "GET", f.https.URL + "/api/../internal/items", f.https},
		{"encoded dot segments", "GET", f.https.URL + "/api/%2e%2e/internal/items", f.https},
		{"unauthorized endpoint", "GET", f.https.URL + "/api/admin/users", f.https},
		{"unauthorized endpoint, encoded unreserved", "GET", f.https.URL + "/api/%61dmin/users", f.https},
		{"unauthorized endpoint, encoded slash", "GET", f.https.URL + "/api/admin%2Fusers", f.https},
		{"unauthorized endpoint, double slash", "GET", f.https.URL + "/api//admin/users", f.https},
		{"unauthorized endpoint, params", "GET", f.https.URL + "/api/admin;x=1/users", f.https},
		{"other target's host", "GET", f.other.URL + "/anything", f.other},
		{"plain http to an https-only endpoint", "GET", "http://" + f.https.HostPort + "/api/items", f.https},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Reset()
			req, _ := http.NewRequest(tt.method, tt.url, nil)
			// Go's client sends the path as written: dot segments and escapes reach the proxy unchanged.
			req.Header.Set("Authorization", "Bearer "+c.Secret)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 403 (or 400 for a refused path)", resp.StatusCode)
			}
			if got := tt.o.Requests(); len(got) != 0 {
				t.Errorf("a denied request reached the origin: %+v", got)
			}
		})
	}

	// Credential confusion: beta's credential is not good for alpha's origin, nor alpha's for beta's.
	b := f.credential(f.beta, "beta", nil)
	f.https.Reset()
	if st, _ := f.do(hc, "GET", f.https.URL+"/api/items", b.Secret, ""); st != http.StatusForbidden {
		t.Errorf("beta's credential on alpha's origin: %d, want 403", st)
	}
	if got := f.https.Requests(); len(got) != 0 {
		t.Errorf("beta's credential reached alpha's origin: %+v", got)
	}
	f.other.Reset()
	if st, _ := f.do(hc, "GET", f.other.URL+"/anything", b.Secret, ""); st != 200 {
		t.Fatalf("beta's credential on beta's origin: %d", st)
	}
	checkInjected(t, only(t, f.other), betaToken, b.Secret)

	// Each change below is made after a first request opened a session, and must close it.
	changes := []struct {
		name   string
		create map[string]any
		change func(c cred)
		// marks says the open session is closed UNAUTHORIZED by the change itself (not only refused afterwards).
		marks bool
	}{
		{"expired credential", map[string]any{
			"not_before": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339),
			"not_after":  time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		}, func(c cred) {
			f.gh.JSON("PUT", c.path(f.userID), f.adm, map[string]any{"not_after": time.Now().Add(-30 * time.Minute).UTC().Format(time.RFC3339)}, 200, nil)
		}, true},
		{"disabled credential", nil, func(c cred) {
			f.gh.JSON("PUT", c.path(f.userID), f.adm, map[string]any{"enabled": false}, 200, nil)
		}, true},
		// The re-check after a change looks at the credential alone, not at the session's client address, so this
		// session stays listed as CONNECTED (though it serves nothing) until it idles out: see the report.
		{"source address narrowed", nil, func(c cred) {
			f.gh.JSON("PUT", c.path(f.userID), f.adm, map[string]any{"source_address": []string{"192.0.2.0/24"}}, 200, nil)
		}, false},
		// Last: removing alice's role ends every session of hers.
		{"role removed", nil, func(cred) { f.setRoles() }, true},
	}
	for _, tt := range changes {
		t.Run(tt.name, func(t *testing.T) {
			f := f.in(t)
			c := f.credential(f.alpha, tt.name, tt.create)
			if st, body := f.do(hc, "GET", f.https.URL+"/api/items", c.Secret, ""); st != 200 {
				t.Fatalf("before the change: %d %s", st, body)
			}
			id := f.session(c.ID)
			tt.change(c)
			if !tt.marks {
				f.https.Reset()
				if st, body := f.do(hc, "GET", f.https.URL+"/api/items", c.Secret, ""); st != http.StatusForbidden {
					t.Errorf("after the change: %d %s, want 403", st, body)
				}
				if got := f.https.Requests(); len(got) != 0 {
					t.Errorf("a denied request reached the origin: %+v", got)
				}
				return
			}
			f.https.Reset()
			if st, body := f.do(hc, "GET", f.https.URL+"/api/items", c.Secret, ""); st != http.StatusForbidden {
				t.Errorf("after the change: %d %s, want 403", st, body)
			}
			if got := f.https.Requests(); len(got) != 0 {
				t.Errorf("a denied request reached the origin: %+v", got)
			}
			cn := f.waitConnection(c.ID, func(cn connection) bool { return cn.ID == id && cn.Status != "CONNECTED" })
			if cn.Status != "UNAUTHORIZED" || cn.TerminationReason == "" {
				t.Errorf("session after the change: %s %q, want UNAUTHORIZED with a reason", cn.Status, cn.TerminationReason)
			}
		})
	}
}
