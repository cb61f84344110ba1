package limits

import (
	"errors"
	"net"
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
