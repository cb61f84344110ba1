package auditexport_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auditexport"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/testbinary"
	"github.com/gatehouse-dev/gatehouse/internal/testca"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
	"github.com/google/go-cmp/cmp"
)

// rsyslog is a private rsyslogd receiving syslog over TLS (the ossl stream driver) on a loopback port and writing
// each message's parsed RFC 5424 fields, one line each, to a file.
type rsyslog struct {
	addr   string
	dir    string
	caFile string
	caPEM  []byte
	out    string
	stop   func()
}

// line format written by rsyslog: PRI|APP-NAME|MSGID|STRUCTURED-DATA|MSG
const rsyslogTemplate = `%pri%|%app-name%|%msgid%|%structured-data%|%msg%\n`

func startRsyslog(t *testing.T) *rsyslog {
	t.Helper()
	dir := t.TempDir()
	caPEM, certPEM, keyPEM := issue(t)
	r := &rsyslog{addr: testbinary.FreeAddrs(t, 1)[0], dir: dir, caFile: filepath.Join(dir, "ca.pem"), caPEM: caPEM, out: filepath.Join(dir, "audit.log")}
	for name, b := range map[string][]byte{"ca.pem": caPEM, "cert.pem": certPEM, "key.pem": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, port, _ := net.SplitHostPort(r.addr)
	conf := fmt.Sprintf(`global(workDirectory=%[1]q
  defaultNetstreamDriver="ossl"
  defaultNetstreamDriverCAFile=%[2]q
  defaultNetstreamDriverCertFile=%[3]q
  defaultNetstreamDriverKeyFile=%[4]q)
module(load="imtcp" streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" address="127.0.0.1" port=%[5]q)
template(name="fields" type="string" string="%[6]s")
action(type="omfile" file=%[7]q template="fields")
`, dir, filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), port, rsyslogTemplate, r.out)
	if err := os.WriteFile(filepath.Join(dir, "rsyslog.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	r.start(t)
	t.Cleanup(func() { r.stop() })
	return r
}

// start runs rsyslogd on r's configuration and waits until it accepts TLS; r.stop kills it.
func (r *rsyslog) start(t *testing.T) {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		t.Fatalf("rsyslogd is not installed (scripts/test.sh installs rsyslog and rsyslog-openssl): %v", err)
	}
	cmd := exec.Command(bin, "-n", "-f", filepath.Join(r.dir, "rsyslog.conf"), "-i", filepath.Join(r.dir, "rsyslogd.pid"))
	logs := &testserver.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	r.stop = func() {
		cmd.Process.Kill()
		<-exited
	}
	// Ready once it completes a TLS handshake with the test CA.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(r.caPEM)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", r.addr, &tls.Config{RootCAs: pool})
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("rsyslogd exited: %s", logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd did not accept TLS on %s: %v\n%s", r.addr, err, logs)
		}
	}
}

// issue makes a CA and a server certificate for 127.0.0.1 (PEM).
func issue(t *testing.T) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	ca := testca.New(t, "siem test CA")
	leaf := ca.Server(t, "127.0.0.1")
	return ca.PEM, leaf.CertPEM, leaf.KeyPEM
}

// summary is what the test compares between the store and each destination.
type summary struct {
	ID         int64
	Action     string
	Actor      string
	ObjectType string
	ObjectID   string
	Outcome    string
}

func summarize(e model.AuditEvent) summary {
	return summary{e.ID, e.Action, e.Actor, e.ObjectType, e.ObjectID, e.Outcome}
}

var sdParam = regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)

