// Package testserver starts a real Gatehouse in-process for end-to-end tests: real listeners on loopback, real
// TLS from Gatehouse's own CA, a real SQLite file or PostgreSQL database, and a client that trusts only that CA.
package testserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/testpg"
)

// AdminPassword is the admin password every test server starts with.
const AdminPassword = "Test-admin-pass-1"

// Options change how the server starts.
type Options struct {
	// Postgres selects a fresh PostgreSQL database (the package must call testpg.Main from TestMain).
	Postgres bool
	// Configure edits the configuration before start.
	Configure func(*config.Config)
	// LoginLimiter replaces the default login limiter (server.Options.LoginLimiter).
	LoginLimiter auth.LoginLimiter
}

// Instance is a running test server.
type Instance struct {
	t      testing.TB
	Cfg    config.Config
	URL    string // https://127.0.0.1:port of the API
	Client *http.Client
	Server *server.Server
	Logs   *SyncBuffer
	Out    *SyncBuffer // what serve prints to stdout (the first-start message)
	cancel context.CancelFunc
	done   chan error

	limiter auth.LoginLimiter
}

// SyncBuffer is a bytes.Buffer safe for concurrent writes, for capturing logs.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Len returns how many bytes were written so far.
func (b *SyncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Start starts a server on loopback ports with a fresh data dir and stops it at test cleanup.
func Start(t testing.TB, opts Options) *Instance {
	t.Helper()
	cfg := config.Config{
		DataDir:     t.TempDir(),
		APIListen:   "127.0.0.1:0",
		ProxyListen: "127.0.0.1:0",
		TokenTTL:    30 * time.Minute,
		LogLevel:    "debug",
		LogFormat:   "json",
	}
	if opts.Postgres {
		cfg.DB = testpg.New(t)
	}
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	i := &Instance{t: t, Cfg: cfg, Logs: &SyncBuffer{}, Out: &SyncBuffer{}, limiter: opts.LoginLimiter}
	i.start()
	t.Cleanup(i.Stop)
	return i
}

func (i *Instance) start() {
	i.t.Helper()
	log := slog.New(slog.NewJSONHandler(i.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, &i.Cfg, server.Options{Log: log, Out: i.Out, AdminPassword: AdminPassword, LoginLimiter: i.limiter})
	if err != nil {
		cancel()
		i.t.Fatalf("start gatehouse: %v", err)
	}
	i.Server, i.cancel, i.done = srv, cancel, make(chan error, 1)
	ready := make(chan struct{})
	go func() { i.done <- srv.Serve(ctx, func(*server.Server) { close(ready) }) }()
	select {
	case <-ready:
	case err := <-i.done:
		i.t.Fatalf("serve: %v", err)
	}
	i.URL = "https://" + srv.APIAddr()
	pool := x509.NewCertPool()
	pool.AddCert(srv.CA().Root())
	i.Client = &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		Timeout:   30 * time.Second,
	}
	// The API is served from the moment Serve runs; wait for health so tests start from a ready server.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := i.Client.Get(i.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			i.t.Fatalf("gatehouse did not become healthy: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop shuts the server down gracefully; calling it twice is harmless.
func (i *Instance) Stop() {
	if i.cancel == nil {
		return
	}
	i.cancel()
	if err := <-i.done; err != nil {
		i.t.Errorf("serve returned: %v", err)
	}
	i.cancel = nil
	i.Client.CloseIdleConnections()
}

// Cancelled says whether Stop has run.
func (i *Instance) Cancelled() bool { return i.cancel == nil }

// Restart stops the server and starts it again on the same data dir and database (on new ports).
func (i *Instance) Restart() {
	i.t.Helper()
	i.Stop()
	i.Cfg.APIListen, i.Cfg.ProxyListen = "127.0.0.1:0", "127.0.0.1:0"
	i.start()
}

// Token logs in with the password grant through the built-in gatehouse-cli client and returns the access token.
func (i *Instance) Token(username, password string) string {
	i.t.Helper()
	form := url.Values{"grant_type": {"password"}, "client_id": {"gatehouse-cli"}, "username": {username}, "password": {password}}
	resp, err := i.Client.PostForm(i.URL+"/auth/api/v1/oauth/token", form)
	if err != nil {
		i.t.Fatalf("token: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(b, &out) != nil || out.AccessToken == "" {
		i.t.Fatalf("token for %s: %d %s", username, resp.StatusCode, b)
	}
	return out.AccessToken
}

// AdminToken logs in as the first-start admin.
func (i *Instance) AdminToken() string { return i.Token("admin", AdminPassword) }

// Do sends a request with an optional bearer token and JSON body and returns the status and body.
func (i *Instance) Do(method, path, token string, body any) (int, []byte) {
	i.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			i.t.Fatalf("marshal: %v", err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, i.URL+path, rd)
	if err != nil {
		i.t.Fatalf("request: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := i.Client.Do(req)
	if err != nil {
		i.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		i.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// JSON sends a request, fails the test unless the status is want, and decodes the answer into out (if not nil).
func (i *Instance) JSON(method, path, token string, body any, want int, out any) {
	i.t.Helper()
	status, b := i.Do(method, path, token, body)
	if status != want {
		i.t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			i.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// Create POSTs body and returns the id of the created object.
func (i *Instance) Create(path, token string, body any) string {
	i.t.Helper()
	var out struct {
		ID string `json:"id"`
	}
	i.JSON("POST", path, token, body, http.StatusCreated, &out)
	if out.ID == "" {
		i.t.Fatalf("POST %s: no id in answer", path)
	}
	return out.ID
}
