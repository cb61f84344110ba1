package extender

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
)

// relayNode is a hub with an agent of prefix "site" connected to it, and a relay endpoint in front of the hub,
// served over real TLS: the node that owns the extender.
func relayNode(t *testing.T, key []byte) (owner Owner, pool *x509.CertPool, hub *Hub, relay *RelayServer) {
	t.Helper()
	hub, hubURL, hubPool := startHub(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go (&Agent{Gateway: hubURL, Token: "tok-a", RootCAs: hubPool}).Run(ctx)
	waitLinks(t, hub, "site", 1)
	relay = &RelayServer{Hub: hub, Key: key}
	srv := httptest.NewUnstartedServer(relay)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	t.Cleanup(relay.Close)
	pool = x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return Owner{Node: "node-b", Address: srv.Listener.Addr().String()}, pool, hub, relay
}

func echoThrough(t *testing.T, c net.Conn) {
	t.Helper()
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through the relay: %q %v", buf, err)
	}
}

// TestRelayReachesAnotherNodesExtender: node A holds no session of "site"; its hub relays the dial to node B,
// whose agent reaches the echo server. Many dials share one relay session.
func TestRelayReachesAnotherNodesExtender(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	owner, pool, _, _ := relayNode(t, key)
	client := &RelayClient{Self: "node-a", Key: key, RootCAs: pool, DialTimeout: 5 * time.Second,
		Owners: func(context.Context, string) ([]Owner, error) { return []Owner{owner}, nil }}
	defer client.Close()
	a := &Hub{Relay: client}
	echo := echoServer(t)
	ctx := context.Background()
	for range 3 {
		c, err := a.Dial(ctx, "site", echo)
		if err != nil {
			t.Fatalf("relayed dial: %v", err)
		}
		echoThrough(t, c)
	}
	if n := len(client.peers); n != 1 {
		t.Fatalf("%d relay sessions, want one shared by every dial", n)
	}

	// The far agent's failure comes back as a DialError, as it would locally.
	if _, err := a.Dial(ctx, "site", "127.0.0.1:1"); !isDialError(err) {
		t.Fatalf("dial of a closed port through the relay: %v, want DialError", err)
	}
	// A prefix the far node has no session of is unavailable, naming the prefix.
	var un *UnavailableError
	if _, err := a.Dial(ctx, "other", echo); !errors.As(err, &un) || un.Prefix != "other" {
		t.Fatalf("prefix without a session: %v", err)
	}
}

func isDialError(err error) bool {
	var de *DialError
	return errors.As(err, &de)
}

// TestRelayRefusesWithoutTheClusterKey pins the authentication both ways: a caller with another key is refused
// before anything is relayed (and counted per source), and a far end that cannot prove the key is not used.
func TestRelayRefusesWithoutTheClusterKey(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	owner, pool, _, relay := relayNode(t, key)
	relay.Limiter = &auth.MemoryLoginLimiter{PairBurst: 2, SourceBurst: 2, NameSlowAfter: 100}
	echo := echoServer(t)
	ctx := context.Background()
	owners := func(context.Context, string) ([]Owner, error) { return []Owner{owner}, nil }

	wrong := &RelayClient{Self: "intruder", Key: []byte("another key entirely, 32 bytes!!"), RootCAs: pool, Owners: owners}
	defer wrong.Close()
	var un *UnavailableError
	for range 2 {
		if _, err := wrong.Dial(ctx, "site", echo); !errors.As(err, &un) {
			t.Fatalf("dial with the wrong key: %v, want UnavailableError", err)
		}
	}
	if _, err := wrong.connect(ctx, owner); err == nil || !strings.Contains(err.Error(), "HTTP 429") {
		t.Fatalf("after two refused proofs: %v, want HTTP 429", err)
	}

	// A far end without the key (here: one with another key) answers 401 to our proof, and were it to answer
	// 101 with a made-up proof, connect refuses it. Both are pinned through connect's errors.
	other, otherPool, _, _ := relayNode(t, []byte("the far end's own key, 32 bytes!"))
	c := &RelayClient{Self: "node-a", Key: key, RootCAs: otherPool, Owners: owners}
	defer c.Close()
	if _, err := c.connect(ctx, other); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("far end with another key: %v", err)
	}
	fake := fakeRelayEnd(t)
	fc := &RelayClient{Self: "node-a", Key: key, RootCAs: fake.pool, Owners: owners}
	if _, err := fc.connect(ctx, Owner{Node: "fake", Address: fake.addr}); err == nil || !strings.Contains(err.Error(), "did not prove") {
		t.Fatalf("far end answering 101 without a proof: %v", err)
	}
	if fake.streams.Load() != 0 {
		t.Fatal("the client opened a stream to a far end that did not prove the key")
	}
}

type fakeEnd struct {
	addr    string
	pool    *x509.CertPool
	streams atomic.Int64
}

// fakeRelayEnd accepts any relay request with a 101 and a made-up proof, and counts what arrives afterwards.
func fakeRelayEnd(t *testing.T) *fakeEnd {
	t.Helper()
	f := &fakeEnd{}
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	srv.Close()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv.TLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f.pool = x509.NewCertPool()
	f.pool.AddCert(srv.Certificate())
	f.addr = ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				c.Read(buf)
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+RelayProtocol+"\r\n"+proofHeader+": bm90LWEtcHJvb2Y\r\n\r\n")
				if n, _ := c.Read(buf); n > 0 {
					f.streams.Add(1)
				}
			}()
		}
	}()
	return f
}

