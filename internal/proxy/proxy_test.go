package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// setup starts an origin (TLS or not), a target for it and a proxy.
type setup struct {
	ca     *testCA
	origin *origin
	target *Target
	auth   *fakeAuthorizer
	srv    *Server
	addr   string
	logs   *logBuffer
}

func newSetup(t testing.TB, tlsOn bool, h http.HandlerFunc, tweak func(*Server, *Target)) *setup {
	t.Helper()
	st := &setup{ca: newTestCA(t), origin: newOrigin(t, tlsOn, h)}
	st.target = &Target{ID: "t1", Name: "api", Version: 1,
		Credential: TargetCredential{Type: CredentialToken, Token: targetToken}}
	if tlsOn {
		st.target.TrustAnchorsPEM = st.origin.anchorsPEM()
	}
	st.auth = &fakeAuthorizer{target: st.target}
	st.srv = &Server{Authorizer: st.auth, Certs: st.ca}
	if tweak != nil {
		tweak(st.srv, st.target)
	}
	st.addr, st.logs = startProxy(t, st.srv)
	return st
}

func TestHTTPSThroughTunnel(t *testing.T) {
	for _, tc := range []struct {
		name      string
		h2        bool
		wantProto string
	}{
		{"http1", false, "HTTP/1.1"},
		{"http2", true, "HTTP/2.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newSetup(t, true, nil, nil)
			client := proxyClient(t, st.addr, st.ca, tc.h2)
			for i := range 3 { // keep-alive: the tunnel carries several requests
				req, _ := http.NewRequest(http.MethodGet, st.origin.URL+"/v1/items?limit=5", nil)
				resp, err := client.Do(bearer(req))
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || resp.Proto != tc.wantProto {
					t.Fatalf("got %d %s, want 200 %s: %s", resp.StatusCode, resp.Proto, tc.wantProto, body)
				}
				if !strings.HasPrefix(string(body), "hello from origin HTTP/2.0") {
					t.Errorf("body %q: upstream should speak HTTP/2 when offered", body)
				}
			}
			if got := st.origin.lastHeader().Get("Authorization"); got != "Bearer "+targetToken {
				t.Errorf("origin got Authorization %q, want the target token", got)
			}
			if diff := cmp.Diff("/v1/items?limit=5", st.origin.paths[0]); diff != "" {
				t.Errorf("forwarded path (-want +got):\n%s", diff)
			}
			reqs := st.auth.requests()
			last := reqs[len(reqs)-1]
			if last.Scheme != "https" || last.Path != "/v1/items" || last.Secret != userSecret || last.Host != st.origin.hostPort() {
				t.Errorf("authorizer saw %+v", last)
			}
		})
	}
}

func TestCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is not installed; ./scripts/test.sh installs it")
	}
	st := newSetup(t, true, nil, nil)
	caFile := t.TempDir() + "/ca.PEM"
	if err := writeFile(caFile, st.ca.PEM); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bearer in request", []string{"-H", "Authorization: Bearer " + userSecret}, "200"},
		{"basic on CONNECT", []string{"--proxy-user", "cred1:" + userSecret}, "200"},
		{"http2", []string{"--http2", "-H", "Authorization: Bearer " + userSecret}, "200"},
		{"no credential", nil, "401"},
		{"wrong CONNECT credential", []string{"--proxy-user", "cred1:wrong"}, "000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
				"--proxy", "http://" + st.addr, "--cacert", caFile}, tc.args...)
			args = append(args, st.origin.URL+"/v1/ping")
			out, _ := exec.Command("curl", args...).Output()
			if got := string(out); got != tc.want {
				t.Errorf("curl status %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPlainHTTPAbsoluteForm(t *testing.T) {
	st := newSetup(t, false, nil, nil)
	for _, tc := range []struct {
		name     string
		proxyURL string
		header   string
		want     int
	}{
		{"proxy basic", "http://cred1:" + userSecret + "@" + st.addr, "", http.StatusOK},
		{"bearer", "http://" + st.addr, "Bearer " + userSecret, http.StatusOK},
		{"none", "http://" + st.addr, "", http.StatusProxyAuthRequired},
		{"wrong", "http://cred1:nope@" + st.addr, "", http.StatusProxyAuthRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pu, _ := url.Parse(tc.proxyURL)
			client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
			req, _ := http.NewRequest(http.MethodGet, st.origin.URL+"/v1/ping", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == http.StatusProxyAuthRequired {
				if got := resp.Header.Get("Proxy-Authenticate"); got != `Basic realm="gatehouse"` {
					t.Errorf("Proxy-Authenticate %q", got)
				}
				if e := readError(t, resp.Body); e.ErrorCode != "UNAUTHENTICATED" {
					t.Errorf("error body %+v", e)
				}
				return
			}
			h := st.origin.lastHeader()
			if h.Get("Authorization") != "Bearer "+targetToken || h.Get("Proxy-Authorization") != "" {
				t.Errorf("origin headers %v", h)
			}
		})
	}
}

func TestCredentialInjection(t *testing.T) {
	ca := newTestCA(t)
	_, clientCertPEM, clientKeyPEM, err := ca.issue("gatehouse-client", x509.ExtKeyUsageClientAuth)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		cred       TargetCredential
		wantHeader string
		wantValue  string
	}{
		{"token", TargetCredential{Type: CredentialToken, Token: targetToken}, "Authorization", "Bearer " + targetToken},
		{"basicauth", TargetCredential{Type: CredentialBasicAuth, Username: "svc", Password: targetToken},
			"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("svc:"+targetToken))},
		{"header", TargetCredential{Type: CredentialHeader, HeaderName: "X-Api-Key", HeaderValue: targetToken}, "X-Api-Key", targetToken},
		{"certificate", TargetCredential{Type: CredentialCertificate, CertificatePEM: string(clientCertPEM), PrivateKeyPEM: string(clientKeyPEM)}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var peerCN string
			h := func(w http.ResponseWriter, r *http.Request) {
				if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
					peerCN = r.TLS.PeerCertificates[0].Subject.CommonName
				}
			}
			o := newOrigin(t, true, h, func(s *httptest.Server) {
				s.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.Pool}
			})
			target := &Target{ID: "t-" + tc.name, Name: tc.name, Version: 1, Credential: tc.cred, TrustAnchorsPEM: o.anchorsPEM()}
			srv := &Server{Authorizer: &fakeAuthorizer{target: target}, Certs: ca}
			addr, _ := startProxy(t, srv)
			client := proxyClient(t, addr, ca, false)
			req, _ := http.NewRequest(http.MethodGet, o.URL+"/x", nil)
			req.Header.Set("X-Api-Key", "client-chosen") // must be replaced, not appended
			resp, err := client.Do(bearer(req))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			for k, vs := range o.lastHeader() {
				for _, v := range vs {
					if strings.Contains(v, userSecret) {
						t.Errorf("user secret reached the origin in %s", k)
					}
				}
			}
			if tc.cred.Type == CredentialCertificate {
				if resp.StatusCode != http.StatusOK || peerCN != "gatehouse-client" {
					t.Fatalf("status %d, origin saw client certificate %q", resp.StatusCode, peerCN)
				}
				return
			}
			got := o.lastHeader().Values(tc.wantHeader)
			if diff := cmp.Diff([]string{tc.wantValue}, got); diff != "" {
				t.Errorf("%s at origin (-want +got):\n%s", tc.wantHeader, diff)
			}
		})
	}
}

// TestConnectionHeaderCannotStripCredential pins CVE-2021-33197: a client
// naming the credential header in Connection must not make the proxy drop
// the credential it injects.
func TestConnectionHeaderCannotStripCredential(t *testing.T) {
	st := newSetup(t, false, nil, func(_ *Server, tg *Target) {
		tg.Credential = TargetCredential{Type: CredentialHeader, HeaderName: "X-Api-Key", HeaderValue: targetToken}
	})
	conn, br := plainTunnel(t, st.addr, st.origin.hostPort())
	resp := rawExchange(t, conn, br, "GET /x HTTP/1.1\r\nHost: "+st.origin.hostPort()+"\r\n"+
		"Authorization: Bearer "+userSecret+"\r\nConnection: X-Api-Key, Authorization\r\nX-Api-Key: mine\r\n\r\n")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	h := st.origin.lastHeader()
	if got := h.Values("X-Api-Key"); len(got) != 1 || got[0] != targetToken {
		t.Errorf("origin X-Api-Key = %q, want only the injected credential", got)
	}
	if h.Get("Authorization") != "" {
		t.Errorf("client's Authorization reached the origin")
	}
}

