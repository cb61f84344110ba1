package resilience_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

const (
	rolesAPI = "/role-store/api/v1"
	usersAPI = "/local-user-store/api/v1"
	proxyAPI = "/api-proxy/api/v1"
	connsAPI = "/connection-manager/api/v1"
)

// fixture is an in-process Gatehouse with one audited target in front of the origin (plain and TLS), plus an
// endpoint on a port where nothing listens.
type fixture struct {
	gh     *testserver.Instance
	adm    string
	org    *origin
	dead   string
	secret string
	pool   *x509.CertPool
	l      *ledger
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{gh: testserver.Start(t, testserver.Options{}), l: newLedger()}
	f.org = startOrigin(t, f.l)
	f.adm = f.gh.AdminToken()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.dead = ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused
	role := f.gh.Create(rolesAPI+"/roles", f.adm, map[string]any{"name": "api-users", "permissions": []string{"api-proxy-credentials-own"}})
	user := f.gh.Create(usersAPI+"/users", f.adm, map[string]any{"username": "alice", "password": "Alice-pass-1234567", "enabled": true})
	f.gh.JSON("PUT", rolesAPI+"/users/"+user+"/roles", f.adm, []map[string]string{{"id": role}}, http.StatusOK, nil)
	ep := func(host, proto string) map[string]any {
		return map[string]any{"host": host, "protocols": []string{proto}, "methods": []string{"GET", "POST"}, "paths": []string{"/**"}}
	}
	tlsHost := f.org.tls.Listener.Addr().String()
	target := f.gh.Create(proxyAPI+"/api-targets", f.adm, map[string]any{
		"name": "audited", "roles": []map[string]string{{"id": role}}, "audit_enabled": true, "tls_trust_anchors": f.org.caPEM,
		"authorized_endpoints": []map[string]any{ep(tlsHost, "https"), ep(f.org.plain.Listener.Addr().String(), "http"), ep(f.dead, "http")},
		"unauthorized_endpoints": []map[string]any{
			{"host": tlsHost, "protocols": []string{"*"}, "methods": []string{"*"}, "paths": []string{"/admin/**"}},
		},
		"target_credential": map[string]any{"type": "token", "bearer_token": targetToken},
	})
	credPath := proxyAPI + "/users/" + user + "/client-credentials"
	cred := f.gh.Create(credPath, f.adm, map[string]any{"name": "laptop", "target": map[string]string{"id": target}})
	_, secret := f.gh.Do("GET", credPath+"/"+cred+"/secret", f.gh.Token("alice", "Alice-pass-1234567"), nil) // only the owner reads it
	f.secret = strings.TrimSpace(string(secret))
	var conf struct {
		Chain string `json:"ca_certificate_chain"`
	}
	f.gh.JSON("GET", proxyAPI+"/conf", f.adm, nil, http.StatusOK, &conf)
	f.pool = x509.NewCertPool()
	if !f.pool.AppendCertsFromPEM([]byte(conf.Chain)) {
		t.Fatal("no proxy CA in /conf")
	}
	return f
}

// outcome counts what the load saw, by action.
type outcome struct {
	mu         sync.Mutex
	byAction   map[string]map[int]int // action -> status -> count (0 = no response)
	unexpected []string
}

func (o *outcome) add(action string, status int, ok bool, detail string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.byAction[action] == nil {
		o.byAction[action] = map[int]int{}
	}
	o.byAction[action][status]++
	if !ok && len(o.unexpected) < 20 {
		o.unexpected = append(o.unexpected, action+": "+detail)
	}
}

