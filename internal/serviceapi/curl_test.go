package serviceapi_test

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// curlRun runs the real curl with the CA of the test server and returns the body and HTTP status. Arguments are
// passed without a shell, exactly as the reference document's command line splits them.
func curlRun(t *testing.T, caFile string, args ...string) ([]byte, int) {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl is required for the reference flow test: %v", err)
	}
	full := append([]string{"--silent", "--show-error", "--cacert", caFile, "--write-out", "\n%{http_code}"}, args...)
	var stderr bytes.Buffer
	cmd := exec.Command(path, full...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	i := bytes.LastIndexByte(out, '\n')
	status, err := strconv.Atoi(string(out[i+1:]))
	if err != nil {
		t.Fatalf("curl status %q: %v", out[i+1:], err)
	}
	return out[:i], status
}

// TestReferenceCurlFlow runs the reference document's API client commands with real curl: the token request with
// -u <oauth_client_id>:<oauth_client_secret> and --data-urlencode, then a list with the bearer token.
func TestReferenceCurlFlow(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	caFile := filepath.Join(t.TempDir(), "gatehouse-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: gh.Server.CA().Root().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	c := tokAPIClient(t, gh, adm, "automation", "users-view", "api-targets-view")
	gh.Create("/api-proxy/api/v1/api-targets", adm, map[string]any{
		"name": "reference-target", "authorized_endpoints": []map[string]any{{"host": "api.example.com", "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/**"}}},
		"target_credential": map[string]any{"type": "token", "bearer_token": "upstream-token"},
	})

	body, status := curlRun(t, caFile, "-X", "POST",
		gh.URL+"/auth/api/v1/oauth/token",
		"-u", c.OAuthClientID+":"+c.OAuthClientSecret,
		"--data-urlencode", "grant_type=password",
		"--data-urlencode", "username="+c.ID,
		"--data-urlencode", "password="+c.Secret)
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" || tok.TokenType != "bearer" || tok.ExpiresIn != 1800 {
		t.Fatalf("token: %d %s", status, body)
	}

	for _, tt := range []struct{ path, wantName string }{
		{"/api-proxy/api/v1/api-targets", "reference-target"},
		{"/local-user-store/api/v1/users", "admin"},
	} {
		body, status = curlRun(t, caFile, "-X", "GET", "-H", "Authorization: Bearer "+tok.AccessToken, gh.URL+tt.path)
		var list struct {
			Count int              `json:"count"`
			Items []map[string]any `json:"items"`
		}
		if status != http.StatusOK || json.Unmarshal(body, &list) != nil || list.Count < 1 || len(list.Items) != list.Count {
			t.Fatalf("GET %s: %d %s", tt.path, status, body)
		}
		if !strings.Contains(string(body), `"`+tt.wantName+`"`) {
			t.Errorf("GET %s does not list %s: %s", tt.path, tt.wantName, body)
		}
	}

	// The same command with a wrong value is refused, and without the token a list is 401.
	body, status = curlRun(t, caFile, "-X", "POST", gh.URL+"/auth/api/v1/oauth/token",
		"-u", c.OAuthClientID+":"+c.OAuthClientSecret,
		"--data-urlencode", "grant_type=password",
		"--data-urlencode", "username="+c.ID,
		"--data-urlencode", "password=not-the-secret")
	if status != http.StatusUnauthorized || !strings.Contains(string(body), "invalid_grant") {
		t.Errorf("wrong secret: %d %s", status, body)
	}
	if _, status = curlRun(t, caFile, "-X", "GET", gh.URL+"/api-proxy/api/v1/api-targets"); status != http.StatusUnauthorized {
		t.Errorf("list without a token: %d", status)
	}
}
