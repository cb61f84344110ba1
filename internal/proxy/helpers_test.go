package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testca"
)

const (
	userSecret  = "user-secret-5f1e"
	targetToken = "target-token-9c2a"
)

// testCA is the CA of the proxy's tests (internal/testca): it issues the origins' certificates, client
// certificates for the certificate credential and, as a CertSource, the leaves of intercepted tunnels.
type testCA struct{ *testca.CA }

func newTestCA(t testing.TB) *testCA { return &testCA{testca.New(t, "gatehouse test CA")} }

// issue mints a leaf for name (an IP literal gets an IP SAN) and returns it with its PEM encodings.
func (ca *testCA) issue(name string, usage x509.ExtKeyUsage) (tls.Certificate, []byte, []byte, error) {
	l, err := ca.Issue(usage, name)
	return l.TLS, l.CertPEM, l.KeyPEM, err
}

// GetCertificate makes testCA a CertSource.
func (ca *testCA) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	c, _, _, err := ca.issue(hello.ServerName, x509.ExtKeyUsageServerAuth)
	return &c, err
}

var _ CertSource = (*testCA)(nil)

// fakeAuthorizer grants userSecret access to one target, except for paths
// under /denied, and records every question it was asked.
type fakeAuthorizer struct {
	target *Target
	nat    string
	// unauthPrefix, if set, allows requests without credential under it.
	unauthPrefix string

	mu   sync.Mutex
	seen []AuthRequest
}

func (a *fakeAuthorizer) Authorize(_ context.Context, r *AuthRequest) (*Grant, error) {
	a.mu.Lock()
	a.seen = append(a.seen, *r)
	a.mu.Unlock()
	if r.Method == http.MethodConnect {
		if r.Secret != "" && r.Secret != userSecret {
			return nil, ErrUnauthenticated
		}
		return nil, nil
	}
	g := &Grant{Target: a.target, NATTargetHost: a.nat, Secret: r.Secret,
		Session: SessionInfo{UserID: "u1", UserName: "alice", CredentialName: "laptop", TargetName: a.target.Name}}
	switch {
	case r.Secret == "" && a.unauthPrefix != "" && strings.HasPrefix(r.Path, a.unauthPrefix):
		g.Unauthenticated = true
		return g, nil
	case r.Secret != userSecret:
		return nil, ErrUnauthenticated
	case strings.HasPrefix(r.Path, "/denied"):
		return nil, &DeniedError{Reason: "no authorized endpoint matches"}
	case strings.HasPrefix(r.Path, "/limited"):
		return nil, ErrRateLimited
	}
	return g, nil
}

func (a *fakeAuthorizer) requests() []AuthRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]AuthRequest(nil), a.seen...)
}

var _ Authorizer = (*fakeAuthorizer)(nil)

// origin is a target API that remembers what it received.
type origin struct {
	*httptest.Server
	hits    atomic.Int64
	mu      sync.Mutex
	headers []http.Header
	paths   []string
	bodies  [][]byte
}

func newOrigin(t testing.TB, tlsOn bool, h http.HandlerFunc, configure ...func(*httptest.Server)) *origin {
	t.Helper()
	o := &origin{}
	o.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		o.mu.Lock()
		o.headers = append(o.headers, r.Header.Clone())
		o.paths = append(o.paths, r.RequestURI)
		o.bodies = append(o.bodies, body)
		o.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "hello from origin "+r.Proto)
	}))
	for _, f := range configure {
		f(o.Server)
	}
	if tlsOn {
		o.EnableHTTP2 = true
		o.StartTLS()
	} else {
		o.Start()
	}
	t.Cleanup(o.Close)
	return o
}

func (o *origin) lastHeader() http.Header {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.headers) == 0 {
		return nil
	}
	return o.headers[len(o.headers)-1]
}

// anchorsPEM is the origin's certificate, to be trusted by the target.
func (o *origin) anchorsPEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: o.Certificate().Raw}))
}

func (o *origin) hostPort() string {
	return strings.TrimPrefix(strings.TrimPrefix(o.URL, "https://"), "http://")
}

// logBuffer collects JSON log lines safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startProxy serves s on a loopback port and returns its address.
func startProxy(t testing.TB, s *Server) (string, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	if s.Logger == nil {
		s.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String(), logs
}

// proxyClient is a Go client configured the way users configure theirs.
func proxyClient(t *testing.T, proxyAddr string, ca *testCA, h2 bool) *http.Client {
	t.Helper()
	pu, _ := url.Parse("http://" + proxyAddr)
	tr := &http.Transport{
		Proxy:             http.ProxyURL(pu),
		TLSClientConfig:   &tls.Config{RootCAs: ca.Pool},
		ForceAttemptHTTP2: h2,
		DisableKeepAlives: false,
	}
	if !h2 {
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func bearer(req *http.Request) *http.Request {
	req.Header.Set("Authorization", "Bearer "+userSecret)
	return req
}

// errorBody decodes the proxy's JSON error.
type errorBody struct {
	ErrorCode    string `json:"error_code"`
	ErrorMessage string `json:"error_message"`
}

func readError(t *testing.T, r io.Reader) errorBody {
	t.Helper()
	var e errorBody
	if err := json.NewDecoder(r).Decode(&e); err != nil {
		t.Fatalf("decode error body: %v", err)
	}
	return e
}

// rawExchange writes raw bytes to conn and reads one response.
func rawExchange(t *testing.T, conn net.Conn, br *bufio.Reader, raw string) *http.Response {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return resp
}

// plainTunnel opens a CONNECT tunnel to authority and returns the conn for
// plain HTTP inside it.
func plainTunnel(t *testing.T, proxyAddr, authority string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	br := bufio.NewReader(conn)
	resp := rawExchange(t, conn, br, "CONNECT "+authority+" HTTP/1.1\r\nHost: "+authority+"\r\n\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT status %d", resp.StatusCode)
	}
	return conn, br
}

func writeFile(name string, b []byte) error { return os.WriteFile(name, b, 0o600) }

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func itoa(n int) string { return strconv.Itoa(n) }
