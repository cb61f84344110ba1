package cli_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/cli"
	"github.com/gatehouse-dev/gatehouse/internal/directory/oidctest"
)

// urlWatcher is the CLI's stderr: it hands the first https URL printed to a channel, as a user would copy it.
type urlWatcher struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	urls chan string
	sent bool
}

var httpsURL = regexp.MustCompile(`https://\S+`)

func (w *urlWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if u := httpsURL.FindString(w.buf.String()); u != "" && !w.sent {
		w.sent = true
		w.urls <- u
	}
	return len(p), nil
}

func TestLoginOIDCThroughLoopback(t *testing.T) {
	h := newHarness(t)
	prov := oidctest.Start(t)
	prov.AddUser(oidctest.User{Subject: "sub-carol", Username: "carol", Groups: []string{"ops"}})
	prov.LoginAs("carol")
	prov.AllowRedirect(h.srv.URL + "/auth/api/v1/oidc/callback")
	adm := h.srv.AdminToken()
	h.srv.Create("/role-store/api/v1/sources", adm, map[string]any{"name": "corp-idp", "enabled": true, "connection": map[string]any{
		"type": "OIDC", "oidc_issuer": prov.Issuer, "oidc_client_id": prov.ClientID, "oidc_client_secret": prov.ClientSecret,
		"tls_trust_anchors": prov.CAPEM}})

	pool := x509.NewCertPool()
	pool.AddCert(h.srv.Server.CA().Root())
	pool.AppendCertsFromPEM([]byte(prov.CAPEM))
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	stderr := &urlWatcher{urls: make(chan string, 1)}
	browsed := make(chan error, 1)
	go func() {
		resp, err := browser.Get(<-stderr.urls)
		if err == nil {
			resp.Body.Close()
			if resp.Request.URL.Scheme != "http" || resp.StatusCode != http.StatusOK {
				t.Errorf("the browser ended at %s with %d, want the CLI's loopback page", resp.Request.URL, resp.StatusCode)
			}
		}
		browsed <- err
	}()
	var stdout bytes.Buffer
	code := cli.RunWithStdin(context.Background(), []string{"login", "--server", h.srv.URL, "--ca-file", h.caFile,
		"--oidc", "--source", "corp-idp", "--no-browser"}, strings.NewReader(""), &stdout, stderr)
	if err := <-browsed; err != nil {
		t.Fatalf("browser: %v", err)
	}
	if code != 0 {
		t.Fatalf("login --oidc: exit %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.buf.String())
	}
	if s := h.session(); s["username"] != "carol" {
		t.Errorf("session username = %v, want carol", s["username"])
	}
	if out := h.ok("", "whoami"); !strings.Contains(out, "carol") {
		t.Errorf("whoami after an OIDC login:\n%s", out)
	}
	h.fails(1, []string{"no enabled OIDC source", "corp-idp"}, "", "login", "--server", h.srv.URL, "--ca-file", h.caFile,
		"--oidc", "--source", "other", "--no-browser")
}