// TestFaultsUnderLoad keeps workers busy with a mix of normal requests and faults (refused, reset and stalled
// origins; clients hanging up mid-upload and mid-download; denied requests; a bad secret), makes the recordings
// directory unwritable for a while in the middle, and then checks the aftermath.
func TestFaultsUnderLoad(t *testing.T) {
	f := newFixture(t)
	tlsBase := "https://" + f.org.tls.Listener.Addr().String()
	plainBase := "http://" + f.org.plain.Listener.Addr().String()
	l := f.l
	client := proxyClient(f.gh.Server.ProxyAddr(), "127.0.0.1", f.pool, 10*time.Second)
	impatient := proxyClient(f.gh.Server.ProxyAddr(), "127.0.0.1", f.pool, 300*time.Millisecond)
	// Bad secrets come from their own address: the failure limiter rightly blocks a source that keeps guessing,
	// and that must not block the rest of the load.
	guesser := proxyClient(f.gh.Server.ProxyAddr(), "127.0.0.2", f.pool, 10*time.Second)
	ctx := context.Background()
	// Warm-up: the session, the upstream pools and the leaf certificate exist before the baseline is taken.
	for range 3 {
		if st, err := send(ctx, client, "GET", tlsBase+"/ok", f.secret, l.id(true), nil, 0); st != http.StatusOK {
			t.Fatalf("warm-up: %d %v", st, err)
		}
		if st, err := send(ctx, client, "GET", plainBase+"/ok", f.secret, l.id(true), nil, 0); st != http.StatusOK {
			t.Fatalf("warm-up plain: %d %v", st, err)
		}
	}
	client.CloseIdleConnections()
	runtime.GC()
	baseGoroutines, baseFDs := runtime.NumGoroutine(), openFDs(t)
	var baseMem runtime.MemStats
	runtime.ReadMemStats(&baseMem)

	// Every action says what it sends and which outcomes are acceptable. 503 is acceptable for audited requests
	// while recording is broken; nothing denied may ever come back 200.
	okOr503 := func(st int) bool { return st == http.StatusOK || st == http.StatusServiceUnavailable }
	actions := []struct {
		name string
		run  func(ctx context.Context) (int, bool, string)
	}{
		{"get", func(ctx context.Context) (int, bool, string) {
			st, err := send(ctx, client, "GET", tlsBase+"/ok", f.secret, l.id(true), nil, 0)
			return st, okOr503(st), errText(err)
		}},
		{"upload", func(ctx context.Context) (int, bool, string) {
			st, err := send(ctx, client, "POST", tlsBase+"/upload", f.secret, l.id(true), bytes.NewReader(make([]byte, 256<<10)), 256<<10)
			return st, okOr503(st) && err == nil, errText(err)
		}},
		{"download", func(ctx context.Context) (int, bool, string) {
			st, err := send(ctx, client, "GET", tlsBase+"/big", f.secret, l.id(true), nil, 0)
			return st, okOr503(st) && err == nil, errText(err)
		}},
		{"hang up mid-download", func(ctx context.Context) (int, bool, string) {
			err := abortDownload(ctx, client, tlsBase+"/big", f.secret, l.id(true))
			return 0, true, errText(err)
		}},
		{"hang up mid-upload", func(ctx context.Context) (int, bool, string) {
			err := abortUpload(f.gh.Server.ProxyAddr(), f.org.plain.Listener.Addr().String(), f.secret, l.id(true))
			return 0, true, errText(err)
		}},
		{"origin resets", func(ctx context.Context) (int, bool, string) {
			st, err := send(ctx, client, "GET", plainBase+"/reset", f.secret, l.id(true), nil, 0)
			return st, st != http.StatusOK || err != nil, errText(err)
		}},
		{"origin stalls", func(ctx context.Context) (int, bool, string) {
			st, err := send(ctx, impatient, "GET", plainBase+"/stall", f.secret, l.id(true), nil, 0)
			return st, st != http.StatusOK, errText(err)
		}},
		{"origin refuses", func(ctx context.Context) (int, bool, string) {
			st, err := send(ctx, client, "GET", "http://"+f.dead+"/ok", f.secret, l.id(true), nil, 0)
			return st, st == http.StatusBadGateway || st == http.StatusServiceUnavailable, errText(err)
		}},
		{"denied path", func(ctx context.Context) (int, bool, string) {
			st, err := send(ctx, client, "GET", tlsBase+"/admin/users", f.secret, l.id(false), nil, 0)
			return st, st == http.StatusForbidden, errText(err)
		}},
		{"bad secret", func(ctx context.Context) (int, bool, string) {
			st, err := send(ctx, guesser, "GET", plainBase+"/ok", "not-a-valid-secret", l.id(false), nil, 0)
			return st, st >= 400 && st < 500, errText(err)
		}},
	}

	duration := pick(15*time.Second, 5*time.Minute)
	const workers = 8
	out := &outcome{byAction: map[string]map[int]int{}}
	loadCtx, stop := context.WithTimeout(ctx, duration)
	defer stop()
	var wg sync.WaitGroup
	var sent atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; loadCtx.Err() == nil && i < 1_000_000; i++ {
				a := actions[i%len(actions)]
				st, ok, detail := a.run(loadCtx)
				if loadCtx.Err() != nil {
					return // the load's own end, not the proxy
				}
				sent.Add(1)
				out.add(a.name, st, ok, detail)
			}
		}()
	}
	// A third of the way in, recording breaks for a while, then comes back.
	time.Sleep(duration / 3)
	undo, broke := unwritable(t, filepath.Join(f.gh.Cfg.DataDir, "recordings"))
	time.Sleep(pick(2*time.Second, 20*time.Second))
	undo()
	wg.Wait()
	t.Logf("%d requests in %s; outcomes by action: %v", sent.Load(), duration, out.byAction)
	for _, u := range out.unexpected {
		t.Errorf("unexpected outcome: %s", u)
	}
	if sent.Load() < int64(len(actions)) {
		t.Fatalf("the load sent only %d requests", sent.Load())
	}
	if broke {
		status := func() string {
			var s map[string]any
			f.gh.JSON("GET", proxyAPI+"/status", f.adm, nil, http.StatusOK, &s)
			r, _ := s["recording"].(string)
			return r
		}
		waitFor(t, "recording healthy again", 15*time.Second, func() bool { return status() == "ok" })
	}
	if st, err := send(ctx, client, "GET", tlsBase+"/ok", f.secret, l.id(true), nil, 0); st != http.StatusOK {
		t.Errorf("request after the faults: %d %v", st, err)
	}

	t.Run("no goroutine, descriptor or memory leak", func(t *testing.T) {
		client.CloseIdleConnections()
		impatient.CloseIdleConnections()
		// The proxy's pool of idle connections to the origin is a pool, not a leak: empty it before counting.
		f.gh.Server.CloseIdleUpstreamConnections()
		// Nor is the trail index's backlog (exchanges waiting to be indexed, bodies and all, after minutes of load
		// on a busy machine): wait for it to drain.
		fctx, fcancel := context.WithTimeout(ctx, 60*time.Second)
		if err := f.gh.Server.TrailIndexer().Flush(fctx); err != nil {
			t.Errorf("the trail index did not drain: %v", err)
		}
		fcancel()
		var g, fds int
		var budget uint64
		var m runtime.MemStats
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			runtime.GC()
			runtime.ReadMemStats(&m)
			f.gh.Server.CloseIdleUpstreamConnections()
			f.gh.Client.CloseIdleConnections()
			g, fds = runtime.NumGoroutine(), openFDs(t)
			// The test keeps the server's debug log in memory (testserver's capture): the harness's bytes, not
			// the server's.
			budget = 2*baseMem.HeapInuse + 16<<20 + uint64(f.gh.Logs.Len())
			if g <= baseGoroutines+10 && fds <= baseFDs+10 && m.HeapInuse <= budget {
				return
			}
		}
		if g > baseGoroutines+10 {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines, baseline %d:\n%s", g, baseGoroutines, buf[:runtime.Stack(buf, true)])
		}
		if fds > baseFDs+10 {
			t.Errorf("%d open descriptors, baseline %d", fds, baseFDs)
		}
		if m.HeapInuse > budget {
			t.Errorf("heap in use %d MiB, baseline %d MiB, budget %d MiB (with %d MiB of captured log)", m.HeapInuse>>20,
				baseMem.HeapInuse>>20, budget>>20, f.gh.Logs.Len()>>20)
		}
	})

	t.Run("closed sessions' trails verify", func(t *testing.T) {
		var list struct {
			Items []struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"items"`
		}
		f.gh.JSON("GET", connsAPI+"/connections?limit=100", f.adm, nil, http.StatusOK, &list)
		if len(list.Items) == 0 {
			t.Fatal("no sessions recorded")
		}
		for _, c := range list.Items {
			if c.Status == "CONNECTED" {
				f.gh.JSON("POST", connsAPI+"/terminate/connection/"+c.ID, f.adm, nil, http.StatusOK, nil)
			}
		}
		for _, c := range list.Items {
			var rep struct{ OK, Closed bool }
			waitFor(t, "trail of "+c.ID+" sealed", 15*time.Second, func() bool {
				r, err := f.gh.Server.Trails().Verify(ctx, c.ID)
				rep.OK, rep.Closed = r.OK, r.Closed
				return err == nil && r.Closed
			})
			if !rep.OK {
				t.Errorf("trail %s does not verify", c.ID)
			}
		}
	})

	t.Run("origin saw only authorized requests", func(t *testing.T) {
		n := f.org.check(t)
		t.Logf("origin received %d requests", n)
	})

	t.Run("store integrity", func(t *testing.T) {
		f.gh.Stop()
		integrityCheck(t, filepath.Join(f.gh.Cfg.DataDir, "gatehouse.db"))
	})
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