// TestRelayGivesUpOnAStuckNode: the registry names a node whose listener accepts but never answers (a hung or
// half-dead node). The dial ends with the UnavailableError naming the prefix, bounded by DialTimeout, not a hang;
// a second owner that works is used instead.
func TestRelayGivesUpOnAStuckNode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn // held open, never answered
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	stuck := Owner{Node: "stuck", Address: ln.Addr().String()}
	key := []byte("0123456789abcdef0123456789abcdef")
	client := &RelayClient{Self: "node-a", Key: key, DialTimeout: 300 * time.Millisecond,
		Owners: func(context.Context, string) ([]Owner, error) { return []Owner{stuck}, nil }}
	defer client.Close()
	var un *UnavailableError
	if _, err := client.Dial(context.Background(), "site", "127.0.0.1:1"); !errors.As(err, &un) || un.Prefix != "site" {
		t.Fatalf("stuck node: %v, want UnavailableError for site", err)
	}

	good, pool, _, _ := relayNode(t, key)
	client2 := &RelayClient{Self: "node-a", Key: key, RootCAs: pool, DialTimeout: 2 * time.Second,
		Owners: func(context.Context, string) ([]Owner, error) { return []Owner{stuck, good}, nil }}
	defer client2.Close()
	for range 2 { // each dial starts at the next owner; both must end on the good one
		c, err := client2.Dial(context.Background(), "site", echoServer(t))
		if err != nil {
			t.Fatalf("stuck and good owners: %v", err)
		}
		echoThrough(t, c)
	}
}

func TestParseRelayDial(t *testing.T) {
	for _, c := range []struct {
		line, prefix, addr string
		ok                 bool
	}{
		{"RELAY site 10.0.0.1:443", "site", "10.0.0.1:443", true},
		{"RELAY site-a.b api.internal:8443", "site-a.b", "api.internal:8443", true},
		{"RELAY site [::1]:443", "site", "[::1]:443", true},
		{"RELAY site 10.0.0.1", "", "", false},
		{"RELAY  10.0.0.1:443", "", "", false},
		{"RELAY a/b 10.0.0.1:443", "", "", false},
		{"DIAL 10.0.0.1:443", "", "", false},
		{"RELAY site 10.0.0.1:99999", "", "", false},
		{"RELAY site 10.0.0.1:443 extra", "", "", false},
	} {
		p, a, err := parseRelayDial(c.line)
		if (err == nil) != c.ok || p != c.prefix && c.ok || a != c.addr && c.ok {
			t.Errorf("parseRelayDial(%q) = %q %q %v", c.line, p, a, err)
		}
	}
}

func FuzzParseRelayDial(f *testing.F) {
	for _, s := range []string{"RELAY site 10.0.0.1:443", "RELAY a b:1", "RELAY x [::1]:65535", "RELAY  :", "RELAY s h:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		prefix, addr, err := parseRelayDial(line)
		if err != nil {
			return
		}
		// Whatever is accepted re-encodes to a header that parses to the same prefix and address.
		p2, a2, err := parseRelayDial("RELAY " + prefix + " " + addr)
		if err != nil || p2 != prefix || a2 != addr {
			t.Fatalf("%q -> %q %q, re-parsed %q %q %v", line, prefix, addr, p2, a2, err)
		}
	})
}

// TestRelaySlowAnswerKeepsTheSession: one relayed dial whose far agent never answers (a target that takes long
// to connect) gives up on its own stream only; a connection already relayed over the same session goes on, and
// the next dial reuses the session.
func TestRelaySlowAnswerKeepsTheSession(t *testing.T) {
	hub, hubURL, hubPool := startHub(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sess, err := (&Agent{Gateway: hubURL, Token: "tok-a", RootCAs: hubPool}).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	// This agent echoes every stream, except one naming port 9, which it never answers.
	go func() {
		for {
			st, err := sess.AcceptStream()
			if err != nil {
				return
			}
			go func() {
				defer st.Close()
				br := bufio.NewReader(st)
				line, err := readLine(br)
				if err != nil || strings.HasSuffix(line, ":9") {
					<-ctx.Done()
					return
				}
				writeReply(st, nil)
				io.Copy(st, br)
			}()
		}
	}()
	waitLinks(t, hub, "site", 1)
	key := []byte("0123456789abcdef0123456789abcdef")
	relay := &RelayServer{Hub: hub, Key: key}
	srv := httptest.NewUnstartedServer(relay)
	srv.StartTLS()
	defer srv.Close()
	defer relay.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	owner := Owner{Node: "node-b", Address: srv.Listener.Addr().String()}
	client := &RelayClient{Self: "node-a", Key: key, RootCAs: pool, ReplyTimeout: 300 * time.Millisecond,
		Owners: func(context.Context, string) ([]Owner, error) { return []Owner{owner}, nil }}
	defer client.Close()

	live, err := client.Dial(ctx, "site", "127.0.0.1:7")
	if err != nil {
		t.Fatal(err)
	}
	first := client.peers["node-b"].sess
	var un *UnavailableError
	if _, err := client.Dial(ctx, "site", "127.0.0.1:9"); !errors.As(err, &un) {
		t.Fatalf("dial without an answer: %v, want UnavailableError", err)
	}
	echoThrough(t, live) // the connection relayed before is still up
	c, err := client.Dial(ctx, "site", "127.0.0.1:7")
	if err != nil {
		t.Fatal(err)
	}
	echoThrough(t, c)
	if client.peers["node-b"].sess != first {
		t.Fatal("a slow answer replaced the relay session")
	}
}
