package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/cli"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// harness is a running server and a private config dir for the CLI under test.
type harness struct {
	t      *testing.T
	srv    *testserver.Instance
	caFile string
	cfgDir string // $XDG_CONFIG_HOME/gatehouse
}

// newHarness starts a server and points HOME and XDG_CONFIG_HOME at a fresh directory, so the CLI's session file
// is the test's own.
func newHarness(t *testing.T) *harness {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	for _, v := range []string{"GATEHOUSE_PASSWORD", "GATEHOUSE_NEW_PASSWORD", "GATEHOUSE_USERNAME", "GATEHOUSE_SERVER", "GATEHOUSE_OTP",
		"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	srv := testserver.Start(t, testserver.Options{})
	caFile := filepath.Join(t.TempDir(), "root.pem")
	root := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Server.CA().Root().Raw})
	if err := os.WriteFile(caFile, root, 0o644); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, srv: srv, caFile: caFile, cfgDir: filepath.Join(home, ".config", "gatehouse")}
}

// result is one CLI run.
type result struct {
	code   int
	stdout string
	stderr string
}

// run runs the CLI with stdin and args.
func (h *harness) run(stdin string, args ...string) result {
	h.t.Helper()
	var out, errb bytes.Buffer
	code := cli.RunWithStdin(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// ok runs the CLI and fails the test unless it exits 0; it returns stdout.
func (h *harness) ok(stdin string, args ...string) string {
	h.t.Helper()
	r := h.run(stdin, args...)
	if r.code != 0 {
		h.t.Fatalf("gatehouse %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fails runs the CLI and fails the test unless it exits with code and stderr contains every part of want.
func (h *harness) fails(code int, want []string, stdin string, args ...string) result {
	h.t.Helper()
	r := h.run(stdin, args...)
	if r.code != code {
		h.t.Fatalf("gatehouse %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			h.t.Errorf("gatehouse %s: stderr %q does not contain %q", strings.Join(args, " "), r.stderr, w)
		}
	}
	return r
}

// loginAdmin logs the CLI in as the test server's admin.
func (h *harness) loginAdmin() {
	h.t.Helper()
	h.ok(testserver.AdminPassword+"\n", "login", "--server", h.srv.URL, "--username", "admin", "--password-stdin", "--ca-file", h.caFile)
}

// jsonOut runs the CLI with -o json appended and decodes stdout into out.
func (h *harness) jsonOut(out any, args ...string) {
	h.t.Helper()
	s := h.ok("", append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(s), out); err != nil {
		h.t.Fatalf("gatehouse %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, s)
	}
}

// listJSON runs a list command with -o json and returns its items.
func (h *harness) listJSON(args ...string) []map[string]any {
	h.t.Helper()
	var l struct {
		Count int              `json:"count"`
		Items []map[string]any `json:"items"`
	}
	h.jsonOut(&l, args...)
	if l.Count != len(l.Items) {
		h.t.Fatalf("gatehouse %s: count %d but %d items", strings.Join(args, " "), l.Count, len(l.Items))
	}
	return l.Items
}

// session reads the cached session file.
func (h *harness) session() map[string]any {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(h.cfgDir, "credentials.json"))
	if err != nil {
		h.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		h.t.Fatal(err)
	}
	return m
}

func (h *harness) writeSession(m map[string]any) {
	h.t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.cfgDir, "credentials.json"), b, 0o600); err != nil {
		h.t.Fatal(err)
	}
}

// names collects the values of key from list items.
func names(items []map[string]any, key string) []string {
	var out []string
	for _, it := range items {
		s, _ := it[key].(string)
		out = append(out, s)
	}
	return out
}

// column returns the cells of the column headed header in a table, checking that every row's cell starts where
// the header does (the columns are aligned).
func column(t *testing.T, table, header string) []string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(table, "\n"), "\n")
	start := strings.Index(lines[0], header)
	if start < 0 {
		t.Fatalf("no column %s in table:\n%s", header, table)
	}
	var out []string
	for _, l := range lines[1:] {
		if len(l) <= start || (start > 0 && l[start-1] != ' ') {
			t.Fatalf("row %q is not aligned with column %s:\n%s", l, header, table)
		}
		f := strings.Fields(l[start:])
		if len(f) == 0 {
			out = append(out, "")
			continue
		}
		out = append(out, f[0])
	}
	return out
}

// sub returns the harness for a subtest, so failures are reported on (and stop) the subtest, not its parent.
func (h *harness) sub(t *testing.T) *harness {
	c := *h
	c.t = t
	return &c
}
