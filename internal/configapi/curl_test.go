package configapi_test

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestReferenceCurlFlow scripts the configuration API with real curl exactly as the reference shows: log in with
// --basic --user into a cookie jar, read the configuration with --cookie, open a transaction, POST a user list,
// commit, and find the list committed.
func TestReferenceCurlFlow(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl is required for the reference flow test: %v", err)
	}
	gh := testserver.Start(t, testserver.Options{Postgres: true})
	dir := t.TempDir()
	caFile, jar := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cookies")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: gh.Server.CA().Root().Raw}), 0o600)
	run := func(args ...string) ([]byte, int) {
		t.Helper()
		full := append([]string{"--silent", "--show-error", "--cacert", caFile, "--write-out", "\n%{http_code}"}, args...)
		var stderr bytes.Buffer
		cmd := exec.Command(curl, full...)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("curl %v: %v: %s", args, err, stderr.String())
		}
		i := bytes.LastIndexByte(out, '\n')
		status, _ := strconv.Atoi(string(out[i+1:]))
		return out[:i], status
	}

	body, status := run("--basic", "--user", "admin:"+testserver.AdminPassword, "--cookie-jar", jar, gh.URL+"/api/authentication")
	if status != 200 || !strings.Contains(string(body), `"transaction": "/api/transaction"`) {
		t.Fatalf("login: %d %s", status, body)
	}
	if b, _ := os.ReadFile(jar); !strings.Contains(string(b), "session_id") {
		t.Fatalf("cookie jar has no session_id: %s", b)
	}
	if body, status = run("--cookie", jar, gh.URL+"/api/configuration"); status != 200 || !strings.Contains(string(body), "/api/configuration/http") {
		t.Fatalf("configuration: %d %s", status, body)
	}
	if body, status = run("--cookie", jar, "-X", "POST", gh.URL+"/api/transaction"); status != 200 || !strings.Contains(string(body), `"open"`) {
		t.Fatalf("open transaction: %d %s", status, body)
	}
	body, status = run("--cookie", jar, "-X", "POST", "-H", "Content-Type: application/json",
		"--data", `{"name":"no_root","allow":"all_users","except":["root"]}`, gh.URL+"/api/configuration/policies/userlists")
	var created struct {
		Key string `json:"key"`
	}
	if status != 201 || json.Unmarshal(body, &created) != nil || created.Key == "" {
		t.Fatalf("POST userlist: %d %s", status, body)
	}
	body, status = run("--cookie", jar, "-X", "PUT", "-H", "Content-Type: application/json", "--data", `{"status":"commit"}`, gh.URL+"/api/transaction")
	if status != 200 || !strings.Contains(string(body), `"closed"`) {
		t.Fatalf("commit: %d %s", status, body)
	}
	body, status = run("--cookie", jar, gh.URL+"/api/configuration/policies/userlists/"+created.Key)
	if status != 200 || !strings.Contains(string(body), `"no_root"`) {
		t.Fatalf("committed list: %d %s", status, body)
	}
}
