package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestUnroutedRequestsGetTheDialectsJSON pins that 404 and 405 from the API listener come in the error shape of the
// API the path belongs to (they used to be ServeMux's plain text), with Allow on 405.
func TestUnroutedRequestsGetTheDialectsJSON(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	tests := []struct {
		name, method, path string
		status             int
		code               func(body []byte) string
		want, allow        string
	}{
		{"service API path", "GET", "/local-user-store/api/v1/nothing-here", 404, serviceCode, "NOT_FOUND", ""},
		{"unknown prefix", "GET", "/nowhere", 404, serviceCode, "NOT_FOUND", ""},
		{"service API method", "DELETE", "/auth/api/v1/oauth/token", 405, serviceCode, "METHOD_NOT_ALLOWED", "POST"},
		{"healthz method", "POST", "/healthz", 405, serviceCode, "METHOD_NOT_ALLOWED", "GET, HEAD"},
		// The configuration API answers all of /api/ itself, in its own shape.
		{"configuration API path", "GET", "/api/no-such-thing/at-all", 401, configCode, "Unauthenticated", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, gh.URL+tt.path, nil)
			resp, err := gh.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("%d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			if got := tt.code(body); got != tt.want {
				t.Errorf("error code %q, want %q: %s", got, tt.want, body)
			}
			if tt.allow != "" && !strings.Contains(resp.Header.Get("Allow"), strings.Split(tt.allow, ",")[0]) {
				t.Errorf("Allow %q, want %q", resp.Header.Get("Allow"), tt.allow)
			}
		})
	}
}

func serviceCode(b []byte) string {
	var e struct {
		Code string `json:"error_code"`
	}
	json.Unmarshal(b, &e)
	return e.Code
}

func configCode(b []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal(b, &e)
	return e.Error.Code
}

// TestPermissionDeniedNamesThePermission: a 403 tells the operator which permission to grant.
func TestPermissionDeniedNamesThePermission(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	gh.Create("/local-user-store/api/v1/users", adm, map[string]any{"username": "plain", "password": "Plain-pass-1234", "enabled": true})
	code, body := gh.Do("GET", "/local-user-store/api/v1/users", gh.Token("plain", "Plain-pass-1234"), nil)
	var e struct {
		Code    string `json:"error_code"`
		Message string `json:"error_message"`
		// details is a list in PrivX's shape, which the PrivX SDK decodes.
		Details []struct {
			Code     string `json:"error_code"`
			Property string `json:"property"`
		} `json:"details"`
	}
	json.Unmarshal(body, &e)
	if code != 403 || !strings.Contains(e.Message, "users-view") || len(e.Details) != 1 ||
		e.Details[0].Code != "MISSING_PERMISSION" || e.Details[0].Property != "users-view" {
		t.Errorf("%d %s", code, body)
	}
}

// TestStartupLogsEveryAddress: the start-up line names the API, proxy and metrics listeners.
func TestStartupLogsEveryAddress(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{Configure: func(c *config.Config) { c.MetricsListen = "127.0.0.1:0" }})
	for _, line := range strings.Split(gh.Logs.String(), "\n") {
		if strings.Contains(line, `"msg":"gatehouse started"`) {
			for _, addr := range []string{gh.Server.APIAddr(), gh.Server.ProxyAddr(), gh.Server.MetricsAddr()} {
				if addr == "" || !strings.Contains(line, addr) {
					t.Errorf("start-up line lacks %q: %s", addr, line)
				}
			}
			return
		}
	}
	t.Fatalf("no start-up line in:\n%s", gh.Logs.String())
}

// TestRequestIDs follows one id from the request header to the answer's header, the error body of each dialect,
// the access log and the audit event, and checks that an unusable incoming id is replaced.
func TestRequestIDs(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	send := func(method, path, id, body string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, gh.URL+path, strings.NewReader(body))
		if !strings.HasPrefix(path, "/api/") { // the configuration API call goes without a login, to fail
			req.Header.Set("Authorization", "Bearer "+adm)
		}
		req.Header.Set("Content-Type", "application/json")
		if id != "" {
			req.Header.Set("X-Request-Id", id)
		}
		resp, err := gh.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, b
	}

	resp, body := send("POST", "/role-store/api/v1/roles", "support-case-42", `{"name":""}`)
	var e struct {
		RequestID string `json:"request_id"`
	}
	json.Unmarshal(body, &e)
	if resp.StatusCode != 400 || resp.Header.Get("X-Request-Id") != "support-case-42" || e.RequestID != "support-case-42" {
		t.Errorf("service API error: %d X-Request-Id=%q %s", resp.StatusCode, resp.Header.Get("X-Request-Id"), body)
	}
	resp, body = send("GET", "/api/configuration", "cfg-req-7", "")
	var ce struct {
		Error struct {
			Details struct {
				RequestID string `json:"request_id"`
			} `json:"details"`
		} `json:"error"`
	}
	json.Unmarshal(body, &ce)
	if resp.Header.Get("X-Request-Id") != "cfg-req-7" || ce.Error.Details.RequestID != "cfg-req-7" {
		t.Errorf("configuration API error: %d %s", resp.StatusCode, body)
	}
	resp, _ = send("GET", "/healthz", "<script>", "")
	if got := resp.Header.Get("X-Request-Id"); got == "<script>" || len(got) != 32 {
		t.Errorf("an unusable incoming id was kept or not replaced: %q", got)
	}
	if resp, _ = send("GET", "/healthz", "", ""); len(resp.Header.Get("X-Request-Id")) != 32 {
		t.Errorf("no id minted: %q", resp.Header.Get("X-Request-Id"))
	}

	resp, body = send("POST", "/role-store/api/v1/roles", "create-role-9", `{"name":"auditors","permissions":["audit-view"]}`)
	var created struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &created); resp.StatusCode != 201 {
		t.Fatalf("create role: %d %s", resp.StatusCode, body)
	}
	var events struct {
		Items []struct {
			ObjectID  string `json:"object_id"`
			RequestID string `json:"request_id"`
		} `json:"items"`
	}
	gh.JSON("GET", "/audit/api/v1/events?object_id="+created.ID, adm, nil, 200, &events)
	if len(events.Items) != 1 || events.Items[0].RequestID != "create-role-9" {
		t.Errorf("audit events of the new role: %+v", events.Items)
	}

	found := false
	for _, line := range strings.Split(gh.Logs.String(), "\n") {
		if strings.Contains(line, `"msg":"api request"`) && strings.Contains(line, `"request_id":"support-case-42"`) &&
			strings.Contains(line, `"status":400`) && strings.Contains(line, `"route":"POST /role-store/api/v1/roles"`) {
			found = true
		}
	}
	if !found {
		t.Errorf("no access log line for support-case-42")
	}
}
