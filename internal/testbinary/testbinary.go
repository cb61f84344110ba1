// Package testbinary runs the real gatehouse binary as a child process, for tests that need a process boundary:
// SIGKILL in the middle of work, restarts on the same data dir, the offline CLI commands.
package testbinary

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// AdminPassword is the first-start admin password every process is started with.
const AdminPassword = "Binary-admin-pass-1"

// Build compiles cmd/gatehouse from the module root into a temporary directory, as an operator would build it.
func Build(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "gatehouse")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/gatehouse")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(out)))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return bin
}

// FreeAddrs returns n distinct loopback addresses whose ports were free a moment ago.
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	var addrs []string
	var held []net.Listener // held until all are picked, so they differ
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	for _, ln := range held {
		ln.Close()
	}
	return addrs
}

// Proc is `gatehouse serve` running as a child process, logged in as admin.
type Proc struct {
	t         testing.TB
	Bin       string
	DataDir   string
	APIAddr   string
	ProxyAddr string
	// API is an HTTPS client that trusts only the server's own CA.
	API *http.Client
	// Token is the admin's access token.
	Token string

	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited and been reaped
	logFile string        // stdout and stderr
}

// Serve starts `gatehouse serve` on dataDir with fresh loopback ports and extra flags, waits until it is healthy,
// logs in as admin, and stops it gracefully at test cleanup.
func Serve(t testing.TB, bin, dataDir string, extra ...string) *Proc {
	t.Helper()
	return ServeLimited(t, bin, dataDir, 0, extra...)
}

// ServeLimited is Serve with the process's RLIMIT_NOFILE (soft and hard) set to nofile, 0 for the inherited one,
// so a test can run the server out of descriptors with a few hundred connections.
func ServeLimited(t testing.TB, bin, dataDir string, nofile int, extra ...string) *Proc {
	t.Helper()
	addrs := FreeAddrs(t, 2)
	p := &Proc{t: t, Bin: bin, DataDir: dataDir, APIAddr: addrs[0], ProxyAddr: addrs[1], done: make(chan struct{})}
	logs, err := os.CreateTemp(t.TempDir(), "serve-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close() // the child has its own descriptor
	p.logFile = logs.Name()
	args := append([]string{"serve", "--data-dir", dataDir, "--api-listen", p.APIAddr, "--proxy-listen", p.ProxyAddr}, extra...)
	p.cmd = exec.Command(bin, args...)
	if nofile > 0 {
		// The shell lowers the limit and execs the binary in its place, so the process is still p.cmd's.
		p.cmd = exec.Command("sh", append([]string{"-c", "ulimit -n " + strconv.Itoa(nofile) + ` && exec "$0" "$@"`, bin}, args...)...)
	}
	p.cmd.Env = append(os.Environ(), "GATEHOUSE_ADMIN_PASSWORD="+AdminPassword)
	p.cmd.Stdout, p.cmd.Stderr = logs, logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start gatehouse: %v", err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.Stop)
	p.waitHealthy()
	p.Token = p.Login("admin", AdminPassword)
	return p
}

// waitHealthy polls /healthz, trusting the CA root the server writes to its data dir on first start.
func (p *Proc) waitHealthy() {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if p.API == nil {
			if pemBytes, err := os.ReadFile(filepath.Join(p.DataDir, "ca", "root.crt")); err == nil {
				pool := x509.NewCertPool()
				if pool.AppendCertsFromPEM(pemBytes) {
					p.API = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 20 * time.Second}
				}
			}
		}
		if p.API != nil {
			if resp, err := p.API.Get("https://" + p.APIAddr + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
			}
		}
		select {
		case <-p.done:
			p.t.Fatalf("gatehouse exited during start:\n%s", p.Logs())
		default:
		}
		if time.Now().After(deadline) {
			p.Kill()
			p.t.Fatalf("gatehouse did not become healthy:\n%s", p.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// In returns p reporting to t, for use inside a subtest.
func (p *Proc) In(t testing.TB) *Proc {
	c := *p
	c.t = t
	return &c
}

// Logs is what the process wrote so far.
func (p *Proc) Logs() string {
	b, _ := os.ReadFile(p.logFile)
	return string(b)
}

// Kill sends SIGKILL and waits until the process is reaped: no shutdown code runs.
func (p *Proc) Kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Signal sends sig to the process without waiting.
func (p *Proc) Signal(sig os.Signal) {
	p.cmd.Process.Signal(sig)
}

// Wait waits up to d for the process to exit and returns its exit code; it fails the test (and kills the
// process) if it is still running then.
func (p *Proc) Wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.t.Errorf("gatehouse still running after %v:\n%s", d, p.Logs())
		p.Kill()
	}
	return p.cmd.ProcessState.ExitCode()
}

// Stop asks for a graceful shutdown (SIGTERM), bounded, then kills.
func (p *Proc) Stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.t.Errorf("gatehouse did not stop within 20s of SIGTERM")
		p.Kill()
	}
}

// Login returns an access token from the password grant.
func (p *Proc) Login(user, pw string) string {
	p.t.Helper()
	form := url.Values{"grant_type": {"password"}, "client_id": {"gatehouse-cli"}, "username": {user}, "password": {pw}}
	resp, err := p.API.PostForm("https://"+p.APIAddr+"/auth/api/v1/oauth/token", form)
	if err != nil {
		p.t.Fatalf("token: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil || out.AccessToken == "" {
		p.t.Fatalf("token for %s: %d %s", user, resp.StatusCode, b)
	}
	return out.AccessToken
}

// Call sends a JSON request as the admin, fails the test unless the status is want, and decodes into out.
func (p *Proc) Call(method, path string, body any, want int, out any) []byte {
	p.t.Helper()
	return p.CallAs(p.Token, method, path, body, want, out)
}

// CallAs is Call with another principal's access token.
func (p *Proc) CallAs(token, method, path string, body any, want int, out any) []byte {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			p.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "https://"+p.APIAddr+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.API.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		p.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			p.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return b
}

// Create POSTs body as the admin and returns the new object's id.
func (p *Proc) Create(path string, body any) string {
	p.t.Helper()
	var out struct {
		ID string `json:"id"`
	}
	p.Call("POST", path, body, http.StatusCreated, &out)
	return out.ID
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
