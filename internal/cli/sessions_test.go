package cli_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/cli"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// proxiedSession creates an audited target for a local HTTPS origin, sends one request through the proxy as admin,
// and returns the session id.
func proxiedSession(t *testing.T, h *harness) (sessionID string, send func(path string) int) {
	t.Helper()
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"path":"`+r.URL.Path+`"}`)
	}))
	t.Cleanup(origin.Close)
	anchor := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: origin.Certificate().Raw})
	gh := h.srv
	adm := gh.AdminToken()
	var me struct {
		ID    string `json:"id"`
		Roles []struct {
			ID string `json:"id"`
		} `json:"roles"`
	}
	gh.JSON("GET", "/auth/api/v1/users/current", adm, nil, 200, &me)
	host := strings.TrimPrefix(origin.URL, "https://")
	target := gh.Create("/api-proxy/api/v1/api-targets", adm, map[string]any{
		"name": "origin", "roles": []map[string]string{{"id": me.Roles[0].ID}}, "audit_enabled": true,
		"tls_trust_anchors":    string(anchor),
		"authorized_endpoints": []map[string]any{{"host": host, "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/**"}}},
		"target_credential":    map[string]any{"type": "token", "bearer_token": "origin-token-123"},
	})
	cred := gh.Create("/api-proxy/api/v1/users/current/client-credentials", adm, map[string]any{"name": "cli", "target": map[string]string{"id": target}})
	_, secret := gh.Do("GET", "/api-proxy/api/v1/users/current/client-credentials/"+cred+"/secret", adm, nil)
	pool := x509.NewCertPool()
	pool.AddCert(gh.Server.CA().Root())
	proxyURL, _ := url.Parse("http://" + gh.Server.ProxyAddr())
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(client.CloseIdleConnections)
	send = func(path string) int {
		req, _ := http.NewRequest("GET", origin.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+string(secret))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("proxied request: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := send("/first"); code != 200 {
		t.Fatalf("proxied request: %d", code)
	}
	var list struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	gh.JSON("GET", "/connection-manager/api/v1/connections", adm, nil, 200, &list)
	if len(list.Items) != 1 {
		t.Fatalf("sessions: %+v", list)
	}
	return list.Items[0].ID, send
}

func TestSessionsAndTrail(t *testing.T) {
	h := newHarness(t)
	h.loginAdmin()
	id, send := proxiedSession(t, h)

	table := h.ok("", "sessions", "list")
	if !strings.Contains(table, id) || !strings.Contains(table, "CONNECTED") {
		t.Errorf("sessions list:\n%s", table)
	}
	filtered := h.listJSON("sessions", "list", "--status", "TERMINATED")
	if len(filtered) != 0 {
		t.Errorf("--status TERMINATED listed %d sessions", len(filtered))
	}
	show := h.ok("", "sessions", "show", id, "-o", "json")
	if !strings.Contains(show, `"requests"`) || !strings.Contains(show, `"audit_enabled": true`) {
		t.Errorf("sessions show:\n%s", show)
	}

	out := h.ok("", "trail", "show", id)
	if !strings.Contains(out, "/first") || !strings.Contains(out, "(1 of 1 exchanges)") {
		t.Errorf("trail show:\n%s", out)
	}
	har := h.ok("", "trail", "export", id)
	var doc struct {
		Log struct {
			Version string `json:"version"`
			Entries []struct {
				Request struct {
					Method string `json:"method"`
					URL    string `json:"url"`
				} `json:"request"`
				Response struct {
					Status int `json:"status"`
				} `json:"response"`
			} `json:"entries"`
		} `json:"log"`
	}
	if err := json.Unmarshal([]byte(har), &doc); err != nil || doc.Log.Version != "1.2" || len(doc.Log.Entries) != 1 ||
		!strings.HasSuffix(doc.Log.Entries[0].Request.URL, "/first") || doc.Log.Entries[0].Response.Status != 200 {
		t.Errorf("HAR export: %v %+v", err, doc)
	}
	if strings.Contains(har, "origin-token-123") {
		t.Error("HAR contains the target token")
	}

	// follow prints an exchange made while following, and ends when the session is terminated.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var fout, ferr testserver.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- cli.RunWithStdin(ctx, []string{"trail", "follow", id}, strings.NewReader(""), &fout, &ferr)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(fout.String(), "/second") && time.Now().Before(deadline) {
		send("/second")
		time.Sleep(100 * time.Millisecond)
	}
	h.ok("", "sessions", "terminate", id)
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(fout.String(), "/second") {
			t.Errorf("follow exit %d\nstdout: %s\nstderr: %s", code, fout.String(), ferr.String())
		}
	case <-ctx.Done():
		t.Fatal("follow did not end when the session was terminated")
	}
	if code := send("/third"); code != http.StatusForbidden {
		t.Errorf("request after terminate: %d, want 403", code)
	}
	if table := h.ok("", "sessions", "list", "--status", "TERMINATED"); !strings.Contains(table, id) {
		t.Errorf("terminated session not listed:\n%s", table)
	}
	h.fails(2, []string{"session id or --user"}, "", "sessions", "terminate")
}
