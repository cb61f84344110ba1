package console_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/testnet"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

const xssName = `<img src=x onerror=alert(1)>`

// browser is one signed-in person: a chromedp tab in its own browser context (its own cookies), with every console
// message, exception and dialog of its pages collected.
type browser struct {
	t       *testing.T
	name    string
	ctx     context.Context
	shots   string
	base    string
	mu      sync.Mutex
	console []string
	dialogs []string
}

func (b *browser) watch() {
	msgs := chromedp.Console(b.ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException || m.Type == chromedp.ConsoleWarning {
				b.mu.Lock()
				b.console = append(b.console, fmt.Sprintf("%s: %s: %s (%s)", m.Type, m.Source, m.Text, m.URL))
				b.mu.Unlock()
			}
		}
	}()
	dialogs := chromedp.Events(b.ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dialogs = append(b.dialogs, ev.Message)
			b.mu.Unlock()
			chromedp.Call(b.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
}

// do runs steps with a bound, failing the test with what the step was.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	b.t.Logf("%s: %s", b.name, what)
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	err := chromedp.Do(ctx, steps...)
	if err != nil && strings.Contains(err.Error(), "ERR_NETWORK_CHANGED") {
		// Chromium aborts a load when the host's interfaces change (other tests on a shared machine create network
		// namespaces); that says nothing about the console, so the step is tried once more.
		b.t.Logf("%s: %s: %v; retrying once", b.name, what, err)
		err = chromedp.Do(ctx, steps...)
	}
	if err != nil {
		b.shot("failed-" + b.name)
		b.t.Fatalf("%s: %s: %v", b.name, what, err)
	}
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("%s: text of %s: %v", b.name, sel, err)
	}
	return s
}

func (b *browser) location() string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}

// shot writes a full-page PNG of the current page.
func (b *browser) shot(name string) {
	shoot := chromedp.FullScreenshot(100)
	if strings.Contains(name, "phone") {
		shoot = chromedp.CaptureScreenshot() // the full-page capture distorts mobile emulation
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, shoot)
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
	}
}

// visit opens a console page, waits for its heading and takes its screenshot.
func (b *browser) visit(path, shot string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitVisible(chromedp.CSS("main h1")))
	if shot != "" {
		b.shot(shot)
	}
}

func (b *browser) signIn(user, password string) {
	b.t.Helper()
	b.do("sign in as "+user,
		chromedp.Navigate(b.base+"/"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.ID("targets-h")),
	)
}

func (b *browser) problems() (console, dialogs []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.console...), append([]string(nil), b.dialogs...)
}

