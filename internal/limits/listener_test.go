package limits

import (
	"errors"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
)

// flakyListener fails with errs, in order, before accepting from the real listener.
type flakyListener struct {
	net.Listener
	errs []error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		return nil, err
	}
	return l.Listener.Accept()
}

func TestListenerRetriesTemporaryErrors(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	var seen int
	ln := &Listener{Listener: &flakyListener{Listener: inner, errs: []error{emfile, emfile, emfile}},
		Conns: &Conns{}, OnTemporary: func(error) { seen++ }}
	defer ln.Close()
	go func() {
		if c, err := net.Dial("tcp", inner.Addr().String()); err == nil {
			c.Write([]byte("x"))
			c.Close()
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept returned %v, want the connection after the temporary errors", err)
	}
	defer c.Close()
	if seen != 3 {
		t.Fatalf("OnTemporary saw %d errors, want 3", seen)
	}
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err != nil || buf[0] != 'x' {
		t.Fatalf("read %q, %v", buf, err)
	}
	if st := ln.Conns.Stats(); st.Conns != 1 || st.Clients != 1 {
		t.Fatalf("stats %+v: the client is counted at accept", st)
	}
	c.Close()
	if st := ln.Conns.Stats(); st.Conns != 0 || st.Clients != 0 {
		t.Fatalf("stats %+v after close", st)
	}
	ln.Close()
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}

// TestHTTPConnState checks the API hook: a connection serving a request is protected, an idle one evictable.
func TestHTTPConnState(t *testing.T) {
	c := &Conns{MaxPerClient: 1}
	a, b := net.Pipe()
	defer b.Close()
	lc := &Conn{Conn: a, slot: c.Admit(a)}
	if !lc.BindTo(addrA) {
		t.Fatal("bind")
	}
	HTTPConnState(lc, http.StateActive)
	if st := c.Stats(); st.Evictable != 0 {
		t.Fatalf("active connection evictable: %+v", st)
	}
	if s := c.Admit(&closer{}); s == nil || s.Bind(addrA) {
		t.Fatal("a second connection from the address displaced an active one")
	}
	HTTPConnState(lc, http.StateIdle)
	if st := c.Stats(); st.Evictable != 1 {
		t.Fatalf("idle connection not evictable: %+v", st)
	}
	if s := c.Admit(&closer{}); s == nil || !s.Bind(addrA) {
		t.Fatal("a new connection could not displace an idle one")
	}
}

// BenchmarkConnsAdmitRelease is the per-connection cost of the accounting (per connection, never per request).
func BenchmarkConnsAdmitRelease(b *testing.B) {
	c := &Conns{Max: 1 << 20, MaxPerClient: 1 << 20, MaxUnauthenticated: 1 << 20}
	cl := &closer{}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s := c.Admit(cl)
			s.Bind(addrA)
			s.Protect()
			s.Release()
		}
	})
}
