package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cleanups runs, in reverse order, everything the benchmark has to undo: child process groups and temp dirs.
// It runs at normal exit and on SIGINT/SIGTERM.
type cleanups struct {
	mu  sync.Mutex
	fns []func()
}

func (c *cleanups) add(fn func()) {
	c.mu.Lock()
	c.fns = append(c.fns, fn)
	c.mu.Unlock()
}

func (c *cleanups) run() {
	c.mu.Lock()
	fns := c.fns
	c.fns = nil
	c.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

// child is a process the benchmark started in its own process group, so stopping it also stops its helpers
// (squid's certificate generators).
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// startChild starts argv with its output in logPath; the process group is killed by cl at exit.
func startChild(cl *cleanups, name, logPath string, env []string, argv ...string) (*child, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); close(c.done) }()
	cl.add(c.stop)
	return c, nil
}

// stop asks the whole process group to terminate, then kills it if it lingers.
func (c *child) stop() {
	pgid := c.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
	// Helpers may outlive the leader; the group kill reaches them too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-c.done
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *child) tail() string {
	b, _ := os.ReadFile(c.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// waitListening waits until addr accepts TCP connections or the child exits.
func waitListening(ctx context.Context, c *child, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			conn.Close()
			return nil
		}
		if c != nil && c.exited() {
			return fmt.Errorf("%s exited during start:\n%s", c.name, c.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not listen on %s within %s", c.name, addr, limit)
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	addrs, err := freeAddrs(1)
	if err != nil {
		return "", err
	}
	return addrs[0], nil
}

// freeAddrs returns n distinct free loopback addresses: the listeners stay open until all are picked, so the
// kernel cannot hand out one port twice.
func freeAddrs(n int) ([]string, error) {
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

// procTree is the pid and every descendant, read from /proc.
func procTree(root int) []int {
	parents := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil {
			parents[st.ppid] = append(parents[st.ppid], pid)
		}
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, parents[out[i]]...)
	}
	return out
}

type procStat struct {
	ppid       int
	cpuTicks   int64 // utime + stime
	childTicks int64 // cutime + cstime of reaped children
}

// readStat parses /proc/<pid>/stat; the command name may contain spaces, so fields are counted after ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procStat{}, errors.New("bad stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return procStat{}, errors.New("short stat")
	}
	num := func(k int) int64 { v, _ := strconv.ParseInt(f[k], 10, 64); return v }
	// After ')': state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
	return procStat{ppid: int(num(1)), cpuTicks: num(11) + num(12), childTicks: num(13) + num(14)}, nil
}

// clockTick is USER_HZ, 100 on every Linux this runs on.
const clockTick = 10 * time.Millisecond

// cpuTime sums CPU time over the tree, including children it has already reaped.
func cpuTime(root int) time.Duration {
	var ticks int64
	for _, pid := range procTree(root) {
		if st, err := readStat(pid); err == nil {
			ticks += st.cpuTicks + st.childTicks
		}
	}
	return time.Duration(ticks) * clockTick
}

// statusKB reads a "Name: N kB" field of /proc/<pid>/status.
func statusKB(pid int, field string) int64 {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// rssKB is the resident set of the tree now; peakKB the sum of each process's high-water mark.
func rssKB(root int) int64 {
	var n int64
	for _, pid := range procTree(root) {
		n += statusKB(pid, "VmRSS")
	}
	return n
}

func peakKB(root int) int64 {
	var n int64
	for _, pid := range procTree(root) {
		n += statusKB(pid, "VmHWM")
	}
	return n
}

// resetPeak resets VmHWM (writing 5 to clear_refs, Linux 4.0+), so each workload's peak is its own.
func resetPeak(root int) {
	for _, pid := range procTree(root) {
		_ = os.WriteFile(filepath.Join("/proc", strconv.Itoa(pid), "clear_refs"), []byte("5"), 0)
	}
}

// raiseFileLimit lifts the soft descriptor limit to the hard one; children inherit it, and 10,000 tunnels need
// two descriptors each in the client and in the proxy.
func raiseFileLimit() uint64 {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) != nil {
		return 0
	}
	r.Cur = r.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
	return r.Cur
}