// syslogEvents parses rsyslog's output file: the structured data and, independently, the JSON in MSG must agree.
func (r *rsyslog) events(t *testing.T) []summary {
	t.Helper()
	b, err := os.ReadFile(r.out)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []summary
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		f := strings.SplitN(line, "|", 5)
		if len(f) != 5 || f[1] != "gatehouse" {
			t.Fatalf("rsyslog line %q", line)
		}
		sd := map[string]string{}
		for _, m := range sdParam.FindAllStringSubmatch(f[3], -1) {
			sd[m[1]] = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\]`, `]`).Replace(m[2])
		}
		id, _ := strconv.ParseInt(sd["id"], 10, 64)
		s := summary{id, sd["action"], sd["actor"], sd["object_type"], sd["object_id"], sd["outcome"]}
		var msg model.AuditEvent
		if err := json.Unmarshal([]byte(strings.TrimSpace(f[4])), &msg); err != nil {
			t.Fatalf("MSG is not the event's JSON: %v\n%s", err, line)
		}
		if summarize(msg) != s || f[2] != s.Action {
			t.Errorf("structured data %+v, MSGID %q and MSG %+v disagree", s, f[2], summarize(msg))
		}
		wantPri := "109" // log audit, notice
		if s.Outcome != "success" {
			wantPri = "108" // log audit, warning
		}
		if f[0] != wantPri {
			t.Errorf("event %d (%s) has PRI %s, want %s", s.ID, s.Outcome, f[0], wantPri)
		}
		out = append(out, s)
	}
	return out
}

// webhook is a TLS receiver that refuses the first failFirst POSTs with 503, checks the signature, and keeps
// the events it accepted.
type webhook struct {
	srv       *httptest.Server
	caFile    string
	secret    string
	failFirst int

	mu       sync.Mutex
	attempts int
	events   []model.AuditEvent
	bad      []string
}

func startWebhook(t *testing.T, secret string, failFirst int) *webhook {
	w := &webhook{secret: secret, failFirst: failFirst}
	w.srv = httptest.NewTLSServer(http.HandlerFunc(w.serve))
	t.Cleanup(w.srv.Close)
	w.caFile = filepath.Join(t.TempDir(), "webhook-ca.pem")
	os.WriteFile(w.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: w.srv.Certificate().Raw}), 0o600)
	return w
}

func (w *webhook) serve(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.attempts++
	if w.attempts <= w.failFirst {
		http.Error(rw, "warming up", http.StatusServiceUnavailable)
		return
	}
	m := hmac.New(sha256.New, []byte(w.secret))
	fmt.Fprintf(m, "%s.%s", r.Header.Get("X-Gatehouse-Timestamp"), body)
	if want := "sha256=" + hex.EncodeToString(m.Sum(nil)); !hmac.Equal([]byte(want), []byte(r.Header.Get("X-Gatehouse-Signature"))) {
		w.bad = append(w.bad, "bad signature on "+string(body))
		http.Error(rw, "bad signature", http.StatusUnauthorized)
		return
	}
	var e model.AuditEvent
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &e) != nil ||
		r.Header.Get("X-Gatehouse-Event-Id") != strconv.FormatInt(e.ID, 10) {
		w.bad = append(w.bad, fmt.Sprintf("%s %s %q", r.Method, r.Header.Get("Content-Type"), body))
		http.Error(rw, "bad request", http.StatusBadRequest)
		return
	}
	w.events = append(w.events, e)
}

func (w *webhook) summaries() []summary {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []summary
	for _, e := range w.events {
		out = append(out, summarize(e))
	}
	return out
}

// TestExportToSIEM runs Gatehouse with both destinations, makes logins (one failed) and management changes through
// both API dialects, and checks that rsyslog and the webhook received exactly the store's audit log.
func TestExportToSIEM(t *testing.T) {
	syslog := startRsyslog(t)
	const secret = "webhook-signing-secret-31"
	hook := startWebhook(t, secret, 2)
	gh := testserver.Start(t, testserver.Options{Configure: func(c *config.Config) {
		c.AuditSyslog = "tcp+tls://" + syslog.addr
		c.AuditSyslogCA = syslog.caFile
		c.AuditWebhook = hook.srv.URL + "/siem/events"
		c.AuditWebhookCA = hook.caFile
		c.AuditWebhookSecret = secret
		c.MetricsListen = "127.0.0.1:0"
	}})
	adm := gh.AdminToken()
	role := gh.Create("/role-store/api/v1/roles", adm, map[string]any{"name": "auditors", "permissions": []string{"audit-view"}})
	user := gh.Create("/local-user-store/api/v1/users", adm, map[string]any{"username": "carol", "password": "Carol-pass-1234", "enabled": true})
	gh.JSON("PUT", "/role-store/api/v1/users/"+user+"/roles", adm, []map[string]string{{"id": role}}, http.StatusOK, nil)
	form := "grant_type=password&client_id=gatehouse-cli&username=carol&password=wrong"
	req, _ := http.NewRequest("POST", gh.URL+"/auth/api/v1/oauth/token", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := gh.Client.Do(req); err != nil || resp.StatusCode == http.StatusOK {
		t.Fatalf("wrong password: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	// A login to the configuration API dialect (basic authentication, as curl --basic sends it).
	req, _ = http.NewRequest("GET", gh.URL+"/api/authentication", nil)
	req.SetBasicAuth("admin", testserver.AdminPassword)
	if resp, err := gh.Client.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("configuration API login: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	if st, b := gh.Do("DELETE", "/local-user-store/api/v1/users/"+user, adm, nil); st/100 != 2 {
		t.Fatalf("delete user: %d %s", st, b)
	}

	// A proxy request the target's rules deny: the gateway audits the denial of a known credential (off the
	// request path), and that event is exported too.
	users := gh.Create("/role-store/api/v1/roles", adm, map[string]any{"name": "api-users", "permissions": []string{"api-proxy-credentials-own"}})
	dave := gh.Create("/local-user-store/api/v1/users", adm, map[string]any{"username": "dave", "password": "Dave-pass-12345", "enabled": true})
	gh.JSON("PUT", "/role-store/api/v1/users/"+dave+"/roles", adm, []map[string]string{{"id": users}}, http.StatusOK, nil)
	target := gh.Create("/api-proxy/api/v1/api-targets", adm, map[string]any{"name": "denied-api", "roles": []map[string]string{{"id": users}},
		"authorized_endpoints": []map[string]any{{"host": "denied.example", "protocols": []string{"http"}, "methods": []string{"GET"}, "paths": []string{"/public/**"}}},
		"target_credential":    map[string]any{"type": "token", "bearer_token": "denied-api-token"}})
	daveTok := gh.Token("dave", "Dave-pass-12345")
	cred := gh.Create("/api-proxy/api/v1/users/current/client-credentials", daveTok, map[string]any{"name": "d", "target": map[string]string{"id": target}})
	st, credSecret := gh.Do("GET", "/api-proxy/api/v1/users/current/client-credentials/"+cred+"/secret", daveTok, nil)
	if st != http.StatusOK {
		t.Fatalf("secret: %d %s", st, credSecret)
	}
	proxied := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: gh.Server.ProxyAddr()})}, Timeout: 10 * time.Second}
	preq, _ := http.NewRequest("GET", "http://denied.example/admin/keys", nil)
	preq.Header.Set("Authorization", "Bearer "+string(credSecret))
	if resp, err := proxied.Do(preq); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("denied request: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	// An allowed request opens dave's session (the made-up host cannot be dialled, which does not matter here), and
	// ending it is a session close; both are exported.
	areq, _ := http.NewRequest("GET", "http://denied.example/public/x", nil)
	areq.Header.Set("Authorization", "Bearer "+string(credSecret))
	if resp, err := proxied.Do(areq); err != nil {
		t.Fatalf("allowed request: %v", err)
	} else {
		resp.Body.Close()
	}
	if st, b := gh.Do("POST", "/connection-manager/api/v1/terminate/user/"+dave, adm, nil); st/100 != 2 {
		t.Fatalf("terminate dave: %d %s", st, b)
	}
	for _, action := range []string{"proxy-request-denied", "api-session-open", "api-session-close"} {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			_, n, err := gh.Server.Store().ListAudit(context.Background(), store.AuditFilter{Action: action}, store.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s event was audited", action)
			}
		}
	}

	events, _, err := gh.Server.Store().ListAudit(context.Background(), store.AuditFilter{}, store.ListOptions{Limit: 1000, SortDir: "asc"})
	if err != nil {
		t.Fatal(err)
	}
	var want []summary
	actions := map[string]bool{}
	for _, e := range events {
		want = append(want, summarize(*e))
		actions[e.Action+"/"+e.Outcome] = true
	}
	types := map[string]bool{}
	for _, e := range events {
		types[e.ObjectType] = true
	}
	if !types["configuration-session"] {
		t.Fatalf("the store recorded no configuration API login; object types %v", types)
	}
	for _, a := range []string{"login/success", "login/failure", "create/success", "delete/success", "proxy-request-denied/failure",
		"api-session-open/success", "api-session-close/success"} {
		if !actions[a] {
			t.Fatalf("the store recorded no %s event; it has %v", a, actions)
		}
	}
	byID := func(a, b summary) int { return int(a.ID - b.ID) }
	var gotSyslog, gotHook []summary
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		gotSyslog, gotHook = syslog.events(t), hook.summaries()
		if len(gotSyslog) >= len(want) && len(gotHook) >= len(want) {
			break
		}
	}
	slices.SortFunc(want, byID) // the store lists by event time; a session's close is stamped before its terminate is written
	slices.SortFunc(gotSyslog, byID)
	slices.SortFunc(gotHook, byID)
	if diff := cmp.Diff(want, gotSyslog); diff != "" {
		t.Errorf("rsyslog received (-store +syslog):\n%s", diff)
	}
	if diff := cmp.Diff(want, gotHook); diff != "" {
		t.Errorf("webhook received (-store +webhook):\n%s", diff)
	}
	exported, _ := os.ReadFile(syslog.out)
	hook.mu.Lock()
	defer hook.mu.Unlock()
	hookJSON, _ := json.Marshal(hook.events)
	for _, secretText := range []string{string(credSecret), "denied-api-token", "Dave-pass-12345", "Carol-pass-1234", testserver.AdminPassword} {
		if strings.Contains(string(exported)+string(hookJSON), secretText) {
			t.Errorf("an exported event shows the secret %q", secretText)
		}
	}
	if len(hook.bad) > 0 {
		t.Errorf("webhook refused: %v", hook.bad)
	}
	if hook.attempts != len(want)+2 {
		t.Errorf("webhook saw %d attempts for %d events; want two refused and retried", hook.attempts, len(want))
	}
	if logs := gh.Logs.String(); !strings.Contains(logs, "audit export failed; retrying") || strings.Contains(logs, secret) {
		t.Errorf("logs do not show the retry, or show the secret")
	}
	// The counters move just after a delivery returns, so poll (bounded) rather than read once.
	wantMetrics := []string{
		fmt.Sprintf(`gatehouse_audit_export_events_total{result="sent",sink="syslog"} %d`, len(want)),
		fmt.Sprintf(`gatehouse_audit_export_events_total{result="sent",sink="webhook"} %d`, len(want)),
		`gatehouse_audit_export_retries_total{sink="webhook"} 2`,
		`gatehouse_audit_export_queue_length{sink="webhook"} 0`,
	}
	var missing []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + gh.Server.MetricsAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		missing = missing[:0]
		for _, m := range wantMetrics {
			if !strings.Contains(string(metrics), m+"\n") {
				missing = append(missing, m)
			}
		}
		if len(missing) == 0 {
			break
		}
	}
	if len(missing) > 0 {
		t.Errorf("metrics lack %v", missing)
	}
}

// TestSyslogCollectorRestart stops rsyslogd between events and starts it again: the exporter notices the closed
// connection, redials with backoff, and loses nothing.
func TestSyslogCollectorRestart(t *testing.T) {
	r := startRsyslog(t)
	x, err := auditexport.New(auditexport.Options{Syslog: auditexport.SyslogOptions{Address: "tcp+tls://" + r.addr, CAFile: r.caFile},
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close(context.Background())
	ev := func(id int64) model.AuditEvent {
		return model.AuditEvent{ID: id, Time: time.Now(), Actor: "admin", Action: "update", ObjectType: "role", ObjectID: fmt.Sprint("r", id), Outcome: "success"}
	}
	wait := func(n int) []summary {
		t.Helper()
		var got []summary
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if got = r.events(t); len(got) >= n {
				break
			}
		}
		return got
	}
	x.Export(ev(1))
	if got := wait(1); len(got) != 1 {
		t.Fatalf("before the restart rsyslog got %v", got)
	}
	r.stop()
	r.start(t)
	for id := int64(2); id <= 4; id++ {
		x.Export(ev(id))
	}
	got := wait(4)
	var ids []int64
	for _, s := range got {
		ids = append(ids, s.ID)
	}
	if diff := cmp.Diff([]int64{1, 2, 3, 4}, ids); diff != "" {
		t.Errorf("rsyslog got (-want +got):\n%s", diff)
	}
}
