package extender

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

// Agent is the extender process inside a segment. It only dials out: to the gateway, and to the addresses the
// gateway's streams name. Gateway and one of Token and Certificate are required.
type Agent struct {
	// Gateway is the gateway's API base URL, https://host:port.
	Gateway string
	// Token is the extender's enrolment token; empty when it authenticates with Certificate.
	Token string
	// Certificate is the extender's client certificate with its key, presented in the TLS handshake; nil when it
	// authenticates with Token.
	Certificate *tls.Certificate
	// RootCAs verifies the gateway's certificate; nil means the system roots.
	RootCAs *x509.CertPool
	// Allow limits the addresses the agent dials; the zero value allows all.
	Allow AllowList
	// Version is sent to the gateway for its status view.
	Version string
	// Log receives connects, refusals and dial failures; nil discards.
	Log *slog.Logger
	// MinBackoff and MaxBackoff bound the wait between reconnects; zero means 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// DialTimeout bounds each dial (gateway and targets); zero means 10 seconds.
	DialTimeout time.Duration
	// OnConnected, if set, is called each time a session to the gateway is up (tests wait on it).
	OnConnected func()
}

// RefusedError is the gateway's refusal of the credential: permanent, so Run stops rather than retrying.
type RefusedError struct {
	Status int
	Body   string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("gateway refused the extender credential (HTTP %d): %s", e.Status, strings.TrimSpace(e.Body))
}

func (a *Agent) log() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

func (a *Agent) dialTimeout() time.Duration {
	if a.DialTimeout > 0 {
		return a.DialTimeout
	}
	return 10 * time.Second
}

// Backoff is the wait before reconnect attempt n (0 for the first retry): min doubled n times, capped at max.
func Backoff(n int, min, max time.Duration) time.Duration {
	d := min
	for i := 0; i < n && d < max; i++ {
		d *= 2
	}
	return minDuration(d, max)
}

func minDuration(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}

// Run keeps a session to the gateway until ctx ends or the gateway refuses the token, reconnecting with
// exponential backoff after each loss.
func (a *Agent) Run(ctx context.Context) error {
	lo, hi := a.MinBackoff, a.MaxBackoff
	if lo <= 0 {
		lo = 500 * time.Millisecond
	}
	if hi <= 0 {
		hi = 30 * time.Second
	}
	failures := 0
	for {
		sess, err := a.Connect(ctx)
		var refused *RefusedError
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &refused):
			return err
		case err != nil:
			wait := Backoff(failures, lo, hi)
			failures++
			a.log().Warn("extender cannot reach the gateway; retrying", "err", err, "wait", wait)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			continue
		}
		failures = 0
		a.log().Info("extender connected to the gateway", "gateway", a.Gateway)
		if a.OnConnected != nil {
			a.OnConnected()
		}
		a.Serve(ctx, sess)
		a.log().Warn("extender session to the gateway ended; reconnecting")
	}
}

// Connect dials the gateway, verifies its certificate, authenticates and returns the session.
func (a *Agent) Connect(ctx context.Context) (*yamux.Session, error) {
	u, err := url.Parse(a.Gateway)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, &RefusedError{Body: fmt.Sprintf("gateway %q must be an https:// URL", a.Gateway)}
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	ctx, cancel := context.WithTimeout(ctx, a.dialTimeout())
	defer cancel()
	// Only HTTP/1.1 is offered: the upgrade needs the raw connection, which HTTP/2 does not hand over.
	tc := &tls.Config{RootCAs: a.RootCAs, ServerName: u.Hostname(), NextProtos: []string{"http/1.1"},
		MinVersion: tls.VersionTLS12}
	if a.Certificate != nil {
		cert := a.Certificate
		// Offered whatever CAs the gateway names: it asks for any certificate and verifies against its own.
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("dial gateway: %w", err)
	}
	conn := newBatchedTLS(raw, tc)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("dial gateway: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	req, _ := http.NewRequest(http.MethodGet, "https://"+u.Host+ConnectPath, nil)
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", Protocol)
	req.Header.Set(VersionHeader, a.Version)
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("connect request: %w", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("connect answer: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		conn.Close()
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			return nil, &RefusedError{Status: resp.StatusCode, Body: string(body)}
		}
		return nil, fmt.Errorf("connect answer: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if !stop() {
		conn.Close()
		return nil, ctx.Err()
	}
	conn.SetDeadline(time.Time{})
	cfg := sessionConfig()
	// yamux's keepalive notices a dead gateway (a half-open TCP connection) and ends the session, so Run reconnects.
	cfg.KeepAliveInterval = 15 * time.Second
	return yamux.Server(&bufConn{Conn: conn, r: br}, cfg)
}

// Serve answers the gateway's streams until the session ends.
func (a *Agent) Serve(ctx context.Context, sess *yamux.Session) {
	defer sess.Close()
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		go a.handle(ctx, st)
	}
}

func (a *Agent) handle(ctx context.Context, st *yamux.Stream) {
	defer st.Close()
	st.SetDeadline(time.Now().Add(a.dialTimeout()))
	br := bufio.NewReader(st)
	line, err := readLine(br)
	if err != nil {
		return
	}
	addr, err := parseDial(line)
	if err != nil {
		writeReply(st, err)
		return
	}
	if !a.Allow.Allows(addr) {
		a.log().Warn("extender refused an address outside its allow-list", "addr", addr)
		writeReply(st, errors.New("address not in the extender's allow-list"))
		return
	}
	d := &net.Dialer{Timeout: a.dialTimeout()}
	target, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		a.log().Warn("extender dial failed", "addr", addr, "err", err)
		writeReply(st, errors.New("dial failed"))
		return
	}
	defer target.Close()
	if err := writeReply(st, nil); err != nil {
		return
	}
	st.SetDeadline(time.Time{})
	pipe(&bufConn{Conn: st, r: br}, target)
}

// pipe copies both ways and half-closes each write side as its source ends, so a target that reads to EOF sees it.
func pipe(a, b net.Conn) {
	var wg sync.WaitGroup
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		copyBurst(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	wg.Add(2)
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
}

// A pipe copies through a small buffer of its own while the source trickles or is idle, and through a big one from
// a pool while a read fills the small one (a download or upload under way). io.Copy's 32 KiB meant a socket read, a
// yamux frame (a hand-off to the session's send loop and back) and a socket write for every 32 KiB; a read takes
// what the socket holds, so the big buffer turns a fast source into fewer, bigger frames. An idle pipe holds only
// its small buffers: pooled upstream connections stay cheap.
const (
	smallCopyBuf = 32 << 10
	bigCopyBuf   = 256 << 10
)

var bigCopyBufs = sync.Pool{New: func() any { b := make([]byte, bigCopyBuf); return &b }}

// copyBurst copies src to dst until src ends (nil) or either side fails (that error).
func copyBurst(dst io.Writer, src io.Reader) error {
	small := make([]byte, smallCopyBuf)
	var big *[]byte
	defer func() {
		if big != nil {
			bigCopyBufs.Put(big)
		}
	}()
	for {
		buf := small
		if big != nil {
			buf = *big
		}
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		switch {
		case big == nil && n == len(small):
			// The source had more than the small buffer holds: the rest of the burst goes through a big one.
			big = bigCopyBufs.Get().(*[]byte)
		case big != nil && n < len(small):
			// The burst thinned out: the next read may wait long, and waits in the small buffer.
			bigCopyBufs.Put(big)
			big = nil
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
