package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/cli"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// connectRun is one `gatehouse connect` running in-process until its context is cancelled.
type connectRun struct {
	out, errb *testserver.SyncBuffer
	cancel    context.CancelFunc
	done      chan int
}

// startConnect runs the CLI with args in the background.
func startConnect(t *testing.T, args ...string) *connectRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &connectRun{out: &testserver.SyncBuffer{}, errb: &testserver.SyncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() { r.done <- cli.RunWithStdin(ctx, args, strings.NewReader(""), r.out, r.errb) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

var forwardingLine = regexp.MustCompile(`Forwarding http://(127\.0\.0\.1:\d+) `)

// addr waits (bounded) for the listening line and returns the local address.
func (r *connectRun) addr(t *testing.T) string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := forwardingLine.FindStringSubmatch(r.out.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-r.done:
			r.done <- code
			t.Fatalf("connect exited %d before listening\nstdout: %s\nstderr: %s", code, r.out, r.errb)
		default:
		}
	}
	t.Fatalf("connect did not start listening\nstdout: %s\nstderr: %s", r.out, r.errb)
	return ""
}

// cliLogin points the CLI at a private config dir and logs it in as alice.
func cliLogin(t *testing.T, f *fixture) {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	for _, v := range []string{"GATEHOUSE_TOKEN", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "GATEHOUSE_SERVER"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	caFile := filepath.Join(home, "api-root.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.gh.Server.CA().Root().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := cli.RunWithStdin(context.Background(), []string{"login", "--server", f.gh.URL, "--username", "alice",
		"--password-stdin", "--ca-file", caFile}, strings.NewReader(userPassword+"\n"), &out, &errb); code != 0 {
		t.Fatalf("login: %d %s %s", code, out.String(), errb.String())
	}
}