func TestSecretsNeverLeak(t *testing.T) {
	st := newSetup(t, true, func(w http.ResponseWriter, r *http.Request) {
		// A hostile origin echoing everything it got back to the client.
		for k, v := range r.Header {
			w.Header()[k] = v
		}
	}, nil)
	client := proxyClient(t, st.addr, st.ca, false)
	for _, path := range []string{"/ok", "/denied", "/limited"} {
		req, _ := http.NewRequest(http.MethodGet, st.origin.URL+path+"?q=1", nil)
		req.Header.Set("X-Forwarded-For", "10.9.9.9")
		req.Header.Set("Forwarded", "for=10.9.9.9")
		resp, err := client.Do(bearer(req))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if n := st.origin.hits.Load(); n != 1 {
		t.Fatalf("origin hits = %d, want 1 (denied requests must not reach it)", n)
	}
	for k, vs := range st.origin.lastHeader() {
		for _, v := range vs {
			if strings.Contains(v, userSecret) {
				t.Errorf("user secret reached the origin in %s", k)
			}
			if strings.Contains(v, "10.9.9.9") {
				t.Errorf("client forwarding header %s reached the origin", k)
			}
		}
	}
	logs := st.logs.String()
	if strings.Contains(logs, userSecret) || strings.Contains(logs, targetToken) {
		t.Errorf("a secret appears in the log:\n%s", logs)
	}
	if !strings.Contains(logs, `"decision":"deny"`) || !strings.Contains(logs, `"user":"alice"`) {
		t.Errorf("access log lacks decisions:\n%s", logs)
	}
}

func TestDecisions(t *testing.T) {
	st := newSetup(t, false, nil, func(s *Server, _ *Target) {})
	st.auth.unauthPrefix = "/public"
	for _, tc := range []struct {
		name     string
		raw      string
		want     int
		wantCode string
	}{
		{"denied", "GET /denied/x HTTP/1.1\r\nHost: HOST\r\nAuthorization: Bearer " + userSecret + "\r\n\r\n", 403, "FORBIDDEN"},
		{"rate limited", "GET /limited HTTP/1.1\r\nHost: HOST\r\nAuthorization: Bearer " + userSecret + "\r\n\r\n", 429, "RATE_LIMITED"},
		{"no credential in tunnel", "GET /x HTTP/1.1\r\nHost: HOST\r\n\r\n", 401, "UNAUTHENTICATED"},
		{"wrong credential", "GET /x HTTP/1.1\r\nHost: HOST\r\nAuthorization: Bearer nope\r\n\r\n", 401, "UNAUTHENTICATED"},
		{"unauthenticated endpoint", "GET /public/x HTTP/1.1\r\nHost: HOST\r\n\r\n", 200, ""},
		{"two credentials", "GET /x HTTP/1.1\r\nHost: HOST\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n", 401, "UNAUTHENTICATED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := st.origin.hits.Load()
			conn, br := plainTunnel(t, st.addr, st.origin.hostPort())
			resp := rawExchange(t, conn, br, strings.ReplaceAll(tc.raw, "HOST", st.origin.hostPort()))
			defer resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			reached := st.origin.hits.Load() - before
			if tc.want != 200 {
				if reached != 0 {
					t.Errorf("refused request reached the origin")
				}
				if e := readError(t, resp.Body); e.ErrorCode != tc.wantCode {
					t.Errorf("error_code %q, want %q", e.ErrorCode, tc.wantCode)
				}
			} else if reached != 1 {
				t.Errorf("origin hits %d, want 1", reached)
			}
		})
	}
}

func TestProxyPortRefusals(t *testing.T) {
	st := newSetup(t, false, nil, nil)
	for _, tc := range []struct {
		name string
		raw  string
		want int
	}{
		{"origin-form to the proxy", "GET /v1 HTTP/1.1\r\nHost: " + st.addr + "\r\n\r\n", 400},
		{"bad CONNECT credential", "CONNECT " + st.origin.hostPort() + " HTTP/1.1\r\nHost: " + st.origin.hostPort() +
			"\r\nProxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("c:wrong")) + "\r\n\r\n", 407},
		{"CONNECT without port", "CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", 400},
		{"CONNECT Host mismatch", "CONNECT " + st.origin.hostPort() + " HTTP/1.1\r\nHost: other.example:443\r\n\r\n", 400},
		{"https absolute-form", "GET https://" + st.origin.hostPort() + "/ HTTP/1.1\r\nHost: " + st.origin.hostPort() +
			"\r\nAuthorization: Bearer " + userSecret + "\r\n\r\n", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", st.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			resp := rawExchange(t, conn, bufioReader(conn), tc.raw)
			defer resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if e := readError(t, resp.Body); e.ErrorCode == "" || e.ErrorMessage == "" {
				t.Errorf("error body %+v", e)
			}
			if st.origin.hits.Load() != 0 {
				t.Errorf("origin reached")
			}
		})
	}
}

