package e2e_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testbinary"
)

// walkthroughBlocks returns the sh code blocks of the README's walk-through section, in order.
func walkthroughBlocks(t *testing.T, readme string) []string {
	t.Helper()
	_, section, ok := strings.Cut(readme, "\n## Walk-through")
	if !ok {
		t.Fatal("README has no walk-through section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)\n```sh\n(.*?)\n```\n").FindAllStringSubmatch(section, -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) < 10 {
		t.Fatalf("found %d sh blocks in the walk-through", len(blocks))
	}
	return blocks
}

// TestREADMEWalkthrough runs the README's walk-through, every sh block in order as one bash script, the way a
// newcomer would paste it: from a directory laid out like the repository (the sources linked in), with nothing
// changed but the four ports, which are swapped for free ones so the test cannot collide with anything running.
// It needs curl, python3-requests, go, node and kubectl (scripts/test.sh installs the Debian packages).
func TestREADMEWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gatehouse binary and five clients")
	}
	for _, tool := range []string{"bash", "curl", "python3", "go", "node", "kubectl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed; scripts/test.sh installs what the walk-through needs: %v", tool, err)
		}
	}
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	// "../" but not the "..." of an elided path; shared/ is where the project's design notes live, outside it.
	if m := regexp.MustCompile(`(?:^|[^.])\.\./|shared/|/work/`).FindString(readme); m != "" {
		t.Errorf("README points outside the repository: %q", m)
	}
	script := strings.Join(walkthroughBlocks(t, readme), "\n")
	ports := testbinary.FreeAddrs(t, 4)
	for i, p := range []string{":8443", ":20080", ":9443", ":9080"} {
		if !strings.Contains(script, p) {
			t.Fatalf("the walk-through no longer uses port %s; update this test", p)
		}
		script = strings.ReplaceAll(script, p, ports[i][strings.LastIndex(ports[i], ":"):])
	}

	// A directory that looks like a checkout: go build ./cmd/gatehouse works there, and walkthrough/ lands in it.
	dir := t.TempDir()
	for _, name := range []string{"go.mod", "go.sum", "cmd", "internal"} {
		abs, _ := filepath.Abs(filepath.Join("../..", name))
		if err := os.Symlink(abs, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LANG=C.UTF-8", "TMPDIR=" + t.TempDir()}
	for _, v := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOROOT", "GOPROXY", "GOFLAGS", "GOTOOLCHAIN"} {
		out, _ := exec.Command("go", "env", v).Output()
		env = append(env, v+"="+strings.TrimSpace(string(out)))
	}
	// A bound on the whole walk-through, so a client that hangs fails the test instead of stalling the suite.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", "set -euo pipefail\n"+script)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Kill the whole group: the server and the demo API run in the background of the script.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	outFile, err := os.Create(filepath.Join(t.TempDir(), "output"))
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	cmd.Stdout, cmd.Stderr = outFile, outFile // a file, not a pipe: background children cannot hold Wait up
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Whatever happens, nothing the script started in the background outlives the test.
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	err = cmd.Wait()
	out, _ := os.ReadFile(outFile.Name())
	logs, _ := os.ReadFile(filepath.Join(dir, "walkthrough", "gatehouse.log"))
	if err != nil {
		t.Fatalf("walk-through failed: %v\n--- output\n%s\n--- gatehouse.log\n%s", err, out, logs)
	}
	got := string(out)
	for _, tc := range []struct {
		what, want string
		n          int
	}{
		{"API client token (step 3)", `"token_type":"bearer"`, 1},
		{"hello through curl (header, username and id in the proxy URL), Python requests, Go, Node and gatehouse connect", `{"hello":"world"}`, 7},
		{"the admin path refused", `"error_code":"FORBIDDEN"`, 1},
		{"kubectl get pods", "demo-pod", 1},
		{"the target after the restart", "\ndemo-api\n", 1},
	} {
		if c := strings.Count(got, tc.want); c != tc.n {
			t.Errorf("%s: %q appears %d times, want %d", tc.what, tc.want, c, tc.n)
		}
	}
	if !regexp.MustCompile(`(?m)^OK \S+: \d+ records, closed`).MatchString(got) {
		t.Errorf("trail verify did not report a closed trail")
	}
	if strings.Contains(got, "the-real-upstream-token") || strings.Contains(string(logs), "the-real-upstream-token") {
		t.Errorf("the target secret reached the walk-through's output or the log")
	}
	if !strings.Contains(string(logs), "GATEHOUSE_ADMIN_PASSWORD is set but ignored") {
		t.Errorf("the restart did not warn that GATEHOUSE_ADMIN_PASSWORD was ignored")
	}
	if t.Failed() {
		t.Logf("--- output\n%s\n--- gatehouse.log\n%s", got, logs)
	}
}
