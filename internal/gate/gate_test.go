package gate

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/proxy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/storetest"
)

type fixture struct {
	st               *store.Store
	g                *Gate
	now              time.Time
	roleA, roleB     *model.Role
	alice, bob       *model.User
	targetA, targetB *model.Target
	credA            *model.ProxyCredential // alice -> A
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st := storetest.SQLite(t)
	f := &fixture{st: st, now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	f.roleA = &model.Role{Name: "a", Permissions: []string{}}
	f.roleB = &model.Role{Name: "b", Permissions: []string{}}
	must(st.CreateRole(ctx, f.roleA, "t"))
	must(st.CreateRole(ctx, f.roleB, "t"))
	f.alice = &model.User{Username: "alice", Enabled: true}
	f.bob = &model.User{Username: "bob", Enabled: true}
	must(st.CreateUser(ctx, f.alice, "t"))
	must(st.CreateUser(ctx, f.bob, "t"))
	must(st.SetUserRoles(ctx, f.alice.ID, []string{f.roleA.ID}))
	must(st.SetUserRoles(ctx, f.bob.ID, []string{f.roleB.ID}))
	f.targetA = &model.Target{Name: "A", Roles: []model.Ref{{ID: f.roleA.ID}},
		AuthorizedEndpoints: []policy.Endpoint{
			{Host: "a.example.com", Protocols: []string{"https"}, Methods: []string{"GET", "POST"}, Paths: []string{"/api/**"}},
			{Host: "a.example.com", Protocols: []string{"https"}, Methods: []string{"GET"}, Paths: []string{"/public/*"}, AllowUnauthenticated: true},
		},
		UnauthorizedEndpoints: []policy.Endpoint{{Host: "a.example.com", Protocols: []string{"*"}, Methods: []string{"*"}, Paths: []string{"/api/admin/**"}}},
		Credential:            model.TargetCredential{Type: "token", BearerToken: "tok-A"}}
	f.targetB = &model.Target{Name: "B", Roles: []model.Ref{{ID: f.roleB.ID}},
		AuthorizedEndpoints: []policy.Endpoint{{Host: "b.example.com", Protocols: []string{"https"}, Methods: []string{"*"}, Paths: []string{"/**"}}},
		Credential:          model.TargetCredential{Type: "token", BearerToken: "tok-B"}}
	must(st.CreateTarget(ctx, f.targetA, "t"))
	must(st.CreateTarget(ctx, f.targetB, "t"))
	f.credA = &model.ProxyCredential{UserID: f.alice.ID, TargetID: f.targetA.ID, Name: "laptop", Enabled: true,
		NotBefore: f.now.Add(-time.Hour), NotAfter: f.now.Add(time.Hour), SourceAddress: []string{"127.0.0.0/8"},
		Secret: "ghp_alice_secret_value"}
	must(st.CreateCredential(ctx, f.credA, "t"))
	g, err := New(ctx, st, nil)
	must(err)
	g.Now = func() time.Time { return f.now }
	f.g = g
	return f
}

var client = netip.MustParseAddrPort("127.0.0.1:40000")

func req(secret, method, host, path string) *proxy.AuthRequest {
	return &proxy.AuthRequest{Client: client, Secret: secret, Scheme: "https", Host: host, Method: method, Path: path}
}

func TestAuthorize(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const secret = "ghp_alice_secret_value"
	tests := []struct {
		name    string
		req     *proxy.AuthRequest
		wantErr error  // sentinel, or nil
		denied  string // DeniedError reason substring
	}{
		{name: "allowed", req: req(secret, "GET", "a.example.com", "/api/pods")},
		{name: "allowed with default port", req: req(secret, "POST", "A.Example.Com:443", "/api/pods")},
		{name: "method not allowed", req: req(secret, "DELETE", "a.example.com", "/api/pods"), denied: policy.ReasonNoMatch},
		{name: "path outside", req: req(secret, "GET", "a.example.com", "/other"), denied: policy.ReasonNoMatch},
		{name: "unauthorized endpoint wins", req: req(secret, "GET", "a.example.com", "/api/admin/x"), denied: policy.ReasonUnauthorized},
		{name: "credential used for another target's host", req: req(secret, "GET", "b.example.com", "/x"), denied: policy.ReasonNoMatch},
		{name: "wrong port", req: req(secret, "GET", "a.example.com:8443", "/api/pods"), denied: policy.ReasonNoMatch},
		{name: "unknown secret", req: req("ghp_nope", "GET", "a.example.com", "/api/pods"), wantErr: proxy.ErrUnauthenticated},
		{name: "no secret, endpoint needs one", req: req("", "GET", "a.example.com", "/api/pods"), wantErr: proxy.ErrUnauthenticated},
		{name: "connect to own target", req: req(secret, "CONNECT", "a.example.com:443", "")},
		{name: "connect to other host", req: req(secret, "CONNECT", "b.example.com:443", ""), denied: "no endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := f.g.Authorize(ctx, tt.req)
			var de *proxy.DeniedError
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			case tt.denied != "":
				if !errors.As(err, &de) || !strings.Contains(de.Reason, tt.denied) {
					t.Fatalf("err = %v, want denial %q", err, tt.denied)
				}
			default:
				if err != nil || g == nil {
					t.Fatalf("Authorize = %v, %v; want a grant", g, err)
				}
				if g.Target.Credential.Token != "tok-A" || g.Session.UserName != "alice" || g.Session.CredentialID != f.credA.ID {
					t.Errorf("grant = %+v", g)
				}
			}
		})
	}
}

