// Package radiustest runs a private FreeRADIUS server (Debian's freeradius package) for tests: its own
// configuration directory, a loopback port, a shared secret and a users file with fixed codes.
package radiustest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Server is a running FreeRADIUS.
type Server struct {
	// Address and Port are where it listens for Access-Requests.
	Address string
	Port    int
	// Secret is the shared secret clients from 127.0.0.0/8 use.
	Secret string
}

const config = `prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = {{dir}}
sbindir = /usr/sbin
logdir = {{dir}}
raddbdir = {{dir}}
radacctdir = {{dir}}
name = freeradius
confdir = {{dir}}
modconfdir = {{dir}}
run_dir = {{dir}}
db_dir = {{dir}}
libdir = /usr/lib/freeradius
pidfile = {{dir}}/radiusd.pid
max_request_time = 5
cleanup_delay = 1
max_requests = 64
hostname_lookups = no
log {
	destination = stdout
	auth = yes
}
security {
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = no
}
client gatehouse {
	ipaddr = 127.0.0.0/8
	secret = {{secret}}
	require_message_authenticator = yes
}
thread pool {
	start_servers = 1
	max_servers = 2
	min_spare_servers = 1
	max_spare_servers = 2
	max_requests_per_server = 0
}
modules {
	files {
		filename = {{dir}}/users
	}
	pap {
	}
}
server default {
	listen {
		type = auth
		ipaddr = {{addr}}
		port = {{port}}
	}
	authorize {
		files
		pap
	}
	authenticate {
		pap
	}
}
`

// Start runs freeradius in the foreground with users mapping login names to the one code each may use, and stops
// it when the test ends. It skips nothing: a missing freeradius binary fails the test, since CI installs it.
func Start(t testing.TB, secret string, users map[string]string) *Server {
	t.Helper()
	bin, err := exec.LookPath("freeradius")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/freeradius"); err != nil {
			t.Fatalf("radiustest: freeradius is not installed (Debian package freeradius): %v", err)
		}
	}
	dir := t.TempDir()
	addr := "127.0.0.1"
	port := freeUDPPort(t, addr)
	conf := strings.NewReplacer("{{dir}}", dir, "{{secret}}", secret, "{{addr}}", addr, "{{port}}", fmt.Sprint(port)).Replace(config)
	var ub strings.Builder
	for name, code := range users {
		fmt.Fprintf(&ub, "%s\tCleartext-Password := %q\n", name, code)
	}
	for name, body := range map[string]string{"radiusd.conf": conf, "users": ub.String(), "dictionary": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-f", "-X", "-d", dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("radiustest: start freeradius: %v", err)
	}
	ready := make(chan struct{})
	var log strings.Builder
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			if log.Len() < 1<<20 {
				log.WriteString(sc.Text() + "\n")
			}
			if !signalled && strings.Contains(sc.Text(), "Ready to process requests") {
				signalled = true
				close(ready)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cmd.Wait()
		if t.Failed() {
			t.Logf("freeradius output:\n%s", log.String())
		}
	})
	select {
	case <-ready:
	case <-done:
		t.Fatalf("radiustest: freeradius exited before it was ready:\n%s", log.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("radiustest: freeradius not ready after 30s")
	}
	return &Server{Address: addr, Port: port, Secret: secret}
}

func freeUDPPort(t testing.TB, addr string) int {
	c, err := net.ListenPacket("udp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
