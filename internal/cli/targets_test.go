package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// targetSecret is planted as the target credential; no CLI output may show it.
const targetSecret = "tgt-secret-planted-4f1c"

func TestTargets(t *testing.T) {
	h := newHarness(t)
	h.loginAdmin()
	h.ok("", "roles", "create", "--name", "devs", "--permission", "api-targets-view")
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(targetSecret+"\n"), 0o600)

	id := strings.TrimSpace(h.ok("", "targets", "create", "--name", "github", "--comment", "GitHub API", "--host", "api.github.com",
		"--method", "GET,HEAD", "--path", "/repos/**", "--role", "devs", "--tag", "scm,public", "--token-file", tokenFile))

	yamlFile := filepath.Join(t.TempDir(), "k8s.yaml")
	os.WriteFile(yamlFile, []byte(`name: k8s
tags: [cluster]
authorized_endpoints:
  - host: "k8s.example.com:6443"
    protocols: [https]
    methods: ["*"]
    paths: ["/api/**"]
target_credential:
  type: header
  header_name: X-Api-Key
  header_value: `+targetSecret+`
`), 0o600)
	h.ok("", "targets", "create", "-f", yamlFile)

	t.Run("get", func(t *testing.T) {
		h := h.sub(t)
		var tg map[string]any
		h.jsonOut(&tg, "targets", "get", "github")
		want := []any{map[string]any{"host": "api.github.com", "protocols": []any{"https"}, "methods": []any{"GET", "HEAD"},
			"paths": []any{"/repos/**"}, "allow_unauthenticated": false}}
		if diff := cmp.Diff(want, tg["authorized_endpoints"]); diff != "" {
			t.Errorf("authorized_endpoints (-want +got):\n%s", diff)
		}
		cred := tg["target_credential"].(map[string]any)
		if cred["type"] != "token" || cred["bearer_token_set"] != true || tg["id"] != id {
			t.Errorf("target = %v", tg)
		}
		out := h.ok("", "targets", "get", id)
		if !strings.Contains(out, "bearer_token_set") || !strings.Contains(out, "GitHub API") {
			t.Errorf("table get:\n%s", out)
		}
	})
	t.Run("list", func(t *testing.T) {
		h := h.sub(t)
		out := h.ok("", "targets", "list")
		if diff := cmp.Diff([]string{"api.github.com", "k8s.example.com:6443"}, column(t, out, "HOSTS")); diff != "" {
			t.Errorf("HOSTS column (-want +got):\n%s\n%s", diff, out)
		}
		if diff := cmp.Diff([]string{"token", "header"}, column(t, out, "CREDENTIAL")); diff != "" {
			t.Errorf("CREDENTIAL column (-want +got):\n%s", diff)
		}
		if got := names(h.listJSON("targets", "list", "--sort-dir", "desc"), "name"); !slices.Equal(got, []string{"k8s", "github"}) {
			t.Errorf("list desc = %v", got)
		}
	})
	t.Run("search and tags", func(t *testing.T) {
		h := h.sub(t)
		if got := names(h.listJSON("targets", "search", "github"), "name"); !slices.Equal(got, []string{"github"}) {
			t.Errorf("search github = %v", got)
		}
		if got := names(h.listJSON("targets", "search", "--tag", "cluster"), "name"); !slices.Equal(got, []string{"k8s"}) {
			t.Errorf("search --tag cluster = %v", got)
		}
		if got := names(h.listJSON("targets", "search", "--role", "devs"), "name"); !slices.Equal(got, []string{"github"}) {
			t.Errorf("search --role devs = %v", got)
		}
		if out := h.ok("", "targets", "tags"); out != "cluster\npublic\nscm\n" {
			t.Errorf("tags = %q", out)
		}
	})
	t.Run("update keeps the secret", func(t *testing.T) {
		h := h.sub(t)
		var tg map[string]any
		h.jsonOut(&tg, "targets", "update", "github", "--comment", "changed", "--disabled")
		if tg["comment"] != "changed" || tg["disabled"] != "BY_ADMIN" || tg["target_credential"].(map[string]any)["bearer_token_set"] != true {
			t.Errorf("updated target = %v", tg)
		}
	})
	t.Run("validation errors name the property", func(t *testing.T) {
		h := h.sub(t)
		h.fails(1, []string{"property: authorized_endpoints[0].methods[0]"}, "",
			"targets", "create", "--name", "bad", "--host", "x.example.com", "--method", "FLY", "--token-file", tokenFile)
		h.fails(1, []string{"target_credential is required"}, "", "targets", "create", "--name", "bad", "--host", "x.example.com")
		h.fails(1, []string{"one target credential type"}, "",
			"targets", "create", "--name", "bad", "--host", "x.example.com", "--token-file", tokenFile, "--header-name", "X-A")
	})
	t.Run("delete", func(t *testing.T) {
		h := h.sub(t)
		h.ok("", "targets", "delete", "k8s")
		if got := names(h.listJSON("targets", "list"), "name"); !slices.Equal(got, []string{"github"}) {
			t.Errorf("after delete = %v", got)
		}
	})
}