func TestAnonymousEndpointInjectsNothing(t *testing.T) {
	f := newFixture(t)
	g, err := f.g.Authorize(context.Background(), req("", "GET", "a.example.com", "/public/readme"))
	if err != nil {
		t.Fatal(err)
	}
	if !g.Unauthenticated || g.Target.Credential.Type != "" || g.Target.Credential.Token != "" {
		t.Errorf("anonymous grant carries a credential: %+v", g.Target.Credential)
	}
	// The same path with a method the anonymous endpoint does not allow stays closed.
	if _, err := f.g.Authorize(context.Background(), req("", "POST", "a.example.com", "/public/readme")); !errors.Is(err, proxy.ErrUnauthenticated) {
		t.Errorf("POST anonymous: %v", err)
	}
}

// TestChangesApplyOnReload checks each way access is lost, each applied by the next request after Reload.
func TestChangesApplyOnReload(t *testing.T) {
	ctx := context.Background()
	const secret = "ghp_alice_secret_value"
	tests := []struct {
		name   string
		change func(f *fixture) error
		reason string
	}{
		{"role removed", func(f *fixture) error { return f.st.SetUserRoles(ctx, f.alice.ID, nil) }, "no role"},
		{"user disabled", func(f *fixture) error { f.alice.Enabled = false; return f.st.UpdateUser(ctx, f.alice, "t") }, "user is disabled"},
		{"credential disabled", func(f *fixture) error { f.credA.Enabled = false; return f.st.UpdateCredential(ctx, f.credA, "t") }, "credential is disabled"},
		{"target disabled", func(f *fixture) error {
			t, _ := f.st.Target(ctx, f.targetA.ID)
			t.Disabled = true
			return f.st.UpdateTarget(ctx, t, "t")
		}, "target is disabled"},
		{"expired", func(f *fixture) error { f.now = f.now.Add(2 * time.Hour); return nil }, "expired"},
		{"not yet valid", func(f *fixture) error { f.now = f.now.Add(-2 * time.Hour); return nil }, "not valid yet"},
		{"source narrowed", func(f *fixture) error {
			f.credA.SourceAddress = []string{"10.0.0.0/8"}
			return f.st.UpdateCredential(ctx, f.credA, "t")
		}, "client address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if _, err := f.g.Authorize(ctx, req(secret, "GET", "a.example.com", "/api/x")); err != nil {
				t.Fatalf("before change: %v", err)
			}
			var rechecked []string
			f.g.OnReload = func(check func(string, netip.Addr) (string, bool)) {
				if reason, ok := check(f.credA.ID, client.Addr()); !ok {
					rechecked = append(rechecked, reason)
				}
			}
			if err := tt.change(f); err != nil {
				t.Fatal(err)
			}
			if err := f.g.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			_, err := f.g.Authorize(ctx, req(secret, "GET", "a.example.com", "/api/x"))
			var de *proxy.DeniedError
			if !errors.As(err, &de) || !strings.Contains(de.Reason, tt.reason) {
				t.Fatalf("after change: %v, want denial %q", err, tt.reason)
			}
			if tt.name != "not yet valid" && len(rechecked) == 0 {
				t.Errorf("Recheck did not report the credential as no longer authorized")
			}
		})
	}
}

