package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// dialFrom connects to addr from the loopback address src, so one test can be several clients.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByPeer reports whether the server closed c (a read ends in EOF or a reset) within the bound.
func closedByPeer(c net.Conn, bound time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(bound))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// get sends an authenticated absolute-form GET for the plain origin on c and returns the status.
func get(t *testing.T, c net.Conn, origin string) int {
	t.Helper()
	resp := rawExchange(t, c, bufio.NewReader(c), "GET http://"+origin+"/ok HTTP/1.1\r\nHost: "+origin+
		"\r\nAuthorization: Bearer "+userSecret+"\r\n\r\n")
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestIdleFloodCostsTheFloodItsOwnConnections pins the connection caps: before them, every idle connection held
// a descriptor until the process ran out (issue 9: 21,000 of them stopped the server). A flood from one address
// evicts its own oldest unauthenticated connections, never an authenticated one, and a new client from the same
// address still gets through.
func TestIdleFloodCostsTheFloodItsOwnConnections(t *testing.T) {
	st := newSetup(t, false, nil, func(s *Server, _ *Target) {
		s.MaxConns, s.MaxConnsPerClient, s.MaxUnauthenticated = 200, 20, 50
		s.Metrics = NewMetrics(nil)
	})
	origin := st.origin.hostPort()
	kept := dialFrom(t, "127.0.0.2", st.addr)
	if code := get(t, kept, origin); code != http.StatusOK {
		t.Fatalf("authenticated request: %d", code)
	}
	var flood []net.Conn
	for range 100 {
		flood = append(flood, dialFrom(t, "127.0.0.2", st.addr))
	}
	// Other clients of their own address fill the rest, as a distributed flood would.
	for i := range 40 {
		flood = append(flood, dialFrom(t, fmt.Sprintf("127.0.1.%d", i+1), st.addr))
	}
	closed := 0
	for _, c := range flood[:60] { // the oldest of 127.0.0.2's flood
		if closedByPeer(c, 5*time.Second) {
			closed++
		}
	}
	if closed < 50 {
		t.Fatalf("%d of the 60 oldest idle flood connections were closed, want them evicted", closed)
	}
	if code := get(t, kept, origin); code != http.StatusOK {
		t.Fatalf("the authenticated connection stopped working during the flood: %d", code)
	}
	fresh := dialFrom(t, "127.0.0.2", st.addr)
	if code := get(t, fresh, origin); code != http.StatusOK {
		t.Fatalf("a new client from the flooding address: %d", code)
	}
	for _, l := range []string{"proxy_conns_per_client", "proxy_unauthenticated"} {
		if n := counterValue(st.srv.Metrics.LimitHits.WithLabelValues(l)); n == 0 {
			t.Errorf("limit %s never counted", l)
		}
	}
}

// fdLimitedListener fails Accept with EMFILE, as a full descriptor table does, a number of times.
type fdLimitedListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
}

func (l *fdLimitedListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

// TestServeSurvivesDescriptorExhaustion pins issue 9's crash: Serve returned EMFILE and the process shut down.
func TestServeSurvivesDescriptorExhaustion(t *testing.T) {
	o := newOrigin(t, false, nil)
	s := &Server{Authorizer: &fakeAuthorizer{target: &Target{ID: "t", Name: "api"}}, Metrics: NewMetrics(nil)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(&fdLimitedListener{Listener: ln, fails: 4}) }()
	t.Cleanup(func() {
		s.Shutdown(context.Background())
		<-done
	})
	c := dialFrom(t, "127.0.0.1", ln.Addr().String())
	if code := get(t, c, o.hostPort()); code != http.StatusOK {
		t.Fatalf("after EMFILE: %d", code)
	}
	select {
	case err := <-done:
		t.Fatalf("Serve returned %v", err)
	default:
	}
	if n := counterValue(s.Metrics.LimitHits.WithLabelValues(limitAccept)); n != 4 {
		t.Fatalf("accept errors counted %v, want 4", n)
	}
}

// TestSilentConnectionsTimeOut pins the waits of a connection that sends nothing: ReadHeaderTimeout before the
// first request (it used to be the 90 s keep-alive timeout), and the same for the first bytes inside a CONNECT.
func TestSilentConnectionsTimeOut(t *testing.T) {
	st := newSetup(t, false, nil, func(s *Server, _ *Target) {
		s.ReadHeaderTimeout, s.IdleTimeout = 100*time.Millisecond, time.Minute
	})
	t.Run("fresh connection", func(t *testing.T) {
		c := dialFrom(t, "127.0.0.1", st.addr)
		if !closedByPeer(c, 10*time.Second) {
			t.Fatal("a silent connection stayed open")
		}
	})
	t.Run("silent tunnel", func(t *testing.T) {
		c, _ := plainTunnel(t, st.addr, st.origin.hostPort())
		if !closedByPeer(c, 10*time.Second) {
			t.Fatal("a silent tunnel stayed open")
		}
	})
}

// TestSilentBodyTimesOut pins the body read deadline: a request announcing 100 bytes and sending 10 held its
// connection (and an upstream request) for as long as the client liked.
func TestSilentBodyTimesOut(t *testing.T) {
	st := newSetup(t, false, nil, func(s *Server, _ *Target) {
		s.BodyReadTimeout = 100 * time.Millisecond
		s.Metrics = NewMetrics(nil)
	})
	origin := st.origin.hostPort()
	for _, tc := range []struct{ name, framing, body string }{
		{"content-length", "Content-Length: 100\r\n", "0123456789"},
		{"chunked", "Transfer-Encoding: chunked\r\n", "a\r\n0123456789\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialFrom(t, "127.0.0.1", st.addr)
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, "POST http://"+origin+"/upload HTTP/1.1\r\nHost: "+origin+"\r\nAuthorization: Bearer "+
				userSecret+"\r\n"+tc.framing+"\r\n"+tc.body)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer to a silent body: %v", err)
			}
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Fatalf("status %d, want 408", resp.StatusCode)
			}
		})
	}
	if n := counterValue(st.srv.Metrics.LimitHits.WithLabelValues(limitBodyTimeout)); n < 2 {
		t.Fatalf("body timeouts counted %v, want 2", n)
	}
}