func TestCredentialsAndEnv(t *testing.T) {
	h := newHarness(t)
	h.loginAdmin()
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(targetSecret), 0o600)
	h.ok("", "targets", "create", "--name", "echo", "--host", "echo.example.com", "--token-file", tokenFile)

	var cred map[string]any
	h.jsonOut(&cred, "credentials", "create", "--target", "echo", "--name", "laptop", "--valid-for", "8h", "--source", "10.0.0.0/8,127.0.0.1")
	secret, _ := cred["secret"].(string)
	id, _ := cred["id"].(string)
	if !strings.HasPrefix(secret, "ghp_") || id == "" {
		t.Fatalf("credentials create = %v", cred)
	}
	if diff := cmp.Diff([]any{"10.0.0.0/8", "127.0.0.1"}, cred["source_address"]); diff != "" {
		t.Errorf("source_address (-want +got):\n%s", diff)
	}
	if tg := cred["target"].(map[string]any); tg["name"] != "echo" {
		t.Errorf("target = %v", tg)
	}

	t.Run("table create prints the secret", func(t *testing.T) {
		h := h.sub(t)
		r := h.run("", "credentials", "create", "--target", "echo")
		if r.code != 0 || !strings.Contains(r.stdout, "SECRET:") || !strings.Contains(r.stdout, "ghp_") || !strings.Contains(r.stderr, "credentials secret") {
			t.Errorf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("list and get never show the secret", func(t *testing.T) {
		h := h.sub(t)
		out := h.ok("", "credentials", "list")
		if got := column(t, out, "NAME"); len(got) != 2 || !slices.Contains(got, "laptop") {
			t.Errorf("NAME column = %v", got)
		}
		if got := column(t, out, "TARGET"); got[0] != "echo" {
			t.Errorf("TARGET column = %v", got)
		}
		get := h.ok("", "credentials", "get", "laptop", "-o", "json")
		for _, s := range []string{out, get, h.ok("", "targets", "get", "echo", "-o", "json")} {
			if strings.Contains(s, secret) || strings.Contains(s, targetSecret) {
				t.Errorf("output shows a secret:\n%s", s)
			}
		}
	})
	t.Run("secret", func(t *testing.T) {
		h := h.sub(t)
		if out := h.ok("", "credentials", "secret", "laptop"); out != secret+"\n" {
			t.Errorf("secret = %q, want %q", out, secret)
		}
		kc := filepath.Join(t.TempDir(), "kubeconfig")
		h.ok("", "credentials", "secret", id, "--format", "kubeconfig", "--out", kc)
		st, err := os.Stat(kc)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("kubeconfig file: %v %v", st, err)
		}
		b, _ := os.ReadFile(kc)
		var doc struct {
			Clusters []struct {
				Cluster map[string]string `yaml:"cluster"`
			} `yaml:"clusters"`
			Users []struct {
				User map[string]string `yaml:"user"`
			} `yaml:"users"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil || len(doc.Clusters) != 1 || len(doc.Users) != 1 {
			t.Fatalf("kubeconfig %s: %v", b, err)
		}
		if doc.Users[0].User["token"] != secret || doc.Clusters[0].Cluster["server"] != "https://echo.example.com" {
			t.Errorf("kubeconfig = %+v", doc)
		}
	})
	t.Run("update", func(t *testing.T) {
		h := h.sub(t)
		var c map[string]any
		h.jsonOut(&c, "credentials", "update", "laptop", "--no-enabled", "--valid-for", "1h")
		if c["enabled"] != false {
			t.Errorf("updated = %v", c)
		}
		h.fails(1, []string{"may only narrow", "property: not_after"}, "", "credentials", "update", "laptop", "--valid-for", "100h")
		h.ok("", "credentials", "update", id, "--enabled")
	})
	t.Run("other user", func(t *testing.T) {
		h := h.sub(t)
		h.fails(1, []string{"no user"}, "", "credentials", "--user", "nobody", "list")
		if items := h.listJSON("credentials", "list", "--user", "admin"); len(items) != 2 {
			t.Errorf("admin's credentials by username = %d, want 2", len(items))
		}
	})
	t.Run("env", func(t *testing.T) {
		h := h.sub(t)
		caOut := filepath.Join(t.TempDir(), "ca.pem")
		out := h.ok("", "env", "--credential", "laptop", "--ca-out", caOut)
		if !strings.Contains(out, `curl -H "Authorization: Bearer $GATEHOUSE_TOKEN" https://echo.example.com/`) || !strings.Contains(out, "NO_PROXY") {
			t.Errorf("env output lacks the curl example or the NO_PROXY note:\n%s", out)
		}
		if !regexp.MustCompile(`gatehouse connect '[^']+' --credential \S+ --listen 127\.0\.0\.1:\d+`).MatchString(out) {
			t.Errorf("env output does not show the local connector:\n%s", out)
		}
		st, err := os.Stat(caOut)
		if err != nil || st.Mode().Perm() != 0o644 {
			t.Fatalf("CA file: %v %v", st, err)
		}
		var conf struct {
			Addresses []string `json:"addresses"`
			Chain     string   `json:"ca_certificate_chain"`
		}
		h.srv.JSON("GET", "/api-proxy/api/v1/conf", h.srv.AdminToken(), nil, 200, &conf)
		if b, _ := os.ReadFile(caOut); string(b) != conf.Chain {
			t.Errorf("CA file does not hold the proxy CA chain")
		}
		// Source the output in a real shell and read the variables back.
		script := out + "\nfor v in HTTPS_PROXY HTTP_PROXY https_proxy http_proxy SSL_CERT_FILE REQUESTS_CA_BUNDLE NODE_EXTRA_CA_CERTS CURL_CA_BUNDLE GATEHOUSE_TOKEN; do printf '%s=%s\\n' \"$v\" \"${!v}\"; done\n"
		got, err := exec.Command("bash", "-c", script).CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, got)
		}
		proxy := "http://" + conf.Addresses[0]
		want := strings.Join([]string{"HTTPS_PROXY=" + proxy, "HTTP_PROXY=" + proxy, "https_proxy=" + proxy, "http_proxy=" + proxy,
			"SSL_CERT_FILE=" + caOut, "REQUESTS_CA_BUNDLE=" + caOut, "NODE_EXTRA_CA_CERTS=" + caOut, "CURL_CA_BUNDLE=" + caOut,
			"GATEHOUSE_TOKEN=" + secret}, "\n") + "\n"
		if diff := cmp.Diff(want, string(got)); diff != "" {
			t.Errorf("variables after sourcing (-want +got):\n%s", diff)
		}
	})
	t.Run("env default CA path", func(t *testing.T) {
		h := h.sub(t)
		h.ok("", "env", "--credential", id)
		if _, err := os.Stat(filepath.Join(h.cfgDir, "proxy-ca.pem")); err != nil {
			t.Errorf("default CA file: %v", err)
		}
	})
	t.Run("delete", func(t *testing.T) {
		h := h.sub(t)
		h.ok("", "credentials", "delete", "laptop")
		h.fails(1, []string{`no credential with id or name "laptop"`}, "", "credentials", "get", "laptop")
	})
}

