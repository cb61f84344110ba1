package version_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinaryPrintsCommit builds the real binary in a fresh git checkout of this source tree, as `go build` does for
// anyone who cloned the repository, and checks that `gatehouse version` and `gatehouse --version` name the commit
// the toolchain stamped into it.
func TestBinaryPrintsCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gatehouse binary")
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	dir := t.TempDir()
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
		}
		return strings.TrimSpace(string(b))
	}
	for _, p := range []string{"go.mod", "go.sum", "cmd", "internal"} {
		run("cp", "-r", filepath.Join(root, p), dir)
	}
	run("git", "init", "-q")
	run("git", "add", "-A")
	run("git", "commit", "-q", "-m", "build")
	rev := run("git", "rev-parse", "HEAD")
	// -buildvcs=true: stamping is the default, but an environment may turn it off through GOFLAGS.
	run("go", "build", "-buildvcs=true", "-o", "gatehouse", "./cmd/gatehouse")
	v := run("./gatehouse", "version")
	if !strings.HasPrefix(v, "gatehouse v") || !strings.Contains(v, "commit "+rev[:12]+",") {
		t.Errorf("gatehouse version = %q, want a version and commit %s", v, rev[:12])
	}
	if flag := run("./gatehouse", "--version"); flag != v {
		t.Errorf("gatehouse --version = %q, gatehouse version = %q", flag, v)
	}
}
