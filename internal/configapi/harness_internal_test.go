package configapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/serviceapi"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/storetest"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// harness is a Service over a real SQLite store behind a real HTTPS test server, with a fake clock.
type harness struct {
	t     *testing.T
	svc   *Service
	st    *store.Store
	clock *fakeClock
	srv   *httptest.Server
}

const testPassword = "Correct-horse-1"

func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx := context.Background()
	keys := storetest.Keys(t)
	st := storetest.Open(t, filepath.Join(t.TempDir(), "gh.db"), keys)
	clock := &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	h := &harness{t: t, st: st, clock: clock}
	h.user("admin", auth.AllPermissions...)
	h.user("viewer", auth.ConfigView)
	api := &serviceapi.API{Store: st, Tokens: auth.NewTokenIssuer(keys.SigningKey("access-token"), time.Hour)}
	h.svc = &Service{Store: st, Principals: api, Now: clock.Now}
	if err := h.svc.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.svc.Routes(mux)
	h.srv = httptest.NewTLSServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *harness) user(name string, perms ...string) {
	h.t.Helper()
	ctx := context.Background()
	hash, err := secrets.HashPassword(testPassword)
	if err != nil {
		h.t.Fatal(err)
	}
	u := &model.User{Username: name, Enabled: true, Source: "local", PasswordHash: hash}
	if err := h.st.CreateUser(ctx, u, "test"); err != nil {
		h.t.Fatal(err)
	}
	r := &model.Role{Name: name + "-role", Permissions: perms}
	if err := h.st.CreateRole(ctx, r, "test"); err != nil {
		h.t.Fatal(err)
	}
	if err := h.st.SetUserRoles(ctx, u.ID, []string{r.ID}); err != nil {
		h.t.Fatal(err)
	}
}

// login logs in with Basic and returns the session id.
func (h *harness) login(name string) string {
	h.t.Helper()
	req, _ := http.NewRequest("GET", h.srv.URL+"/api/authentication", nil)
	req.SetBasicAuth(name, testPassword)
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "session_id" && resp.StatusCode == 200 {
			return c.Value
		}
	}
	b, _ := io.ReadAll(resp.Body)
	h.t.Fatalf("login %s: %d %s", name, resp.StatusCode, b)
	return ""
}

// do sends a request with the session_id header and returns status and body.
func (h *harness) do(method, path, session string, body any) (int, []byte) {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, h.srv.URL+path, rd)
	if session != "" {
		req.Header.Set("session_id", session)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (h *harness) must(method, path, session string, body any, want int) map[string]any {
	h.t.Helper()
	status, b := h.do(method, path, session, body)
	if status != want {
		h.t.Fatalf("%s %s: %d, want %d: %s", method, path, status, want, b)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		h.t.Fatalf("%s %s: %v: %s", method, path, err, b)
	}
	return out
}

func errorCode(t *testing.T, b []byte) string {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("not an error body: %s", b)
	}
	return e.Error.Code
}