// TestUserCredentialRules runs the credential commands as a user without management rights: they see their own
// credentials only, and only for targets of their roles.
func TestUserCredentialRules(t *testing.T) {
	h := newHarness(t)
	h.loginAdmin()
	h.ok("", "roles", "create", "--name", "devs", "--permission", "api-proxy-credentials-own")
	h.ok("Carol-pass-123\n", "users", "create", "--username", "carol", "--role", "devs", "--password-stdin")
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(targetSecret), 0o600)
	open := strings.TrimSpace(h.ok("", "targets", "create", "--name", "open", "--host", "open.example.com", "--role", "devs", "--token-file", tokenFile))
	closed := strings.TrimSpace(h.ok("", "targets", "create", "--name", "closed", "--host", "closed.example.com", "--token-file", tokenFile))

	h.ok("Carol-pass-123\n", "login", "--server", h.srv.URL, "-u", "carol", "--password-stdin", "--ca-file", h.caFile)
	// carol cannot read targets, so she names them by id.
	var cred map[string]any
	h.jsonOut(&cred, "credentials", "create", "--target", open)
	if s, _ := cred["secret"].(string); !strings.HasPrefix(s, "ghp_") {
		t.Errorf("carol's credential = %v", cred)
	}
	h.fails(1, []string{"you hold no role of this target", "property: target.id", "FORBIDDEN 403"}, "", "credentials", "create", "--target", closed)
	h.fails(1, []string{"permission denied", "403"}, "", "users", "list")
	out := h.ok("", "env", "--credential", cred["id"].(string))
	if !strings.Contains(out, "TARGET-HOST") {
		t.Errorf("env for a user who cannot read the target:\n%s", out)
	}
}
