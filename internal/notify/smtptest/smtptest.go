// Package smtptest runs a real SMTP server for tests: Debian's aiosmtpd (python3-aiosmtpd), which prints every
// message it receives.
package smtptest

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a running aiosmtpd.
type Server struct {
	Host string
	Port int
	out  syncBuffer
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Start runs aiosmtpd on a free loopback port until the test ends. certFile and keyFile, if set, offer (and
// require) STARTTLS with that certificate.
func Start(t testing.TB, certFile, keyFile string) *Server {
	t.Helper()
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import aiosmtpd").Run(); err != nil {
		t.Fatalf("aiosmtpd is missing (install python3-aiosmtpd): %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &Server{Host: "127.0.0.1", Port: port}
	args := []string{"-u", "-m", "aiosmtpd", "-n", "-l", "127.0.0.1:" + strconv.Itoa(port)}
	if certFile != "" {
		args = append(args, "--tlscert", certFile, "--tlskey", keyFile)
	}
	cmd := exec.Command(python, args...)
	cmd.Stdout, cmd.Stderr = &s.out, &s.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if i > 200 {
			t.Fatalf("aiosmtpd did not listen on %s: %v\n%s", s.Addr(), err, s.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Output is everything the server printed: the messages it received, one after another.
func (s *Server) Output() string { return s.out.String() }

// WaitFor waits (a bounded number of rounds) until the output holds every one of want, and fails the test
// otherwise.
func (s *Server) WaitFor(t testing.TB, want ...string) string {
	t.Helper()
	for i := 0; ; i++ {
		out := s.Output()
		missing := ""
		for _, w := range want {
			if !strings.Contains(out, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return out
		}
		if i > 300 {
			t.Fatalf("the SMTP server never received %q; it printed:\n%s", missing, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// String describes the server.
func (s *Server) String() string { return fmt.Sprintf("aiosmtpd on %s", s.Addr()) }