// artifacts is where screenshots go: $GATEHOUSE_TEST_ARTIFACTS, or a directory under the test's temp dir.
func artifacts(t *testing.T) string {
	dir := os.Getenv("GATEHOUSE_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	dir = filepath.Join(dir, "console-screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// spki is the base64 SHA-256 of a certificate's public key, which Chromium's --ignore-certificate-errors-spki-list
// takes: the browser trusts exactly these test servers and nothing else.
func spki(t *testing.T, addr string) string {
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sum := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH; scripts/test.sh installs Debian's chromium")
	return ""
}

// runCurl runs a curl command copied from the console in dir, and returns the status and body.
func runCurl(t *testing.T, dir, command string) (string, string) {
	t.Helper()
	out := filepath.Join(dir, "body")
	os.Remove(out)
	cmd := exec.Command("sh", "-c", command+" -sS --max-time 10 -o "+out+" -w '%{http_code}'")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HTTPS_PROXY=", "HTTP_PROXY=", "https_proxy=", "http_proxy=", "NO_PROXY=")
	status, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if e, ok := err.(*exec.ExitError); ok {
			ee = e
		}
		if ee == nil {
			t.Fatalf("curl: %v", err)
		}
	}
	body, _ := os.ReadFile(out)
	return string(status), string(body)
}

// TestConsoleInBrowser drives the console in Debian's Chromium: an end user signs in, creates a credential and
// uses its curl settings through the proxy while an admin in another browser context watches the request arrive
// live, opens it, and terminates the session, after which the next request is refused. The admin also creates a
// target through the form, a cross-site form post is refused, a target named like markup is shown as text, and no
// page writes a console error.
func TestConsoleInBrowser(t *testing.T) {
	testnet.Exclusive(t) // Chromium aborts loads with ERR_NETWORK_CHANGED when another test adds an interface
	start := time.Now()
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()

	var hits atomic.Int64
	upstream := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"hello":"world","path":%q,"token":"seen"}`, r.URL.Path)
	}))
	defer upstream.Close()
	upstreamPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: upstream.Certificate().Raw}))
	upHost := strings.TrimPrefix(upstream.URL, "https://")

	role := gh.Create("/role-store/api/v1/roles", adm, map[string]any{"name": "devs", "permissions": []string{auth.APIProxyCredentialsOwn}})
	alice := gh.Create("/local-user-store/api/v1/users", adm, map[string]any{"username": "alice", "password": "Alice-pass-123"})
	gh.JSON("PUT", "/role-store/api/v1/users/"+alice+"/roles", adm, []map[string]string{{"id": role}}, http.StatusOK, nil)
	target := func(name string) map[string]any {
		return map[string]any{"name": name, "roles": []map[string]string{{"id": role}}, "audit_enabled": true, "tls_trust_anchors": upstreamPEM,
			"authorized_endpoints": []map[string]any{{"host": upHost, "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/api/**"}}},
			"target_credential":    map[string]any{"type": "token", "bearer_token": "upstream-secret-token"}}
	}
	gh.Create("/api-proxy/api/v1/api-targets", adm, target("demo-api"))
	gh.Create("/api-proxy/api/v1/api-targets", adm, target(xssName))

	// The attacker's page is https on another port of this host: same site, other origin, so the SameSite cookie
	// is sent and only the console's own checks stand in the way.
	attacker := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><title>win a prize</title><form id="f" method="post" action="%s/admin/users">
<input name="username" value="mallory"><input name="password" value="Mallory-pass-123"><input name="csrf" value="guess"></form>
<script>document.getElementById("f").submit()</script>`, gh.URL)
	}))
	defer attacker.Close()

	shots := artifacts(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("ignore-certificate-errors-spki-list", spki(t, strings.TrimPrefix(gh.URL, "https://"))+","+spki(t, strings.TrimPrefix(attacker.URL, "https://"))),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	// One bound for the whole browser: a step that hangs fails the test instead of stalling CI.
	bounded, cancelBound := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancelBound()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(bounded, opts...)
	defer cancelAlloc()
	rootCtx, cancelRoot := chromedp.NewContext(allocCtx)
	defer cancelRoot()
	if err := chromedp.Do(rootCtx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	newBrowser := func(name string) *browser {
		ctx, cancel := chromedp.NewContext(rootCtx, chromedp.WithNewBrowserContext())
		t.Cleanup(cancel)
		b := &browser{t: t, name: name, ctx: ctx, shots: shots, base: gh.URL}
		b.watch()
		return b
	}
	user, admin := newBrowser("alice"), newBrowser("admin")

	// Sign-in: a wrong password is refused with a message; the right one opens My access.
	user.do("open the console", chromedp.Navigate(gh.URL+"/"), chromedp.WaitVisible(chromedp.ID("username")))
	user.shot("01-sign-in")
	user.do("wrong password",
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "not-her-password"),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.ID("page-error")))
	if msg := user.text("#page-error"); !strings.Contains(msg, "Wrong username or password") {
		t.Errorf("wrong password shows %q", msg)
	}
	user.signIn("alice", "Alice-pass-123")
	user.shot("02-my-access")
	// The target named like markup is text: the link's text is the name itself, and no dialog opened.
	names := user.text("#main table")
	if !strings.Contains(names, xssName) || !strings.Contains(names, "demo-api") {
		t.Errorf("My access lists %q, want demo-api and the literal %q", names, xssName)
	}
	if n, err := chromedp.Run(user.ctx, chromedp.Evaluate[int]("document.querySelectorAll('main img').length")); err != nil || n != 0 {
		t.Errorf("the markup-like name made %d img elements (err %v)", n, err)
	}

	// The admin watches the connection list before alice sends anything, so her session must arrive live.
	admin.signIn("admin", testserver.AdminPassword)
	admin.visit("/monitor/connections", "05-connections-empty")

	// Alice opens the target, creates a credential and copies the curl settings.
	href, err := chromedp.Run(user.ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("a.target-link")].find(a => a.textContent === "demo-api").getAttribute("href")`))
	if err != nil {
		t.Fatal(err)
	}
	user.do("open demo-api", chromedp.Click(chromedp.CSS(`a.target-link[href="`+href+`"]`)), chromedp.WaitVisible(chromedp.ID("snip-h")))
	if got := user.text("h1"); got != "demo-api" {
		t.Fatalf("target page heading %q", got)
	}
	user.shot("03-target-connection-info")
	user.do("create a credential",
		chromedp.SendKeys(chromedp.ID("cred-name"), "laptop"),
		chromedp.Click(chromedp.CSS("#new-credential button[type=submit]")),
		chromedp.WaitVisible(chromedp.ID("secret")))
	user.do("copy the curl settings", chromedp.Click(chromedp.CSS(`button[data-copy="snippet-0"]`)))
	user.shot("04-credential-secret-and-settings")
	curlCmd := user.text("#snippet-0")
	secret := user.text("#secret")
	if !strings.HasPrefix(secret, "ghp_") || !strings.Contains(curlCmd, secret) || !strings.Contains(curlCmd, "--proxy http://"+gh.Server.ProxyAddr()) {
		t.Fatalf("curl settings %q do not carry the secret %q and the proxy", curlCmd, secret)
	}

	// The client needs the proxy CA the page offers: fetch its link as the signed-in user.
	work := t.TempDir()
	caPEM, err := chromedp.Run(user.ctx, chromedp.Evaluate[string](`fetch("/access/ca.pem").then(r => r.text())`, chromedp.EvalAwaitPromise))
	if err != nil || caPEM != downloadCA(t, gh, adm) {
		t.Fatalf("the CA link gave %q (%v), not the proxy CA", caPEM, err)
	}
	if err := os.WriteFile(filepath.Join(work, "gatehouse-ca.pem"), []byte(caPEM), 0o644); err != nil {
		t.Fatal(err)
	}
	status, body := runCurl(t, work, curlCmd)
	if status != "200" || !strings.Contains(body, `"hello":"world"`) {
		t.Fatalf("curl with the copied settings: %s %s", status, body)
	}

	// The admin sees alice's session arrive without reloading, opens it, and sees the exchange.
	admin.do("see alice's session arrive", chromedp.WaitVisible(chromedp.CSS(`#connections tbody tr[data-id]`)))
	if row := admin.text("#connections tbody tr"); !strings.Contains(row, "alice") || !strings.Contains(row, "demo-api") || !strings.Contains(row, "CONNECTED") {
		t.Errorf("live row = %q", row)
	}
	admin.shot("06-connections-live")
	admin.do("open the session", chromedp.Click(chromedp.CSS(`#connections tbody tr[data-id] a`)), chromedp.WaitVisible(chromedp.CSS("#trail li")))
	if got := admin.text("#trail li summary"); !strings.Contains(got, "/api/") || !strings.Contains(got, "200") {
		t.Errorf("trail entry = %q", got)
	}
	// A second request arrives on the open page.
	if status, _ := runCurl(t, work, strings.Replace(curlCmd, "/api/'", "/api/second'", 1)); status != "200" {
		t.Fatalf("second curl: %s", status)
	}
	admin.do("see the second exchange arrive", chromedp.WaitVisible(chromedp.CSS("#trail li:nth-child(2)")))
	admin.do("expand it", chromedp.Click(chromedp.CSS("#trail li:nth-child(2) summary")), chromedp.WaitVisible(chromedp.CSS("#trail li:nth-child(2) .exchange")))
	if x := admin.text("#trail li:nth-child(2) .exchange"); !strings.Contains(x, "/api/second") || !strings.Contains(x, "[REDACTED]") || strings.Contains(x, "upstream-secret-token") {
		t.Errorf("expanded exchange shows %q: want the pretty body and the redacted injected token", x)
	}
	admin.shot("07-connection-trail")

	// Terminate, with confirmation; the next curl is refused and never reaches the API.
	admin.do("terminate", chromedp.Click(chromedp.ID("terminate")), chromedp.WaitVisible(chromedp.ID("confirm")))
	admin.shot("08-confirm-terminate")
	admin.do("confirm", chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.CSS("#conn-status.s-TERMINATED")))
	before := hits.Load()
	if status, _ := runCurl(t, work, curlCmd); status == "200" {
		t.Errorf("curl after termination answered 200")
	}
	if hits.Load() != before {
		t.Errorf("a request after termination reached the API")
	}

	// The admin creates a target through the form; a bad host is shown next to its field first.
	admin.visit("/admin/targets/new", "09-target-form")
	host := chromedp.CSS(`[name="authorized_endpoints[0].host"]`)
	admin.do("fill the form",
		chromedp.SendKeys(chromedp.ID("t-name"), "made-in-form"),
		chromedp.SendKeys(host, "bad host!"),
		chromedp.Click(chromedp.CSS(`input[name="roles"][value="`+role+`"]`)),
		chromedp.SendKeys(chromedp.ID("t-bearer"), "form-secret"),
		chromedp.Click(chromedp.ID("save-target")),
		chromedp.WaitVisible(chromedp.CSS(".eprow .field-error")))
	if msg := admin.text(".eprow .field-error"); !strings.Contains(msg, "host") {
		t.Errorf("bad host error next to the field: %q", msg)
	}
	admin.shot("10-target-form-error")
	admin.do("fix the host and save",
		chromedp.Clear(host),
		chromedp.SendKeys(host, "api.example.com"),
		chromedp.SendKeys(chromedp.ID("t-bearer"), "form-secret"),
		chromedp.Click(chromedp.ID("save-target")),
		chromedp.WaitVisible(chromedp.CSS(".alert.notice")))
	if loc := admin.location(); !strings.Contains(loc, "saved=1") {
		admin.shot("failed-target-save")
		t.Fatalf("after saving the target the page is %s: %s", loc, admin.text("main"))
	}
	var made struct {
		Count int `json:"count"`
		Items []struct {
			Endpoints []struct {
				Host string `json:"host"`
			} `json:"authorized_endpoints"`
			Roles []struct {
				ID string `json:"id"`
			} `json:"roles"`
		} `json:"items"`
	}
	gh.JSON("GET", "/api-proxy/api/v1/api-targets?filter=made-in-form", adm, nil, http.StatusOK, &made)
	if made.Count != 1 || made.Items[0].Endpoints[0].Host != "api.example.com" || len(made.Items[0].Roles) != 1 || made.Items[0].Roles[0].ID != role {
		t.Errorf("target made in the form: %+v", made)
	}

	// A form posted from another origin is refused, and nothing is created.
	admin.do("visit the attacker's page", chromedp.Navigate(attacker.URL), chromedp.WaitVisible(chromedp.ID("page-error")))
	if msg := admin.text("#page-error"); !strings.Contains(msg, "cross-site") {
		t.Errorf("cross-site post answered %q", msg)
	}
	if st, b := gh.Do("GET", "/local-user-store/api/v1/users?filter=mallory", adm, nil); st != 200 || strings.Contains(string(b), "mallory") {
		t.Errorf("the cross-site post created a user: %d %s", st, b)
	}
	admin.shot("11-cross-site-refused")

	// Every other page renders, at desktop width, at phone width and dark.
	admin.visit("/admin/targets", "12-targets")
	if got := admin.text("#targets"); !strings.Contains(got, xssName) {
		t.Errorf("targets list lacks the literal name: %q", got)
	}
	admin.visit("/admin/users", "13-users")
	admin.visit("/admin/roles", "14-roles")
	admin.visit("/admin/clients", "15-clients")
	admin.visit("/admin/policies", "16-policies")
	admin.visit("/monitor/audit", "17-audit")
	admin.visit("/access", "18-admin-my-access")

	// Administration: the admin creates a role through the form and grants it to alice on her user page.
	admin.visit("/admin/roles", "")
	admin.do("create a role",
		chromedp.SendKeys(chromedp.ID("r-name"), "auditors"),
		chromedp.Click(chromedp.ID("perm-"+auth.AuditView)),
		chromedp.Click(chromedp.CSS("#new-role button[type=submit]")),
		chromedp.WaitVisible(chromedp.ID("role-form")))
	admin.shot("22-role-form")
	admin.visit("/admin/users", "")
	admin.do("open alice", chromedp.Click(chromedp.CSS(`#users a.user-name[href="/admin/users/`+alice+`"]`)), chromedp.WaitVisible(chromedp.ID("user-roles")))
	auditors, err := chromedp.Run(admin.ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("#user-roles label")].find(l => l.textContent === "auditors").htmlFor`))
	if err != nil {
		t.Fatal(err)
	}
	admin.do("grant alice the role", chromedp.Click(chromedp.ID(auditors)), chromedp.Click(chromedp.ID("save-user")), chromedp.WaitVisible(chromedp.CSS(".alert.notice")))
	admin.shot("23-user-edit")
	var held struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
	}
	gh.JSON("GET", "/role-store/api/v1/users/"+alice+"/roles", adm, nil, http.StatusOK, &held)
	if len(held.Items) != 2 {
		t.Errorf("alice's roles after the edit: %+v, want devs and auditors", held.Items)
	}
	admin.visit("/admin/sources", "24-sources")
	admin.visit("/admin/hosts/new", "25-host-form")
	admin.visit("/settings/api-proxy", "26-settings-api-proxy")

	// A policy change committed in a transaction, and another rolled back.
	const lists = "/api/configuration/policies/userlists"
	stage := func(body string) {
		admin.do("stage "+body, chromedp.Navigate(gh.URL+"/admin/policies/edit?path="+lists), chromedp.WaitVisible(chromedp.ID("p-body")),
			chromedp.SetValue(chromedp.ID("p-body"), body), chromedp.Click(chromedp.ID("save-policy")), chromedp.WaitVisible(chromedp.ID("tx-commit")))
	}
	stage(`{"name": "browser-list", "allow": "no_user", "except": ["alice"]}`)
	admin.shot("27-policies-transaction-open")
	admin.do("show the pending changes", chromedp.Click(chromedp.ID("tx-changes")), chromedp.WaitVisible(chromedp.ID("changes")))
	if got := admin.text("#changes"); !strings.Contains(got, "browser-list") {
		t.Errorf("pending changes show %q", got)
	}
	admin.shot("28-policy-pending-changes")
	admin.do("commit", chromedp.Click(chromedp.ID("tx-commit")), chromedp.WaitVisible(chromedp.ID("tx-start")))
	stage(`{"name": "never-committed", "allow": "all_users"}`)
	admin.do("roll back", chromedp.Click(chromedp.ID("tx-rollback")), chromedp.WaitVisible(chromedp.ID("tx-start")))
	admin.shot("29-policies-after-rollback")
	if got := admin.text("main"); !strings.Contains(got, "browser-list") || strings.Contains(got, "never-committed") {
		t.Errorf("after commit and rollback the policies page shows %q", got)
	}
	admin.do("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	admin.visit("/monitor/connections", "19-connections-phone")
	noSideScroll(t, admin)
	for path, shot := range map[string]string{"/admin/users/" + alice: "30-user-edit-phone", "/admin/policies": "31-policies-phone",
		"/admin/sources": "32-sources-phone", "/settings/api-proxy": "33-settings-phone"} {
		admin.visit(path, shot)
		noSideScroll(t, admin)
	}
	user.do("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	user.visit("/access", "20-my-access-phone")
	noSideScroll(t, user)
	admin.do("dark", chromedp.EmulateViewport(1280, 900), chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
		return err
	}))
	admin.visit("/monitor/connections", "21-connections-dark")

	// Chromium logs every 4xx page it loads; the refusals this test provoked on purpose are expected, once each.
	expected := map[string][]string{
		"alice": {"error: network: Failed to load resource: the server responded with a status of 401 () (" + gh.URL + "/login)"},
		"admin": {"error: network: Failed to load resource: the server responded with a status of 400 () (" + gh.URL + "/admin/targets)",
			"error: network: Failed to load resource: the server responded with a status of 403 () (" + gh.URL + "/admin/users)"},
	}
	for _, b := range []*browser{user, admin} {
		msgs, dialogs := b.problems()
		for _, m := range msgs {
			if i := slices.Index(expected[b.name], m); i >= 0 {
				expected[b.name] = slices.Delete(expected[b.name], i, i+1)
				continue
			}
			t.Errorf("%s's pages wrote to the console: %s", b.name, m)
		}
		if len(expected[b.name]) > 0 {
			t.Errorf("%s: the deliberate refusals %q were not seen", b.name, expected[b.name])
		}
		if len(dialogs) > 0 {
			t.Errorf("%s saw dialogs: %q", b.name, dialogs)
		}
	}
	t.Logf("browser test took %v", time.Since(start).Round(time.Millisecond))
}

func downloadCA(t *testing.T, gh *testserver.Instance, tok string) string {
	var conf struct {
		Chain string `json:"ca_certificate_chain"`
	}
	gh.JSON("GET", "/api-proxy/api/v1/conf", tok, nil, http.StatusOK, &conf)
	if !strings.Contains(conf.Chain, "BEGIN CERTIFICATE") {
		t.Fatalf("no CA chain: %q", conf.Chain)
	}
	return conf.Chain
}

// noSideScroll checks that the page fits the phone's width: wide tables scroll inside their own box, the page does
// not.
func noSideScroll(t *testing.T, b *browser) {
	t.Helper()
	w, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]int]("[document.documentElement.scrollWidth, window.innerWidth]"))
	if err != nil {
		t.Fatal(err)
	}
	if w[0] > w[1] {
		t.Errorf("%s: the page is %d px wide on a %d px screen", b.name, w[0], w[1])
	}
}
