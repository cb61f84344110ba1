// Package connector is the local end of `gatehouse connect`: a plain-HTTP listener on loopback that forwards every
// request to one API target through the Gatehouse proxy, holding the proxy credential and trusting only the
// gateway's CA, so a local client needs no proxy setting, CA bundle or token.
package connector

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// Connector forwards local requests to Upstream through Proxy. Its zero value is not usable: Upstream, Proxy,
// Secret and Roots are required (New checks them).
type Connector struct {
	// Upstream is the target as the gateway knows it: scheme (https or http) and host:port.
	Upstream *url.URL
	// Proxy is the Gatehouse proxy listener (http://host:port).
	Proxy *url.URL
	// Secret is the user's proxy credential secret. It is sent as Proxy-Authorization on the CONNECT and as
	// "Authorization: Bearer" on every request inside the tunnel, replacing whatever the local client sent, so a
	// local client cannot swap in another credential and need not know this one.
	Secret string
	// Roots are the only CAs the intercepted TLS to Upstream may chain to: the gateway's proxy CA.
	Roots *x509.CertPool
	// Log receives one line per failed request; nil discards.
	Log *slog.Logger
	// AllowRemote accepts requests whose Host is not a loopback name (for a listener deliberately opened beyond
	// loopback); browser cross-site requests are refused either way.
	AllowRemote bool

	transport *http.Transport
	handler   http.Handler
}

// New checks c and builds its transport and handler.
func New(c Connector) (*Connector, error) {
	switch {
	case c.Upstream == nil || c.Upstream.Host == "" || (c.Upstream.Scheme != "https" && c.Upstream.Scheme != "http"):
		return nil, errors.New("connector: upstream must be an https:// or http:// host")
	case c.Proxy == nil || c.Proxy.Host == "":
		return nil, errors.New("connector: no proxy address")
	case c.Secret == "":
		return nil, errors.New("connector: no proxy credential secret")
	case c.Roots == nil:
		return nil, errors.New("connector: no gateway CA")
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	proxy := *c.Proxy
	proxy.User = nil // the credential travels in the headers below, never in a URL that could be logged
	c.transport = &http.Transport{
		Proxy:              http.ProxyURL(&proxy),
		ProxyConnectHeader: http.Header{"Proxy-Authorization": {"Bearer " + c.Secret}},
		// The gateway CA is the only root: the intercepting proxy mints the target's certificate, and nothing
		// else may stand in for it.
		TLSClientConfig: &tls.Config{RootCAs: c.Roots, MinVersion: tls.VersionTLS12},
		// HTTP/1.1 inside the tunnel keeps upgrades (WebSocket) a byte pipe after the 101.
		TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 0, // a long-poll or a slow API is the target's business
		DialContext:           (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	}
	up := *c.Upstream
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// Rewrite runs after hop-by-hop headers (Proxy-Authorization among them) are removed.
			pr.SetURL(&up)
			pr.Out.Host = up.Host
			pr.Out.Header.Set("Authorization", "Bearer "+c.Secret)
		},
		Transport:     c.transport,
		FlushInterval: -1, // stream: server-sent events and chunked answers reach the client as they come
		ErrorHandler:  c.fail,
		ErrorLog:      slog.NewLogLogger(c.Log.Handler(), slog.LevelWarn),
	}
	c.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := localOnly(r, c.AllowRemote); err != nil {
			c.Log.Warn("refused a local request", "method", r.Method, "path", r.URL.Path, "err", err)
			writeError(w, http.StatusForbidden, "CONNECTOR_REFUSED", "gatehouse connect: "+err.Error())
			return
		}
		rp.ServeHTTP(w, r)
	})
	return &c, nil
}

// Handler is the local HTTP handler.
func (c *Connector) Handler() http.Handler { return c.handler }

// Serve answers local connections on ln until ctx ends, then closes idle connections and returns.
func (c *Connector) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: c.handler, ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(c.Log.Handler(), slog.LevelDebug)}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = srv.Shutdown(sctx)
			cancel()
		case <-done:
		}
	}()
	err := srv.Serve(ln)
	close(done)
	c.transport.CloseIdleConnections()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// fail answers a request the connector could not forward. The gateway's own refusals (403 for a denied path, 407
// inside the tunnel) are ordinary responses and pass through unchanged; this is for a tunnel that never opened.
func (c *Connector) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusBadGateway, "gatehouse connect: cannot reach the target through the gateway: "+err.Error()
	if errors.Is(err, context.Canceled) {
		return // the local client went away
	}
	if strings.Contains(err.Error(), "Proxy Authentication Required") || strings.Contains(err.Error(), "Forbidden") {
		msg = "gatehouse connect: the gateway refused the proxy credential (" + err.Error() +
			"): it may be wrong, revoked, disabled, expired, or not allowed from this address"
	}
	c.Log.Warn("forward failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, status, "CONNECTOR_UPSTREAM_ERROR", msg)
}

// writeError answers in the service API's error shape, so a client sees the connector's refusals like the gateway's.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error_code": code, "error_message": msg})
}

// RefusedError is the gateway's answer to a CONNECT it did not accept.
type RefusedError struct {
	Status int
	// Message is the gateway's error_message, or its body's first line.
	Message string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("the gateway refused the tunnel to the target: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// Check opens one tunnel the way every request will, so a wrong credential, an unknown target or a CA mismatch is
// reported at start rather than on the first local request. For an http:// upstream it only checks the proxy is
// reachable; the credential is checked per request there.
func (c *Connector) Check(ctx context.Context) error {
	d := net.Dialer{Timeout: 15 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", c.Proxy.Host)
	if err != nil {
		return fmt.Errorf("dial the gateway proxy %s: %w", c.Proxy.Host, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	}
	if c.Upstream.Scheme != "https" {
		return nil
	}
	authority := hostPort(c.Upstream)
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: authority}, Host: authority,
		Header: http.Header{"Proxy-Authorization": {"Bearer " + c.Secret}}}
	if err := req.Write(conn); err != nil {
		return fmt.Errorf("CONNECT through the gateway: %w", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return fmt.Errorf("CONNECT through the gateway: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return &RefusedError{Status: resp.StatusCode, Message: errorMessage(b)}
	}
	host, _, _ := net.SplitHostPort(authority)
	tc := tls.Client(&bufferedConn{Conn: conn, r: br}, &tls.Config{RootCAs: c.Roots, ServerName: host, MinVersion: tls.VersionTLS12})
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS to %s through the gateway (verified against the gateway CA only): %w", authority, err)
	}
	return nil
}

// errorMessage picks the message out of a gateway error body (either API dialect's JSON, or text).
func errorMessage(b []byte) string {
	var e struct {
		Message string `json:"error_message"`
		Code    string `json:"error_code"`
	}
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		if e.Code != "" {
			return e.Message + " [" + e.Code + "]"
		}
		return e.Message
	}
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// hostPort is u's host with the scheme's default port when it names none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "http" {
		return net.JoinHostPort(u.Hostname(), "80")
	}
	return net.JoinHostPort(u.Hostname(), "443")
}

// bufferedConn reads first what the CONNECT response reader had already buffered.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// CheckListen refuses a listen address that is not loopback unless allowRemote is set: whoever can reach the
// listener uses the proxy credential it holds, with no authentication of their own.
func CheckListen(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", addr, err)
	}
	if allowRemote || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--listen %q is not a loopback address: anyone who can reach it would use your proxy credential "+
		"without authenticating; listen on 127.0.0.1 or ::1, or pass --allow-remote if that is really what you want", addr)
}