// directClient is a client with no proxy, no CA and no token: what `connect` is for.
func directClient(t *testing.T) *http.Client {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 32}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func TestConnect(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	// A target whose only host is a name that resolves nowhere: only the gateway's NAT reaches the origin.
	const token = "conn-upstream-token-55aa"
	target := f.gh.Create(proxyAPI+"/api-targets", f.adm, map[string]any{
		"name": "local-api", "roles": []map[string]string{{"id": f.roleID}}, "audit_enabled": true, "tls_trust_anchors": f.ca.pem,
		"authorized_endpoints": []map[string]any{
			{"host": f.natHTTPS(), "protocols": []string{"https"}, "methods": []string{"GET", "POST"}, "paths": []string{"/api/**"}, "nat_target_host": "127.0.0.1"},
		},
		"target_credential": map[string]any{"type": "token", "bearer_token": token},
	})
	c := f.credential(target, "laptop", nil)
	// Reading the target lets connect pick its host; TestConnectForbiddenTarget covers users who may not.
	viewers := f.gh.Create(rolesAPI+"/roles", f.adm, map[string]any{"name": "viewers", "permissions": []string{"api-targets-view"}})
	f.setRoles(f.roleID, viewers)
	cliLogin(t, f)

	run := startConnect(t, "connect", "local-api", "--listen", "127.0.0.1:0")
	base := "http://" + run.addr(t)
	hc := directClient(t)

	t.Run("go client", func(t *testing.T) {
		f := f.in(t)
		f.https.Reset()
		// The client's own Authorization is replaced by the credential: it can neither leak nor pick another one.
		st, body := f.do(hc, "GET", base+"/api/items?page=2", "client-junk", "")
		if st != 200 || !strings.Contains(body, `"path":"/api/items"`) {
			t.Fatalf("GET: %d %s", st, body)
		}
		reqs := f.https.Requests()
		if len(reqs) != 1 {
			t.Fatalf("origin saw %d requests", len(reqs))
		}
		checkInjected(t, reqs[0], token, c.Secret)
		if reqs[0].Host != f.natHTTPS() || reqs[0].Query != "page=2" {
			t.Errorf("origin saw host %q query %q", reqs[0].Host, reqs[0].Query)
		}
		noSecret(t, "the answer", body, token, c.Secret)
	})

	t.Run("denied path", func(t *testing.T) {
		f := f.in(t)
		f.https.Reset()
		st, body := f.do(hc, "GET", base+"/other", "", "")
		if st != http.StatusForbidden || len(f.https.Requests()) != 0 {
			t.Fatalf("GET /other: %d %s, origin saw %d", st, body, len(f.https.Requests()))
		}
	})

	t.Run("web pages cannot use it", func(t *testing.T) {
		f := f.in(t)
		f.https.Reset()
		for name, set := range map[string]func(*http.Request){
			"cross-site": func(r *http.Request) {
				r.Header.Set("Sec-Fetch-Site", "cross-site")
				r.Header.Set("Origin", "https://evil.example")
			},
			"rebinding": func(r *http.Request) { r.Host = "evil.example:" + port(strings.TrimPrefix(base, "http://")) },
		} {
			req, _ := http.NewRequest("POST", base+"/api/echo", strings.NewReader(`{"steal":1}`))
			set(req)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "CONNECTOR_REFUSED") {
				t.Errorf("%s: %d %s", name, resp.StatusCode, b)
			}
		}
		if n := len(f.https.Requests()); n != 0 {
			t.Errorf("refused browser requests reached the origin %d times", n)
		}
	})

	t.Run("concurrent keep-alive and streaming", func(t *testing.T) {
		f := f.in(t)
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range 3 {
					want := fmt.Sprintf(`{"n":%d,"j":%d}`, i, j)
					resp, err := hc.Post(base+"/api/echo", "application/json", strings.NewReader(want))
					if err != nil {
						errs <- err
						return
					}
					got, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated || string(got) != want {
						errs <- fmt.Errorf("echo %s: %d %s", want, resp.StatusCode, got)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		// A streamed request body (chunked, no length) and a large answer.
		pr, pw := io.Pipe()
		go func() {
			for range 64 {
				pw.Write(bytes.Repeat([]byte("x"), 1024))
			}
			pw.Close()
		}()
		resp, err := hc.Post(base+"/api/echo", "text/plain", pr)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || len(got) != 64*1024 {
			t.Errorf("streamed echo: %d, %d bytes", resp.StatusCode, len(got))
		}
		if st, body := f.do(hc, "GET", base+"/api/big", "", ""); st != 200 || len(body) != bigBody {
			t.Errorf("big: %d, %d bytes", st, len(body))
		}
	})

	t.Run("curl", func(t *testing.T) {
		f := f.in(t)
		f.https.Reset()
		out, err := exec.Command("curl", "-sS", "--noproxy", "*", "-w", "\n%{http_code}", base+"/api/curl").CombinedOutput()
		if err != nil || !strings.HasSuffix(string(out), "\n200") || !strings.Contains(string(out), `"path":"/api/curl"`) {
			t.Fatalf("curl: %v\n%s", err, out)
		}
		reqs := f.https.Requests()
		if len(reqs) != 1 {
			t.Fatalf("origin saw %d requests", len(reqs))
		}
		checkInjected(t, reqs[0], token, c.Secret)
	})

	t.Run("trail", func(t *testing.T) {
		f := f.in(t)
		id := f.session(c.ID)
		status, raw := f.gh.Do("GET", connsAPI+"/connections/"+id+"/trail?limit=1000", f.adm, nil)
		if status != 200 {
			t.Fatalf("trail: %d %s", status, raw)
		}
		var trail struct {
			Items []trailExchange `json:"items"`
		}
		if err := json.Unmarshal(raw, &trail); err != nil {
			t.Fatal(err)
		}
		var urls []string
		for _, x := range trail.Items {
			urls = append(urls, x.URL)
		}
		joined := strings.Join(urls, " ")
		for _, want := range []string{"https://" + f.natHTTPS() + "/api/items?page=2", "https://" + f.natHTTPS() + "/api/curl"} {
			if !strings.Contains(joined, want) {
				t.Errorf("trail has no exchange %s; has %v", want, urls)
			}
		}
		noSecret(t, "the trail", string(raw), c.Secret, token)
	})

	t.Run("revoked while running", func(t *testing.T) {
		f := f.in(t)
		f.gh.JSON("PUT", c.path(f.userID), f.adm, map[string]any{"enabled": false}, http.StatusOK, nil)
		f.https.Reset()
		var st int
		var body string
		// The gateway applies the change within a bounded time; poll until it refuses.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if st, body = f.do(hc, "GET", base+"/api/after", "", ""); st != 200 {
				break
			}
			f.https.Reset()
		}
		if st != http.StatusProxyAuthRequired && st != http.StatusForbidden {
			t.Fatalf("after disabling the credential: %d %s", st, body)
		}
		if len(f.https.Requests()) != 0 {
			t.Errorf("a refused request reached the origin")
		}
		// Starting again with the disabled credential fails at once with a clear message.
		t.Setenv("GATEHOUSE_TOKEN", c.Secret)
		var out, errb bytes.Buffer
		code := cli.RunWithStdin(context.Background(), []string{"connect", "local-api", "--listen", "127.0.0.1:0"}, strings.NewReader(""), &out, &errb)
		if code == 0 || !strings.Contains(errb.String(), "the gateway refused the tunnel") || !strings.Contains(errb.String(), "revoked") {
			t.Errorf("connect with a disabled credential: exit %d\n%s", code, errb.String())
		}
	})
}