func TestFailedSecretsAreRateLimited(t *testing.T) {
	f := newFixture(t)
	f.g.Limiter.Now = func() time.Time { return f.now }
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		if _, err := f.g.Authorize(ctx, req("ghp_guess", "GET", "a.example.com", "/api/x")); !errors.Is(err, proxy.ErrUnauthenticated) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	if _, err := f.g.Authorize(ctx, req("ghp_alice_secret_value", "GET", "a.example.com", "/api/x")); !errors.Is(err, proxy.ErrRateLimited) {
		t.Fatalf("after 20 failures, even a good secret from that source: %v, want rate limited", err)
	}
	other := req("ghp_alice_secret_value", "GET", "a.example.com", "/api/x")
	other.Client = netip.MustParseAddrPort("127.0.0.2:1")
	if _, err := f.g.Authorize(ctx, other); err != nil {
		t.Fatalf("another source is not limited: %v", err)
	}
}

func TestCredentialIDMustMatch(t *testing.T) {
	f := newFixture(t)
	r := req("ghp_alice_secret_value", "GET", "a.example.com", "/api/x")
	r.CredentialID = "someone-else"
	if _, err := f.g.Authorize(context.Background(), r); !errors.Is(err, proxy.ErrUnauthenticated) {
		t.Fatalf("mismatched credential id: %v", err)
	}
	r.CredentialID = f.credA.ID
	if _, err := f.g.Authorize(context.Background(), r); err != nil {
		t.Fatalf("matching credential id: %v", err)
	}
	// The owner's username works too (http://alice:SECRET@proxy); another user's name does not.
	r.CredentialID = "alice"
	if _, err := f.g.Authorize(context.Background(), r); err != nil {
		t.Fatalf("owner's username: %v", err)
	}
	for _, name := range []string{"bob", "Alice", "alice "} {
		r.CredentialID = name
		if _, err := f.g.Authorize(context.Background(), r); !errors.Is(err, proxy.ErrUnauthenticated) {
			t.Errorf("user part %q with alice's secret: %v, want unauthenticated", name, err)
		}
	}
}

func TestLastUseIsBatched(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.g.Authorize(ctx, req("ghp_alice_secret_value", "GET", "a.example.com", "/api/x")); err != nil {
		t.Fatal(err)
	}
	c, _ := f.st.Credential(ctx, f.credA.ID)
	if c.LastUsed != nil {
		t.Fatalf("last_used written synchronously on the request path")
	}
	f.g.Flush(ctx)
	c, _ = f.st.Credential(ctx, f.credA.ID)
	if c.LastUsed == nil || !c.LastUsed.Equal(f.now) {
		t.Fatalf("last_used after flush = %v, want %v", c.LastUsed, f.now)
	}
}

