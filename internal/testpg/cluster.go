package testpg

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// serverSettings trade durability for speed: the cluster lives for one test
// run and is deleted afterwards, so a crash losing data does not matter.
var serverSettings = []string{
	"-c", "listen_addresses=127.0.0.1",
	"-c", "fsync=off",
	"-c", "synchronous_commit=off",
	"-c", "full_page_writes=off",
	"-c", "max_connections=200",
}

// cluster is a throwaway PostgreSQL cluster in a temporary directory.
type cluster struct {
	dir      string // temporary directory: data/, logs and the unix socket
	pgCtl    string
	dsn      string
	pg       *user.User // OS user the server runs as when we are root; nil otherwise
	watchdog *exec.Cmd
	// watchdogPipe is the writing end of the watchdog's stdin, kept open for
	// as long as the cluster should live.
	watchdogPipe *os.File
}

// startCluster initializes and starts a cluster listening on 127.0.0.1 with
// trust authentication for the superuser postgres.
func startCluster() (*cluster, error) {
	binDir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	c := &cluster{pgCtl: filepath.Join(binDir, "pg_ctl")}

	// initdb and postgres refuse to run as root, so root runs them as the
	// postgres OS user, which must be able to reach the directory: /tmp is
	// world-searchable where $TMPDIR (say, under /root) may not be.
	tmpRoot := os.TempDir()
	if os.Geteuid() == 0 {
		if c.pg, err = user.Lookup("postgres"); err != nil {
			return nil, fmt.Errorf("running as root needs a postgres OS user to run the server: %w", err)
		}
		tmpRoot = "/tmp"
	}
	if c.dir, err = os.MkdirTemp(tmpRoot, "gatehouse-testpg-"); err != nil {
		return nil, fmt.Errorf("make cluster directory: %w", err)
	}
	// The watchdog starts before anything is put in the directory, so that
	// even a test binary dying during initdb leaves nothing behind.
	if err := c.startWatchdog(); err != nil {
		c.removeDir()
		return nil, err
	}
	if err := c.chownDir(); err != nil {
		c.stop()
		return nil, err
	}

	data := filepath.Join(c.dir, "data")
	initdb := filepath.Join(binDir, "initdb")
	// -N skips fsync of the new files; --locale=C avoids depending on the
	// machine's locales.
	if err := c.run("initdb", initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "-N"); err != nil {
		c.stop()
		return nil, err
	}

	// A port found free can be taken before the server binds it, by another
	// test binary doing the same; a few attempts make that race harmless.
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			c.stop()
			return nil, err
		}
		opts := strings.Join(append([]string{"-k", shellQuote(c.dir), "-p", strconv.Itoa(port)}, serverSettings...), " ")
		err = c.run("pg_ctl start", c.pgCtl, "start", "-w", "-t", "60", "-s", "-D", data,
			"-l", filepath.Join(c.dir, "postgres.log"), "-o", opts)
		if err == nil {
			c.dsn = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
			break
		}
		if attempt == 2 {
			c.stop()
			return nil, err
		}
	}
	return c, nil
}

// findBinDir finds the directory of initdb and pg_ctl: on PATH, or else in
// Debian's versioned directories, which the postgresql package does not put
// on PATH.
func findBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		// Resolve symlinks such as /usr/local/bin/initdb so pg_ctl is taken
		// from the same installation.
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first.
	slices.SortFunc(dirs, func(a, b string) int {
		return versionOf(b) - versionOf(a)
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries not found (no initdb on PATH or in /usr/lib/postgresql/*/bin); " +
		"install PostgreSQL (Debian: apt-get install postgresql) or set " + EnvVar + " to a running cluster")
}

// versionOf returns the major version in a path like /usr/lib/postgresql/15/bin.
func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// chownDir gives the cluster directory to the postgres user when we are root.
func (c *cluster) chownDir() error {
	if c.pg == nil {
		return nil
	}
	uid, _ := strconv.Atoi(c.pg.Uid)
	gid, _ := strconv.Atoi(c.pg.Gid)
	if err := os.Chown(c.dir, uid, gid); err != nil {
		return fmt.Errorf("chown cluster directory to postgres: %w", err)
	}
	return nil
}

// command prepares a PostgreSQL program to run as the postgres user when we
// are root. Setting the credential directly avoids depending on runuser or su.
func (c *cluster) command(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Dir = c.dir
	if c.pg != nil {
		uid, _ := strconv.ParseUint(c.pg.Uid, 10, 32)
		gid, _ := strconv.ParseUint(c.pg.Gid, 10, 32)
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)},
		}
	}
	return cmd
}

// run runs a PostgreSQL program quietly, writing its output to a log file in
// the cluster directory and quoting that log only if the program fails. The
// output goes to a file rather than a pipe because pg_ctl start leaves the
// server running, and a server holding our pipe would keep us waiting.
func (c *cluster) run(what, bin string, args ...string) error {
	logPath := filepath.Join(c.dir, strings.ReplaceAll(what, " ", "-")+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	cmd := c.command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(logPath)
		if srv, rerr := os.ReadFile(filepath.Join(c.dir, "postgres.log")); rerr == nil {
			out = append(out, srv...)
		}
		return fmt.Errorf("%s: %w\n%s", what, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// startWatchdog starts a process that stops the cluster and deletes its
// directory once this test binary is gone, however it goes: Main never gets
// to clean up after a test timeout, a panic, a kill, or in a package that
// does not call Main. The watchdog waits for end-of-file on a pipe whose only
// writer is this process, so it needs no polling and is not fooled by a
// reused process id. It runs in a session of its own so that a Ctrl-C meant
// for the tests does not kill it before it has cleaned up.
func (c *cluster) startWatchdog() error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start watchdog: %w", err)
	}
	defer r.Close()
	cmd := exec.Command("/bin/sh", "-c", watchdogScript, "testpg-watchdog", c.dir)
	cmd.Stdin = r
	// No stdout or stderr: go test waits for every holder of the test
	// binary's output to close it before it reports the package.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("start watchdog: %w", err)
	}
	c.watchdog, c.watchdogPipe = cmd, w
	return nil
}

// watchdogScript waits for end-of-file on stdin, then stops the server of the
// cluster in directory $1 and removes the directory. SIGQUIT is PostgreSQL's
// immediate shutdown; sending it directly, rather than through pg_ctl, works
// the same whether the watchdog runs as root or as the server's own user.
const watchdogScript = `trap '' INT TERM HUP
read _ || true
pid=$(head -n 1 "$1/data/postmaster.pid" 2>/dev/null)
if [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null; then
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
	kill -KILL "$pid" 2>/dev/null
fi
rm -rf "$1"
`

// stop stops the server at once, since its data is about to be deleted, and
// removes the cluster directory.
func (c *cluster) stop() error {
	if c.watchdog != nil && c.watchdog.Process != nil {
		// We clean up ourselves; the watchdog must not race us for it.
		c.watchdog.Process.Kill()
		c.watchdog.Wait()
		c.watchdogPipe.Close()
	}
	var errs []error
	data := filepath.Join(c.dir, "data")
	// No pid file means no server: the start failed or never got that far.
	if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil {
		if err := c.run("pg_ctl stop", c.pgCtl, "stop", "-s", "-m", "immediate", "-D", data); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove cluster directory: %w", err))
	}
	return errors.Join(errs...)
}

// removeDir removes the cluster directory after a failed start, when there is
// no server to stop.
func (c *cluster) removeDir() { os.RemoveAll(c.dir) }

// shellQuote quotes s for /bin/sh, which pg_ctl hands the server options to.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
