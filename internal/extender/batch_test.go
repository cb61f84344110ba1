package extender

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"io"
	"net"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the writes that reach the socket.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

func yamuxHeader(typ byte, length uint32) []byte {
	h := make([]byte, yamuxHeaderLen)
	h[1] = typ
	binary.BigEndian.PutUint32(h[4:8], 1)
	binary.BigEndian.PutUint32(h[8:12], length)
	return h
}

// TestBatchedTLSSendsAFrameInOneWrite pins the agent's write batching: a data header and its 40 KB body (three
// TLS records, four writes without batching) reach the socket in one write, and a header with no body (a window
// update) is not held back waiting for one.
func TestBatchedTLSSendsAFrameInOneWrite(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	defer srv.Close()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: srv.TLS.Certificates})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 2)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for _, n := range []int{yamuxHeaderLen + 40000, yamuxHeaderLen} {
			b := make([]byte, n)
			if _, err := io.ReadFull(c, b); err != nil {
				return
			}
			got <- b
		}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cc := &countingConn{Conn: raw}
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	conn := newBatchedTLS(cc, &tls.Config{RootCAs: pool, ServerName: "example.com"})
	defer conn.Close()
	if err := conn.Handshake(); err != nil {
		t.Fatal(err)
	}
	before := cc.writes.Load()
	body := bytes.Repeat([]byte("x"), 40000)
	frame := yamuxHeader(yamuxTypeData, uint32(len(body)))
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	if n := cc.writes.Load() - before; n != 0 {
		t.Fatalf("the data header went out alone (%d writes) before its body", n)
	}
	if _, err := conn.Write(body); err != nil {
		t.Fatal(err)
	}
	if n := cc.writes.Load() - before; n != 1 {
		t.Fatalf("header and body took %d socket writes, want 1", n)
	}
	want := append(frame, body...)
	select {
	case b := <-got:
		if !bytes.Equal(b, want) {
			t.Fatal("the server read other bytes than the frame")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the frame did not arrive")
	}
	update := yamuxHeader(1, 1<<16) // window update: the length is a delta, no body follows
	if _, err := conn.Write(update); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, update) {
			t.Fatal("the server read other bytes than the window update")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a header without a body was held back")
	}
}

// TestHeaderJoinerPutsTheHeaderInTheBodysRecord pins the hub's side: a data header goes out in its body's first TLS
// record, so a small frame is one socket write (two without joining) and a 40 KB one three (four), the bytes are
// unchanged, and a header with no body (a window update) is written at once.
func TestHeaderJoinerPutsTheHeaderInTheBodysRecord(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	cc := &countingConn{Conn: raw}
	// Fixed-size records, so the counts below do not depend on how much the connection has sent so far.
	server := tls.Server(cc, &tls.Config{Certificates: srv.TLS.Certificates, DynamicRecordSizingDisabled: true})
	defer server.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	tc := tls.Client(client, &tls.Config{RootCAs: pool, ServerName: "example.com"})
	defer tc.Close()
	hs := make(chan error, 1)
	go func() { hs <- tc.Handshake() }()
	if err := server.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-hs; err != nil {
		t.Fatal(err)
	}
	j := &headerJoiner{Conn: server}
	for _, c := range []struct {
		name   string
		header []byte
		body   []byte
		writes int64
	}{
		{"small frame", yamuxHeader(yamuxTypeData, 300), bytes.Repeat([]byte("s"), 300), 1},
		{"40 KB frame", yamuxHeader(yamuxTypeData, 40000), bytes.Repeat([]byte("b"), 40000), 3},
		{"window update", yamuxHeader(1, 1<<16), nil, 1},
	} {
		before := cc.writes.Load()
		if _, err := j.Write(c.header); err != nil {
			t.Fatal(err)
		}
		if c.body != nil {
			if n := cc.writes.Load() - before; n != 0 {
				t.Fatalf("%s: the header went out alone (%d writes) before its body", c.name, n)
			}
			if n, err := j.Write(c.body); err != nil || n != len(c.body) {
				t.Fatalf("%s: body write: %d, %v", c.name, n, err)
			}
		}
		if n := cc.writes.Load() - before; n != c.writes {
			t.Fatalf("%s: %d socket writes, want %d", c.name, n, c.writes)
		}
		want := append(append([]byte(nil), c.header...), c.body...)
		got := make([]byte, len(want))
		tc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(tc, got); err != nil {
			t.Fatalf("%s: read: %v", c.name, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: the client read other bytes than the frame", c.name)
		}
	}
}
