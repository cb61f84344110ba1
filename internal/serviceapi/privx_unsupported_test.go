package serviceapi_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/serviceapi"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestPrivXUnsupportedAnswers checks that the SDK's calls of features Gatehouse lacks are answered NOT_SUPPORTED
// with a reason, on the real server: every listed pattern is reachable (no route swallows it for both methods),
// while real routes, real 405s and unknown paths keep their answers.
func TestPrivXUnsupportedAnswers(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	answer := func(method, path string, body any) (int, string, string) {
		t.Helper()
		status, b := gh.Do(method, path, adm, body)
		var e struct {
			Code    string `json:"error_code"`
			Message string `json:"error_message"`
		}
		json.Unmarshal(b, &e)
		return status, e.Code, e.Message
	}
	wild := regexp.MustCompile(`\{[a-z_]+\}`)
	for _, p := range serviceapi.PrivXUnsupportedPatterns() {
		path := wild.ReplaceAllString(p, "x1")
		if strings.HasSuffix(path, "/") {
			path += "x2"
		}
		t.Run(p, func(t *testing.T) {
			reached := false
			for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
				status, code, msg := answer(m, path, map[string]any{})
				if code == "NOT_SUPPORTED" {
					reached = true
					if status != 404 || !strings.Contains(msg, "not supported by Gatehouse: ") {
						t.Errorf("%s %s: %d %s %q", m, path, status, code, msg)
					}
				}
			}
			if !reached {
				t.Errorf("%s: no method gets NOT_SUPPORTED; a route serves the path, so the entry is dead", path)
			}
		})
	}
	// The SDK's token exchange names the supported logins.
	if _, code, msg := answer("POST", "/auth/api/v1/token/login", map[string]string{"token": "eyJ.x.y", "client_id": "privx-ui", "scope": "privx-user"}); code != "NOT_SUPPORTED" ||
		!strings.Contains(msg, "WithExchangeToken") || !strings.Contains(msg, "WithClientID") {
		t.Errorf("token exchange: %s %q", code, msg)
	}
	for _, c := range []struct{ method, path, code string }{
		{"GET", "/settings/api/v1/settings/api-proxy", ""},
		{"GET", "/settings/api/v1/settings/ssh-proxy", "NOT_SUPPORTED"},
		{"DELETE", "/settings/api/v1/settings/api-proxy", "METHOD_NOT_ALLOWED"},
		{"PATCH", "/role-store/api/v1/roles", "METHOD_NOT_ALLOWED"},
		{"GET", "/role-store/api/v1/no-such-thing", "NOT_FOUND"},
		{"POST", "/role-store/api/v1/roles/evaluate", "NOT_SUPPORTED"},
	} {
		if _, code, _ := answer(c.method, c.path, nil); code != c.code {
			t.Errorf("%s %s: error_code %q, want %q", c.method, c.path, code, c.code)
		}
	}
}