// TestRateLimitOnTheRealClock is TestFailedSecretsAreRateLimited without a clock of the limiter's own: the gate
// then skips the limiter until it records a failure, and must consult it from the first failure on.
func TestRateLimitOnTheRealClock(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	good := func(c netip.AddrPort) error {
		r := req("ghp_alice_secret_value", "GET", "a.example.com", "/api/x")
		r.Client = c
		_, err := f.g.Authorize(ctx, r)
		return err
	}
	if err := good(client); err != nil {
		t.Fatalf("before any failure: %v", err)
	}
	for i := range 20 {
		if _, err := f.g.Authorize(ctx, req("ghp_guess", "GET", "a.example.com", "/api/x")); !errors.Is(err, proxy.ErrUnauthenticated) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	if err := good(client); !errors.Is(err, proxy.ErrRateLimited) {
		t.Fatalf("after 20 failures, even a good secret from that source: %v, want rate limited", err)
	}
	if err := good(netip.MustParseAddrPort("127.0.0.2:1")); err != nil {
		t.Fatalf("another source is not limited: %v", err)
	}
}

// TestLastUseSurvivesReload checks the lock-free last-use marks: uses before and after a snapshot rebuild are
// flushed with the latest time, and a flush with nothing new writes nothing older.
func TestLastUseSurvivesReload(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	use := func() {
		t.Helper()
		if _, err := f.g.Authorize(ctx, req("ghp_alice_secret_value", "GET", "a.example.com", "/api/x")); err != nil {
			t.Fatal(err)
		}
	}
	lastUsed := func() time.Time {
		t.Helper()
		c, err := f.st.Credential(ctx, f.credA.ID)
		if err != nil || c.LastUsed == nil {
			t.Fatalf("credential: %v, last used %v", err, c)
		}
		return *c.LastUsed
	}
	first := f.now
	use()
	if err := f.g.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	f.now = first.Add(time.Minute)
	use()
	use()
	f.g.Flush(ctx)
	if got := lastUsed(); !got.Equal(f.now) {
		t.Fatalf("last used after reload and flush = %v, want %v", got, f.now)
	}
	f.now = first.Add(2 * time.Minute)
	use()
	f.g.Flush(ctx)
	f.g.Flush(ctx) // nothing new: must not write an older time or fail
	if got := lastUsed(); !got.Equal(f.now) {
		t.Fatalf("last used after second flush = %v, want %v", got, f.now)
	}
}

// TestConnectWithoutCredentialNeedsATarget pins the refusal of tunnels nobody serves: before it, any CONNECT
// without Proxy-Authorization opened a tunnel and cost the proxy a leaf certificate for whatever host it named.
func TestConnectWithoutCredentialNeedsATarget(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	wild := &model.Target{Name: "W", Roles: []model.Ref{{ID: f.roleB.ID}},
		AuthorizedEndpoints: []policy.Endpoint{
			{Host: "*.wild.example", Protocols: []string{"https"}, Methods: []string{"GET"}, Paths: []string{"/**"}},
			{Host: "nat.example:8443", Protocols: []string{"https"}, Methods: []string{"GET"}, Paths: []string{"/**"}, NATTargetHost: "10.9.9.9"},
		},
		Credential: model.TargetCredential{Type: "token", BearerToken: "tok-W"}}
	off := &model.Target{Name: "off", Roles: []model.Ref{{ID: f.roleB.ID}}, Disabled: true,
		AuthorizedEndpoints: []policy.Endpoint{{Host: "off.example", Protocols: []string{"https"}, Methods: []string{"GET"}, Paths: []string{"/**"}}},
		Credential:          model.TargetCredential{Type: "token", BearerToken: "tok-off"}}
	for _, tg := range []*model.Target{wild, off} {
		if err := f.st.CreateTarget(ctx, tg, "t"); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.g.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host string
		ok   bool
	}{
		{"a.example.com:443", true},
		{"a.example.com", true},
		{"A.EXAMPLE.COM.:443", true},
		{"x.y.wild.example:443", true},
		{"nat.example:8443", true},
		{"a.example.com:8443", false}, // the right host on a port no endpoint names
		{"wild.example:443", false},   // a wildcard needs a label below it
		{"nat.example:443", false},
		{"10.9.9.9:443", false}, // a NAT target host is where Gatehouse connects, not a name clients use
		{"off.example:443", false},
		{"unknown.example:443", false},
		{"127.0.0.1:443", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			g, err := f.g.Authorize(ctx, req("", "CONNECT", tt.host, ""))
			if tt.ok {
				if err != nil || g != nil {
					t.Fatalf("Authorize = %v, %v; want the tunnel opened without a grant", g, err)
				}
				return
			}
			if !errors.Is(err, proxy.ErrNoTarget) {
				t.Fatalf("Authorize = %v, %v; want ErrNoTarget", g, err)
			}
			// With a valid credential too, before the credential is even looked at.
			if _, err := f.g.Authorize(ctx, req(f.credA.Secret, "CONNECT", tt.host, "")); !errors.Is(err, proxy.ErrNoTarget) {
				t.Fatalf("with a credential: %v, want ErrNoTarget", err)
			}
		})
	}
}

// TestValidityWindowEdges: a credential is valid from not_before on and until just before not_after; at
// not_after it has expired, at the first request of the next session and at the recheck of an open one.
func TestValidityWindowEdges(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	start, end := f.now.Add(-time.Hour), f.now.Add(time.Hour)
	for _, tc := range []struct {
		at     time.Time
		denial string // "" for valid
	}{
		{start.Add(-time.Nanosecond), "not valid yet"},
		{start, ""},
		{end.Add(-time.Nanosecond), ""},
		{end, "expired"},
	} {
		f.now = tc.at
		_, err := f.g.Authorize(ctx, req(f.credA.Secret, "GET", "a.example.com", "/api/pods"))
		var de *proxy.DeniedError
		switch {
		case tc.denial == "" && err != nil:
			t.Errorf("at %v: %v, want a grant", tc.at, err)
		case tc.denial != "" && (!errors.As(err, &de) || !strings.Contains(de.Reason, tc.denial)):
			t.Errorf("at %v: %v, want a denial for %q", tc.at, err, tc.denial)
		}
		s := f.g.snap.Load()
		if reason, ok := f.g.checkCredential(s, f.credA.ID, client.Addr()); ok != (tc.denial == "" || tc.denial == "not valid yet") {
			t.Errorf("at %v: recheck = %q, %v", tc.at, reason, ok)
		}
	}
}