// TestConnectWithoutLogin runs the connector from flags alone (secret, host, proxy, CA file) and checks that a
// wrong secret is refused at start, and that a non-loopback listener is refused unless asked for.
func TestConnectWithoutLogin(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	c := f.credential(f.alpha, "flags", nil)
	tokenFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(tokenFile, []byte(c.Secret+"\n"), 0o600)
	badFile := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(badFile, []byte("ghp_wrong-secret-0000"), 0o600)
	flags := func(secretFile string) []string {
		return []string{"connect", "alpha", "--listen", "127.0.0.1:0", "--token-file", secretFile, "--host", f.natHTTPS(),
			"--proxy", f.gh.Server.ProxyAddr(), "--ca-file", f.proxyCAFile}
	}

	run := startConnect(t, flags(tokenFile)...)
	hc := directClient(t)
	f.https.Reset()
	st, body := f.do(hc, "GET", "http://"+run.addr(t)+"/api/x", "", "")
	if st != 200 || len(f.https.Requests()) != 1 {
		t.Fatalf("GET: %d %s", st, body)
	}
	checkInjected(t, f.https.Requests()[0], alphaToken, c.Secret)

	// A plain-HTTP target host: absolute-form requests to the proxy, the credential as Authorization: Bearer.
	plain := startConnect(t, append(flags(tokenFile), "--host", f.natHTTP(), "--scheme", "http")...)
	f.http.Reset()
	if st, body := f.do(hc, "GET", "http://"+plain.addr(t)+"/api/plain", "", ""); st != 200 || len(f.http.Requests()) != 1 {
		t.Fatalf("GET over http: %d %s", st, body)
	}
	checkInjected(t, f.http.Requests()[0], alphaToken, c.Secret)

	var out, errb bytes.Buffer
	code := cli.RunWithStdin(context.Background(), flags(badFile), strings.NewReader(""), &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "407") || !strings.Contains(errb.String(), "credential may be wrong") {
		t.Errorf("wrong secret: exit %d\n%s", code, errb.String())
	}
	for _, listen := range []string{"0.0.0.0:0", ":0", "192.0.2.1:80"} {
		errb.Reset()
		args := append(flags(tokenFile), "--listen", listen)
		code := cli.RunWithStdin(context.Background(), args, strings.NewReader(""), &out, &errb)
		if code == 0 || !strings.Contains(errb.String(), "not a loopback address") || !strings.Contains(errb.String(), "--allow-remote") {
			t.Errorf("--listen %s: exit %d\n%s", listen, code, errb.String())
		}
	}
}

