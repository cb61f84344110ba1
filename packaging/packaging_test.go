// Package packaging holds the systemd unit and the checks of it and of the container recipe (../Dockerfile).
package packaging

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testbinary"
)

// unitSettings reads key=value lines of a unit file; repeated keys keep every value.
func unitSettings(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		out[k] = append(out[k], v)
	}
	return out
}

// TestSystemdUnit checks the unit with systemd's own verifier against the real binary, scores its sandboxing
// with systemd-analyze security (offline), and checks that systemd waits longer than the shutdown grace.
func TestSystemdUnit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gatehouse binary")
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze is required (scripts/test.sh installs systemd): %v", err)
	}
	bin := testbinary.Build(t)
	src, err := os.ReadFile("systemd/gatehouse.service")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), "ExecStart=/usr/local/bin/gatehouse serve") {
		t.Fatal("ExecStart no longer runs /usr/local/bin/gatehouse serve; update this test")
	}
	// verify checks that ExecStart names an executable, so point it at the binary just built.
	unit := filepath.Join(t.TempDir(), "gatehouse.service")
	os.WriteFile(unit, []byte(strings.ReplaceAll(string(src), "/usr/local/bin/gatehouse", bin)), 0o644)

	out, err := exec.Command(analyze, "verify", "--man=no", unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// verify also loads the machine's other units; only complaints about this one count.
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "gatehouse.service") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}

	out, err = exec.Command(analyze, "security", "--offline=yes", "--no-pager", unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for gatehouse\.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	// 0 is fully locked down, 10 unprotected; systemd calls up to 2.9 "OK". Tightening the unit lowers it.
	if score, _ := strconv.ParseFloat(string(m[1]), 64); score > 2.0 {
		t.Errorf("exposure level %.1f, want at most 2.0:\n%s", score, out)
	}

	set := unitSettings(t, "systemd/gatehouse.service")
	stop, err := time.ParseDuration(set["TimeoutStopSec"][0] + "s")
	if err != nil {
		t.Fatal(err)
	}
	if grace := 15 * time.Second; stop <= grace {
		t.Errorf("TimeoutStopSec %v does not outlast the default --shutdown-grace %v", stop, grace)
	}
	for k, want := range map[string]string{"DynamicUser": "yes", "StateDirectory": "gatehouse", "NoNewPrivileges": "yes",
		"ProtectSystem": "strict", "CapabilityBoundingSet": "", "UMask": "0077"} {
		if got := set[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(set["ExecStart"][0], "--data-dir /var/lib/gatehouse") {
		t.Errorf("ExecStart does not use the state directory: %s", set["ExecStart"][0])
	}
}

// TestDockerfile lints the container recipe: no daemon is needed (and none runs where the tests do), so it checks
// what a reviewer would: pinned base images, a non-root user in the final stage, the data dir declared as a volume
// and used as the data dir, the default ports exposed, exec-form entrypoint, and a build context that sends
// nothing but the sources.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	type instr struct{ cmd, args string }
	var stages [][]instr
	var cont string
	for _, raw := range strings.Split(string(b), "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cont += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line, cont = cont+line, ""
		cmd, args, _ := strings.Cut(line, " ")
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("instruction before FROM: %s", line)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], instr{cmd, strings.TrimSpace(args)})
	}
	if len(stages) < 2 {
		t.Fatalf("want a build stage and a runtime stage, got %d stages", len(stages))
	}
	for _, st := range stages {
		img := strings.Fields(st[0].args)[0]
		if !strings.Contains(img, ":") || strings.HasSuffix(img, ":latest") {
			t.Errorf("base image %s is not pinned to a version", img)
		}
	}
	final := map[string][]string{}
	for _, in := range stages[len(stages)-1] {
		final[in.cmd] = append(final[in.cmd], in.args)
	}
	for _, st := range stages {
		for _, in := range st {
			if in.cmd == "ADD" {
				t.Errorf("ADD %s: use COPY (ADD fetches URLs and unpacks archives)", in.args)
			}
		}
	}
	user := final["USER"]
	if len(user) == 0 {
		t.Fatal("the final stage sets no USER: it would run as root")
	}
	if u := strings.Split(user[len(user)-1], ":")[0]; u == "0" || u == "root" {
		t.Errorf("final USER %s is root", user[len(user)-1])
	}
	if v := final["VOLUME"]; len(v) != 1 || !strings.Contains(v[0], `"/var/lib/gatehouse"`) {
		t.Errorf("VOLUME %v, want the data dir /var/lib/gatehouse", v)
	}
	if e := final["ENV"]; len(e) != 1 || e[0] != "GATEHOUSE_DATA_DIR=/var/lib/gatehouse" {
		t.Errorf("ENV %v, want GATEHOUSE_DATA_DIR=/var/lib/gatehouse", e)
	}
	if p := final["EXPOSE"]; len(p) != 1 || p[0] != "8443 20080" {
		t.Errorf("EXPOSE %v, want the default API and proxy ports", p)
	}
	if ep := final["ENTRYPOINT"]; len(ep) != 1 || !strings.HasPrefix(ep[0], `["`) {
		t.Errorf("ENTRYPOINT %v is not in exec form (a shell would swallow SIGTERM)", ep)
	}
	copiesData := false
	for _, c := range final["COPY"] {
		if strings.Contains(c, "--chown=65532:65532") && strings.HasSuffix(c, " /var/lib/gatehouse") {
			copiesData = true
		}
	}
	if !copiesData {
		t.Error("the data dir is not created owned by the runtime user, so a new volume would be root's")
	}
	// Every source the build stage copies from the context exists, and .dockerignore lets exactly those through.
	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range stages[0] {
		if in.cmd != "COPY" || strings.HasPrefix(in.args, "--from") {
			continue
		}
		f := strings.Fields(in.args)
		for _, src := range f[:len(f)-1] {
			if _, err := os.Stat(filepath.Join("..", src)); err != nil {
				t.Errorf("COPY %s: %v", src, err)
			}
			if !strings.Contains(string(ignore), "!"+strings.TrimSuffix(src, "/")) {
				t.Errorf(".dockerignore does not let %s through", src)
			}
		}
	}
	if !strings.HasPrefix(strings.TrimSpace(strings.Join(nonComments(string(ignore)), "\n")), "*") {
		t.Error(".dockerignore does not start by excluding everything (data dirs and walk-through files must stay out)")
	}
}

func nonComments(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}
