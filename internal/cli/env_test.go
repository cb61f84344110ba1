package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCredentialForAnotherUser covers what an admin meets preparing a credential for someone else: --user takes a
// username or an id everywhere, create says truthfully where the secret can be read again and warns when the owner
// holds no role of the target, and env prints a load command that works and an example request the target allows.
func TestCredentialForAnotherUser(t *testing.T) {
	h := newHarness(t)
	h.loginAdmin()
	h.ok("", "roles", "create", "--name", "kube", "--permission", "api-proxy-credentials-own")
	h.ok("", "roles", "create", "--name", "other", "--permission", "api-proxy-credentials-own")
	h.ok("Bob-pass-12345\n", "users", "create", "--username", "bob", "--role", "kube", "--password-stdin")
	var bob struct {
		ID string `json:"id"`
	}
	h.jsonOut(&bob, "users", "get", "bob")
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(targetSecret), 0o600)
	h.ok("", "targets", "create", "--name", "k8s", "--host", "k8s.example.com:6443", "--method", "GET", "--path", "/api/**", "--role", "kube", "--token-file", tokenFile)
	h.ok("", "targets", "create", "--name", "elsewhere", "--host", "elsewhere.example.com", "--role", "other", "--token-file", tokenFile)

	for _, user := range []string{"bob", bob.ID} {
		r := h.run("", "credentials", "--user", user, "create", "--target", "k8s", "--name", "laptop-"+user)
		if r.code != 0 {
			t.Fatalf("create for --user %s: %d %s", user, r.code, r.stderr)
		}
		if strings.Contains(r.stderr, "shown here once") || !strings.Contains(r.stderr, "gatehouse credentials secret ") ||
			!strings.Contains(r.stderr, "--user "+bob.ID) {
			t.Errorf("create for --user %s says:\n%s", user, r.stderr)
		}
		if strings.Contains(r.stderr, "warning:") {
			t.Errorf("warning for a credential that works:\n%s", r.stderr)
		}
	}

	// A target whose roles bob does not hold: created, with a warning in the API answer and from the CLI.
	r := h.run("", "credentials", "--user", "bob", "create", "--target", "elsewhere", "--name", "useless")
	if r.code != 0 || !strings.Contains(r.stderr, "warning: user bob holds no role of target elsewhere") {
		t.Errorf("create for a target bob cannot use: exit %d\n%s", r.code, r.stderr)
	}
	adm := h.srv.AdminToken()
	_, raw := h.srv.Do("GET", "/api-proxy/api/v1/api-targets?filter=elsewhere", adm, nil)
	var targets struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	json.Unmarshal(raw, &targets)
	code, body := h.srv.Do("POST", "/api-proxy/api/v1/users/"+bob.ID+"/client-credentials", adm,
		map[string]any{"name": "api", "target": map[string]string{"id": targets.Items[0].ID}})
	var created struct {
		ID       string   `json:"id"`
		Warnings []string `json:"warnings"`
	}
	if json.Unmarshal(body, &created); code != 201 || created.ID == "" || len(created.Warnings) != 1 {
		t.Errorf("API create for a target bob cannot use: %d %s", code, body)
	}

	out := h.ok("", "env", "--credential", "laptop-bob", "--user", "bob")
	if !strings.Contains(out, `curl -H "Authorization: Bearer $GATEHOUSE_TOKEN" https://k8s.example.com:6443/api`) {
		t.Errorf("env example is not a request the target allows:\n%s", out)
	}
	load := ""
	for _, line := range strings.Split(out, "\n") {
		if _, rest, ok := strings.Cut(line, `eval "$(gatehouse `); ok {
			load = strings.TrimSuffix(rest, `)"`)
		}
	}
	if !strings.Contains(load, "--user "+bob.ID) {
		t.Fatalf("env's load command %q does not name the owner", load)
	}
	if again := h.ok("", strings.Fields(load)...); again != out {
		t.Errorf("the printed load command gives different output:\n%s", again)
	}

	if items := h.listJSON("sessions", "list", "--user", "bob"); len(items) != 0 {
		t.Errorf("bob's sessions: %v", items)
	}
	h.fails(1, []string{"no user"}, "", "sessions", "list", "--user", "nobody")
	if out := h.ok("", "sessions", "terminate", "--user", "bob"); !strings.Contains(out, "terminated 0 session(s)") {
		t.Errorf("terminate --user bob: %s", out)
	}
}
