package extender

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
)

// startHub serves a hub over real TLS; tokens "tok-a" and "tok-b" are extenders a and b of prefix "site".
func startHub(t testing.TB) (*Hub, string, *x509.CertPool) {
	t.Helper()
	h := &Hub{Authenticate: func(_ context.Context, token string) (Identity, error) {
		switch token {
		case "tok-a":
			return Identity{ID: "a", Name: "a", Prefix: "site"}, nil
		case "tok-b":
			return Identity{ID: "b", Name: "b", Prefix: "site"}, nil
		}
		return Identity{}, ErrRefused
	}, DialTimeout: 5 * time.Second}
	srv := httptest.NewUnstartedServer(h)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return h, srv.URL, pool
}

func waitLinks(t testing.TB, h *Hub, prefix string, n int) {
	t.Helper()
	for range 500 {
		if h.Connected(prefix) == n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("prefix %s: %d sessions, want %d", prefix, h.Connected(prefix), n)
}

func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// TestDialFailsOverWithinOneDial pins the failover: extender a's session is up but every stream it gets dies
// without an answer (a broken agent the heartbeat has not caught yet). Round robin sends every other dial to a
// first; each of those must still succeed through b.
func TestDialFailsOverWithinOneDial(t *testing.T) {
	h, url, pool := startHub(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	broken := &Agent{Gateway: url, Token: "tok-a", RootCAs: pool}
	sess, err := broken.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var brokenStreams atomic.Int64
	go func() {
		for {
			st, err := sess.AcceptStream()
			if err != nil {
				return
			}
			brokenStreams.Add(1)
			st.Close()
		}
	}()
	good := &Agent{Gateway: url, Token: "tok-b", RootCAs: pool}
	go good.Run(ctx)
	waitLinks(t, h, "site", 2)

	echo := echoServer(t)
	for i := range 6 {
		c, err := h.Dial(ctx, "site", echo)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		c.Write([]byte("ping"))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("dial %d: echo %q %v", i, buf, err)
		}
		c.Close()
	}
	if n := brokenStreams.Load(); n < 3 {
		t.Fatalf("the broken extender got %d streams; round robin should have offered it every other dial", n)
	}
}

func TestDialErrors(t *testing.T) {
	h, url, pool := startHub(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	_, err := h.Dial(ctx, "site", "127.0.0.1:1")
	var un *UnavailableError
	if !errors.As(err, &un) || un.Prefix != "site" {
		t.Fatalf("no agent: %v, want UnavailableError for site", err)
	}

	allow, _ := ParseAllowList([]string{"127.0.0.1:9"})
	var connects atomic.Int64
	a := &Agent{Gateway: url, Token: "tok-a", RootCAs: pool, Allow: allow, OnConnected: func() { connects.Add(1) }}
	go a.Run(ctx)
	waitLinks(t, h, "site", 1)
	_, err = h.Dial(ctx, "site", echoServer(t))
	var de *DialError
	if !errors.As(err, &de) || de.Reason != "address not in the extender's allow-list" {
		t.Fatalf("address outside the allow-list: %v", err)
	}
	code, msg := de.ExtenderFailure()
	if code != "EXTENDER_DIAL_FAILED" || msg != `extender "site" could not reach the target` {
		t.Fatalf("client-facing failure: %s %s", code, msg)
	}

	// Disconnect cuts the session; the agent, whose token is still good, reconnects at once.
	h.Disconnect("a")
	for i := 0; connects.Load() < 2; i++ {
		if i == 500 {
			t.Fatalf("after Disconnect the agent connected %d times, want a second session", connects.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConnectRefusals(t *testing.T) {
	_, url, pool := startHub(t)
	ctx := context.Background()
	var refused *RefusedError
	if _, err := (&Agent{Gateway: url, Token: "nope", RootCAs: pool}).Connect(ctx); !errors.As(err, &refused) || refused.Status != http.StatusUnauthorized {
		t.Fatalf("unknown token: %v", err)
	}
	if err := (&Agent{Gateway: url, Token: "nope", RootCAs: pool}).Run(ctx); !errors.As(err, &refused) {
		t.Fatalf("Run with an unknown token: %v, want it to stop with RefusedError", err)
	}
	// The gateway's certificate must verify: an agent without its CA never sends the token.
	if _, err := (&Agent{Gateway: url, Token: "tok-a", RootCAs: x509.NewCertPool()}).Connect(ctx); err == nil || errors.As(err, &refused) {
		t.Fatalf("untrusted gateway: %v, want a TLS error", err)
	}
	if _, err := (&Agent{Gateway: "http://" + url[len("https://"):], Token: "tok-a"}).Connect(ctx); !errors.As(err, &refused) {
		t.Fatalf("plain http gateway URL: %v, want refused", err)
	}
}

// TestRefusedTokensAreThrottled: guessing tokens from one address is refused once the login limiter's per-source
// count is reached, even for a correct token, so a token cannot be brute-forced through the connect route.
func TestRefusedTokensAreThrottled(t *testing.T) {
	h, url, pool := startHub(t)
	h.Limiter = &auth.MemoryLoginLimiter{PairBurst: 3, SourceBurst: 3, NameSlowAfter: 100}
	ctx := context.Background()
	var refused *RefusedError
	for i := range 3 {
		if _, err := (&Agent{Gateway: url, Token: "guess", RootCAs: pool}).Connect(ctx); !errors.As(err, &refused) || refused.Status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	_, err := (&Agent{Gateway: url, Token: "tok-a", RootCAs: pool}).Connect(ctx)
	if err == nil || !strings.Contains(err.Error(), "HTTP 429") {
		t.Fatalf("after the burst: %v, want HTTP 429", err)
	}
}

func TestBackoff(t *testing.T) {
	for _, c := range []struct {
		n    int
		want time.Duration
	}{{0, time.Second}, {1, 2 * time.Second}, {3, 8 * time.Second}, {5, 30 * time.Second}, {100, 30 * time.Second}} {
		if got := Backoff(c.n, time.Second, 30*time.Second); got != c.want {
			t.Errorf("Backoff(%d) = %v, want %v", c.n, got, c.want)
		}
	}
}
