package server_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testbinary"
)

// TestStartFailuresAreOneLine runs the real binary into each start-up failure an operator meets and checks that it
// exits non-zero with one line naming the flag and the cause, not a panic (a taken port used to dereference nil in
// the cleanup of a half-opened server).
func TestStartFailuresAreOneLine(t *testing.T) {
	bin := testbinary.Build(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().String()
	closed := testbinary.FreeAddrs(t, 1)[0] // nothing listens there
	tmp := t.TempDir()
	file := filepath.Join(tmp, "a-file")
	os.WriteFile(file, []byte("x"), 0o600)
	badYAML := filepath.Join(tmp, "bad.yaml")
	os.WriteFile(badYAML, []byte("api-listen: [\n"), 0o600)
	unknownKey := filepath.Join(tmp, "unknown.yaml")
	os.WriteFile(unknownKey, []byte("api-lisen: 127.0.0.1:1\n"), 0o600)

	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		want  []string // every one must be in the line
		never string
	}{
		{"api address in use", []string{"--api-listen", busy}, 1, []string{"--api-listen " + busy, "address already in use"}, ""},
		{"proxy address in use", []string{"--proxy-listen", busy}, 1, []string{"--proxy-listen " + busy, "address already in use"}, ""},
		{"metrics address in use", []string{"--metrics-listen", busy}, 1, []string{"--metrics-listen " + busy, "address already in use"}, ""},
		{"data dir not a directory", []string{"--data-dir", filepath.Join(file, "data")}, 1, []string{"--data-dir " + filepath.Join(file, "data"), "not a directory"}, ""},
		{"database unreachable", []string{"--db", "postgres://gh:Hunter2-secret@" + closed + "/x?sslmode=disable"}, 1, []string{"--db postgres://gh:********@" + closed, "connection refused"}, "Hunter2-secret"},
		{"database URL unparsable", []string{"--db", "postgres://gh:Hunter2-secret@127.0.0.1:notaport/x"}, 1, []string{"--db ", "invalid port"}, "Hunter2-secret"},
		{"config file syntax", []string{"--config", badYAML}, 2, []string{"--config " + badYAML, "yaml"}, ""},
		{"config file unknown key", []string{"--config", unknownKey}, 2, []string{"--config " + unknownKey, `unknown key "api-lisen"`}, ""},
		{"config file missing", []string{"--config", filepath.Join(tmp, "nope.yaml")}, 2, []string{"--config", "no such file"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			free := testbinary.FreeAddrs(t, 2)
			args := []string{"serve", "--data-dir", filepath.Join(t.TempDir(), "data"), "--api-listen", free[0], "--proxy-listen", free[1]}
			args = append(args, tc.args...)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
				t.Fatalf("exit: %v, want code %d\nstdout: %s\nstderr: %s", err, tc.code, stdout.String(), stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if len(lines) != 1 {
				t.Fatalf("stderr has %d lines, want one:\n%s", len(lines), stderr.String())
			}
			line := lines[0]
			if !strings.HasPrefix(line, "gatehouse: ") {
				t.Errorf("line %q does not start with the program name", line)
			}
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("line %q does not contain %q", line, w)
				}
			}
			if tc.never != "" && strings.Contains(stdout.String()+stderr.String(), tc.never) {
				t.Errorf("output contains %q", tc.never)
			}
		})
	}
}