func TestNATTargetHost(t *testing.T) {
	st := newSetup(t, true, nil, nil)
	_, port, _ := net.SplitHostPort(st.origin.hostPort())
	st.auth.nat = "127.0.0.1"
	client := proxyClient(t, st.addr, st.ca, false)
	// example.com does not resolve to the origin; the NAT host does, and
	// the httptest certificate is valid for example.com, so this succeeds
	// only if the proxy dials the NAT host and verifies the requested name.
	req, _ := http.NewRequest(http.MethodGet, "https://example.com:"+port+"/nat", nil)
	resp, err := client.Do(bearer(req))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	st.origin.mu.Lock()
	defer st.origin.mu.Unlock()
	if got := st.origin.paths[0]; got != "/nat" {
		t.Errorf("path %q", got)
	}
}

func TestUpstreamErrors(t *testing.T) {
	stall := make(chan struct{})
	t.Cleanup(func() { close(stall) })
	for _, tc := range []struct {
		name     string
		target   func(*setup) (url string, tg *Target)
		want     int
		wantCode string
	}{
		{"refused", func(st *setup) (string, *Target) {
			ln, _ := net.Listen("tcp", "127.0.0.1:0")
			addr := ln.Addr().String()
			ln.Close()
			return "http://" + addr + "/", st.target
		}, 502, "UPSTREAM_UNREACHABLE"},
		{"unknown authority", func(st *setup) (string, *Target) {
			st.target.TrustAnchorsPEM = ""
			return st.origin.URL + "/", st.target
		}, 502, "UPSTREAM_TLS"},
		{"stall", func(st *setup) (string, *Target) {
			return st.origin.URL + "/stall", st.target
		}, 504, "UPSTREAM_TIMEOUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newSetup(t, true, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/stall" {
					select {
					case <-stall:
					case <-r.Context().Done():
					}
				}
			}, func(s *Server, _ *Target) { s.ResponseHeaderTimeout = 200 * time.Millisecond })
			u, _ := tc.target(st)
			pu, _ := url.Parse("http://" + st.addr)
			client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{RootCAs: st.ca.Pool}}}
			req, _ := http.NewRequest(http.MethodGet, u, nil)
			resp, err := client.Do(bearer(req))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if e := readError(t, resp.Body); e.ErrorCode != tc.wantCode {
				t.Errorf("error_code %q, want %q", e.ErrorCode, tc.wantCode)
			}
		})
	}
}

func TestClientDisconnectCancelsUpstream(t *testing.T) {
	started, cancelled := make(chan struct{}), make(chan struct{})
	st := newSetup(t, false, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(10 * time.Second):
		}
	}, nil)
	conn, _ := plainTunnel(t, st.addr, st.origin.hostPort())
	if _, err := io.WriteString(conn, "GET /slow HTTP/1.1\r\nHost: "+st.origin.hostPort()+"\r\nAuthorization: Bearer "+userSecret+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	<-started
	conn.Close()
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("origin request not cancelled after the client went away")
	}
}

func TestPipelining(t *testing.T) {
	st := newSetup(t, false, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}, nil)
	conn, br := plainTunnel(t, st.addr, st.origin.hostPort())
	req := func(p, body string) string {
		return "POST " + p + " HTTP/1.1\r\nHost: " + st.origin.hostPort() + "\r\nAuthorization: Bearer " + userSecret +
			"\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body
	}
	// Three requests in one write, the second denied with an unread body.
	raw := req("/one", "abc") + req("/denied", "GET /smuggled HTTP/1.1\r\n\r\n") + req("/three", "")
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 3 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got = append(got, itoa(resp.StatusCode)+" "+strings.TrimSpace(string(b)))
	}
	got[1] = regexp.MustCompile(`"request_id":"[0-9a-f]{12}-[0-9a-f]+"`).ReplaceAllString(got[1], `"request_id":"ID"`)
	want := []string{"200 /one", `403 {"error_code":"FORBIDDEN","error_message":"` + neutralDenial + `","request_id":"ID"}`, "200 /three"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("responses (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"/one", "/three"}, st.origin.paths); diff != "" {
		t.Errorf("origin paths (-want +got):\n%s", diff)
	}
}

func TestZeroServerDeniesConnect(t *testing.T) {
	addr, _ := startProxy(t, &Server{})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp := rawExchange(t, conn, bufioReader(conn), "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
}

func TestShutdownWithIdleTunnel(t *testing.T) {
	ca := newTestCA(t)
	s := &Server{Certs: ca, Authorizer: &fakeAuthorizer{target: &Target{ID: "t"}}}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go s.Serve(ln)
	conn, _ := plainTunnel(t, ln.Addr().String(), "example.com:80")
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("idle tunnel still open after Shutdown")
	}
}