// TestChunkedBodiesShareABudget pins the chunked-body budget: before it, each of 40 never-ending chunked bodies
// pinned up to 10 MiB. Bodies that find the budget spent are streamed, so a legitimate chunked upload still
// arrives whole while the budget is held by others.
func TestChunkedBodiesShareABudget(t *testing.T) {
	const budget = 64 << 10
	st := newSetup(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	}, func(s *Server, _ *Target) {
		s.ChunkedBufferBudget, s.MaxChunkedBody = budget, 1<<20
		s.Metrics = NewMetrics(nil)
	})
	origin := st.origin.hostPort()
	chunk := strings.Repeat("x", 16<<10)
	for range 8 { // never-ending bodies: 8 x 48 KiB would need 384 KiB buffered
		c := dialFrom(t, "127.0.0.3", st.addr)
		io.WriteString(c, "POST http://"+origin+"/upload HTTP/1.1\r\nHost: "+origin+"\r\nAuthorization: Bearer "+
			userSecret+"\r\nTransfer-Encoding: chunked\r\n\r\n")
		for range 3 {
			fmt.Fprintf(c, "%x\r\n%s\r\n", len(chunk), chunk)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for counterValue(st.srv.Metrics.LimitHits.WithLabelValues(limitChunkedBudget)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if used := st.srv.chunked.Used(); used > budget || used == 0 {
		t.Fatalf("chunked bodies hold %d bytes, budget %d", used, budget)
	}
	if counterValue(st.srv.Metrics.LimitHits.WithLabelValues(limitChunkedBudget)) == 0 {
		t.Fatal("the budget never ran out")
	}
	c := dialFrom(t, "127.0.0.1", st.addr)
	resp := rawExchange(t, c, bufio.NewReader(c), "POST http://"+origin+"/legit HTTP/1.1\r\nHost: "+origin+
		"\r\nAuthorization: Bearer "+userSecret+"\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("legitimate chunked upload during the flood: %d", resp.StatusCode)
	}
	st.origin.mu.Lock()
	defer st.origin.mu.Unlock()
	found := false
	for i, p := range st.origin.paths {
		if p == "/legit" && string(st.origin.bodies[i]) == "hello" {
			found = true
		}
	}
	if !found {
		t.Fatalf("the origin did not get the legitimate body whole: %q", st.origin.paths)
	}
}

// counterValue reads a counter.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// TestLargeHeadsShareABudget pins the bound on head buffers: a head larger than the small read buffer moves its
// connection to a buffer for the largest head, and before the budget any number of peers could make the proxy
// hold one each (64 KiB) by sending a long head slowly.
func TestLargeHeadsShareABudget(t *testing.T) {
	st := newSetup(t, false, nil, func(s *Server, _ *Target) {
		s.Metrics = NewMetrics(nil)
		s.init()
		s.heads.Max = 3 * int64(s.readBufferSize())
	})
	filler := "X-Filler: " + strings.Repeat("f", 10<<10) + "\r\n"
	var held []net.Conn
	for range 3 {
		c := dialFrom(t, "127.0.0.2", st.addr)
		io.WriteString(c, "GET http://"+st.origin.hostPort()+"/ HTTP/1.1\r\n"+filler) // the head never ends
		held = append(held, c)
	}
	deadline := time.Now().Add(5 * time.Second)
	for st.srv.heads.Used() < st.srv.heads.Max && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	c := dialFrom(t, "127.0.0.3", st.addr)
	resp := rawExchange(t, c, bufio.NewReader(c), "GET http://"+st.origin.hostPort()+"/ HTTP/1.1\r\nHost: "+
		st.origin.hostPort()+"\r\nAuthorization: Bearer "+userSecret+"\r\n"+filler+"\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a large head beyond the budget: %d, want 431", resp.StatusCode)
	}
	if counterValue(st.srv.Metrics.LimitHits.WithLabelValues(limitHeadBudget)) != 1 {
		t.Fatal("the head budget was not counted")
	}
	for _, h := range held {
		h.Close()
	}
	for st.srv.heads.Used() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	c = dialFrom(t, "127.0.0.3", st.addr)
	resp = rawExchange(t, c, bufio.NewReader(c), "GET http://"+st.origin.hostPort()+"/ HTTP/1.1\r\nHost: "+
		st.origin.hostPort()+"\r\nAuthorization: Bearer "+userSecret+"\r\n"+filler+"\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a large head once the budget was returned: %d", resp.StatusCode)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.Close()
	for st.srv.heads.Used() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if u := st.srv.heads.Used(); u != 0 {
		t.Fatalf("%d bytes of the head budget still held after every connection closed", u)
	}
}