// TestConnectForbiddenTarget is a user who may not read targets: the target is matched through their credential,
// and the host must be given.
func TestConnectForbiddenTarget(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	c := f.credential(f.alpha, "only", nil)
	cliLogin(t, f)
	var out, errb bytes.Buffer
	code := cli.RunWithStdin(context.Background(), []string{"connect", "alpha"}, strings.NewReader(""), &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "pass --host") {
		t.Fatalf("connect without --host: exit %d\n%s", code, errb.String())
	}
	run := startConnect(t, "connect", "alpha", "--host", f.natHTTPS())
	f.https.Reset()
	if st, body := f.do(directClient(t), "GET", "http://"+run.addr(t)+"/api/y", "", ""); st != 200 || len(f.https.Requests()) != 1 {
		t.Fatalf("GET: %d %s", st, body)
	}
	checkInjected(t, f.https.Requests()[0], alphaToken, c.Secret)
}

// TestConnectWebSocket upgrades through the connector (after the 101 it is a byte pipe both ways) and streams an
// answer that the origin sends in parts.
func TestConnectWebSocket(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	const token = "ws-upstream-token-77"
	var sawAuth string
	var mu sync.Mutex
	cert := f.ca.leaf(t)
	release := make(chan struct{})
	ws := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sawAuth = r.Header.Get("Authorization")
		mu.Unlock()
		if r.URL.Path == "/stream" {
			// The first part must reach the client while the origin still holds the rest back.
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: first\n\n")
			http.NewResponseController(w).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			io.WriteString(w, "data: second\n\n")
			return
		}
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want an upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		// RFC 6455 section 4.2.2: the accept value proves the origin read the client's key (the gateway checks it).
		sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")
		brw.Flush()
		buf := make([]byte, 5)
		for {
			if _, err := io.ReadFull(brw, buf); err != nil {
				return
			}
			conn.Write(bytes.ToUpper(buf))
		}
	}))
	ws.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	ws.StartTLS()
	t.Cleanup(ws.Close)
	host := natHTTPSName + ":" + port(ws.Listener.Addr().String())
	target := f.gh.Create(proxyAPI+"/api-targets", f.adm, map[string]any{
		"name": "ws-api", "roles": []map[string]string{{"id": f.roleID}}, "tls_trust_anchors": f.ca.pem,
		"authorized_endpoints": []map[string]any{
			{"host": host, "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/ws", "/stream"}, "nat_target_host": "127.0.0.1"},
		},
		"target_credential": map[string]any{"type": "token", "bearer_token": token},
	})
	c := f.credential(target, "ws", nil)
	cliLogin(t, f)
	run := startConnect(t, "connect", "ws-api", "--host", host)

	conn, err := net.Dial("tcp", run.addr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		var b []byte
		if resp != nil {
			b, _ = io.ReadAll(resp.Body)
		}
		t.Fatalf("upgrade: %v %+v %s", err, resp, b)
	}
	for _, msg := range []string{"hello", "again"} {
		io.WriteString(conn, msg)
		buf := make([]byte, 5)
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != strings.ToUpper(msg) {
			t.Fatalf("echo of %q: %q %v", msg, buf, err)
		}
	}

	// A streamed answer is relayed as it comes, not buffered until the origin finishes.
	resp, err = directClient(t).Get("http://" + run.addr(t) + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sr := bufio.NewReader(resp.Body)
	if line, err := sr.ReadString('\n'); err != nil || line != "data: first\n" {
		t.Fatalf("first event: %q %v", line, err)
	}
	close(release)
	rest, _ := io.ReadAll(sr)
	if string(rest) != "\ndata: second\n\n" {
		t.Errorf("rest of the stream: %q", rest)
	}

	mu.Lock()
	defer mu.Unlock()
	if sawAuth != "Bearer "+token {
		t.Errorf("origin saw Authorization %q", sawAuth)
	}
	noSecret(t, "the origin's request", sawAuth, c.Secret)
}
