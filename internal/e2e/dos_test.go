package e2e_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// dosAttack is one resource-exhaustion class of issue 9: start opens the attack and leaves it holding whatever it
// holds; the limit names the counter of gatehouse_proxy_limit_hits_total that must have moved.
type dosAttack struct {
	name  string
	limit string
	start func(t *testing.T, f *fixture, c cred)
}

// dial connects from the loopback address src; the connection is closed at the end of the test.
func dial(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// connectTunnel opens a CONNECT tunnel without credential from src, or returns nil if the proxy closed it (an
// evicted flood connection).
func connectTunnel(t *testing.T, src, proxy, authority string) net.Conn {
	t.Helper()
	c := dial(t, src, proxy)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "CONNECT "+authority+" HTTP/1.1\r\nHost: "+authority+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil
	}
	c.SetDeadline(time.Time{})
	return c
}

var dosAttacks = []dosAttack{
	{name: "idle connections from the client's own address", limit: "proxy_conns_per_client",
		start: func(t *testing.T, f *fixture, _ cred) { flood(t, "127.0.0.1", f.gh.Server.ProxyAddr(), 400) }},
	{name: "idle connections from many addresses", limit: "proxy_unauthenticated",
		start: func(t *testing.T, f *fixture, _ cred) {
			for i := range 40 {
				flood(t, fmt.Sprintf("127.0.2.%d", i+1), f.gh.Server.ProxyAddr(), 10)
			}
		}},
	{name: "idle connections to the management API", limit: "api_conns_per_client",
		start: func(t *testing.T, f *fixture, _ cred) { flood(t, "127.0.0.3", f.gh.Server.APIAddr(), 300) }},
	// From the legitimate client's own address: a tunnel opened without a credential is evictable until a valid
	// one arrives inside it, whatever the connection policy that admitted it.
	{name: "unauthenticated tunnels", limit: "proxy_conns_per_client",
		start: func(t *testing.T, f *fixture, _ cred) {
			for range 200 {
				connectTunnel(t, "127.0.0.1", f.gh.Server.ProxyAddr(), f.https.HostPort)
			}
		}},
	{name: "stalled TLS handshakes", limit: "tls_handshake_timeout",
		start: func(t *testing.T, f *fixture, _ cred) {
			for range 200 {
				if c := connectTunnel(t, "127.0.0.5", f.gh.Server.ProxyAddr(), f.https.HostPort); c != nil {
					c.Write([]byte{0x16, 0x03, 0x01}) // the start of a ClientHello, then nothing
				}
			}
		}},
	{name: "CONNECT to authorities no target serves", limit: "connect_no_target",
		start: func(t *testing.T, f *fixture, _ cred) {
			before := f.gh.Server.CA().Minted()
			for i := range 300 {
				c := dial(t, "127.0.0.6", f.gh.Server.ProxyAddr())
				authority := fmt.Sprintf("host-%d.unserved.test:443", i)
				c.SetDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(c, "CONNECT "+authority+" HTTP/1.1\r\nHost: "+authority+"\r\n\r\n")
				resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
				if err != nil || resp.StatusCode != http.StatusForbidden {
					t.Fatalf("CONNECT %s: %v %v, want 403", authority, resp, err)
				}
				c.Close()
			}
			if n := f.gh.Server.CA().Minted() - before; n != 0 {
				t.Fatalf("%d leaves minted for authorities nobody serves", n)
			}
		}},
	{name: "silent request bodies", limit: "body_read_timeout",
		start: func(t *testing.T, f *fixture, c cred) {
			for range 50 {
				conn := dial(t, "127.0.0.7", f.gh.Server.ProxyAddr())
				io.WriteString(conn, "POST "+f.http.URL+"/api/echo HTTP/1.1\r\nHost: "+f.http.HostPort+"\r\nAuthorization: Bearer "+
					c.Secret+"\r\nContent-Length: 100000\r\n\r\n0123456789")
			}
		}},
	{name: "never-ending chunked bodies", limit: "chunked_buffer_budget",
		start: func(t *testing.T, f *fixture, c cred) {
			chunk := strings.Repeat("z", 256<<10)
			for range 20 {
				conn := dial(t, "127.0.0.8", f.gh.Server.ProxyAddr())
				io.WriteString(conn, "POST "+f.http.URL+"/api/echo HTTP/1.1\r\nHost: "+f.http.HostPort+"\r\nAuthorization: Bearer "+
					c.Secret+"\r\nTransfer-Encoding: chunked\r\n\r\n")
				for range 2 {
					fmt.Fprintf(conn, "%x\r\n%s\r\n", len(chunk), chunk)
				}
			}
		}},
	{name: "HTTP/2 rapid reset", limit: "h2_rapid_reset",
		start: func(t *testing.T, f *fixture, c cred) {
			before := len(f.https.Requests())
			if code := rapidReset(t, f, c); code != http2.ErrCodeEnhanceYourCalm {
				t.Fatalf("the reset flood ended with %v, want GOAWAY ENHANCE_YOUR_CALM", code)
			}
			if n := len(f.https.Requests()) - before; n > 300 {
				t.Fatalf("%d upstream requests for reset streams", n)
			}
		}},
}

// TestAttacksLeaveLegitimateClientsServed runs each resource-exhaustion class of issue 9 against the full server
// and, while the attack still holds what it took, checks that curl and a Go client get answers through the proxy
// and an admin gets answers from the management API; then that the limit that held the attack was counted.
func TestAttacksLeaveLegitimateClientsServed(t *testing.T) {
	f := newFixture(t, testserver.Options{Configure: func(c *config.Config) {
		c.MetricsListen = "127.0.0.1:0"
		c.ProxyMaxConns, c.ProxyMaxConnsPerClient, c.ProxyMaxUnauthenticated = 600, 100, 200
		c.APIMaxConns, c.APIMaxConnsPerClient = 100, 25
		c.ChunkedBufferBudget = 2 << 20
		c.BodyReadTimeout, c.TLSHandshakeTimeout = 500*time.Millisecond, 500*time.Millisecond
	}})
	c := f.credential(f.alpha, "legit", nil)
	for _, a := range dosAttacks {
		t.Run(a.name, func(t *testing.T) {
			f := f.in(t)
			before := limitHits(t, f, a.limit)
			a.start(t, f, c)
			f.https.Reset()
			body, status := curl(t, "--proxy", "http://"+f.gh.Server.ProxyAddr(), "--cacert", f.proxyCAFile,
				"-H", "Authorization: Bearer "+c.Secret, f.https.URL+"/api/items/1")
			if status != http.StatusOK || !strings.Contains(body, `"origin":"e2e"`) {
				t.Fatalf("curl through the proxy during the attack: %d %s", status, body)
			}
			client := f.client(true)
			if status, body := f.do(client, "GET", f.https.URL+"/api/items/2", c.Secret, ""); status != http.StatusOK {
				t.Fatalf("Go client through the proxy during the attack: %d %s", status, body)
			}
			if status, body := f.gh.Do("GET", usersAPI+"/users", f.adm, nil); status != http.StatusOK {
				t.Fatalf("management API during the attack: %d %s", status, body)
			}
			if a.limit != "" && !eventually(func() bool { return limitHits(t, f, a.limit) > before }) {
				t.Errorf("limit %s not counted (%v before)", a.limit, before)
			}
		})
	}
}

// limitHits scrapes gatehouse_proxy_limit_hits_total for one limit from the metrics listener.
func limitHits(t *testing.T, f *fixture, limit string) float64 {
	t.Helper()
	if limit == "" {
		return 0
	}
	resp, err := http.Get("http://" + f.gh.Server.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	prefix := `gatehouse_proxy_limit_hits_total{limit="` + limit + `"} `
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return n
		}
	}
	return 0
}

// rapidReset opens an HTTP/2 connection through a tunnel to alpha and opens and resets 20,000 streams, in batches
// small enough that x/net's own queue limit never trips; it returns the GOAWAY's error code, or -1 if the
// connection ended without one.
func rapidReset(t *testing.T, f *fixture, c cred) http2.ErrCode {
	t.Helper()
	conn := connectTunnel(t, "127.0.0.9", f.gh.Server.ProxyAddr(), f.https.HostPort)
	if conn == nil {
		t.Fatal("CONNECT refused")
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	tc := tls.Client(conn, &tls.Config{ServerName: "127.0.0.1", RootCAs: f.proxyPool, NextProtos: []string{http2.NextProtoTLS}})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriterSize(tc, 64<<10)
	bw.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(bw, tc)
	fr.WriteSettings()
	var mu sync.Mutex
	code := http2.ErrCode(1<<32 - 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		rf := http2.NewFramer(nil, tc)
		for {
			fm, err := rf.ReadFrame()
			if err != nil {
				return
			}
			if ga, ok := fm.(*http2.GoAwayFrame); ok {
				mu.Lock()
				code = ga.ErrCode
				mu.Unlock()
			}
		}
	}()
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for i := range 20000 {
		block.Reset()
		for _, hf := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", f.https.HostPort},
			{":path", "/api/items/reset"}, {"authorization", "Bearer " + c.Secret}} {
			enc.WriteField(hpack.HeaderField{Name: hf[0], Value: hf[1]})
		}
		id := uint32(2*i + 1)
		if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true}) != nil ||
			fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
			break
		}
		if i%20 == 19 {
			if bw.Flush() != nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	bw.Flush()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the connection stayed open after 20,000 resets")
	}
	mu.Lock()
	defer mu.Unlock()
	return code
}

// TestLeafMintRate checks --leaf-mints-per-second on the full server: under a wildcard target every new host name
// costs a mint, and beyond the bucket the handshake fails instead of signing; cached leaves are still served.
func TestLeafMintRate(t *testing.T) {
	f := newFixture(t, testserver.Options{Configure: func(c *config.Config) {
		c.MetricsListen = "127.0.0.1:0"
		c.LeafMintsPerSecond = 0.01 // bursts of 0.02, rounded up to one mint: no refill within the test
	}})
	f.gh.Create(proxyAPI+"/api-targets", f.adm, map[string]any{
		"name": "wild", "roles": []map[string]string{{"id": f.roleID}},
		"authorized_endpoints": []map[string]any{
			{"host": "*.wild.e2e.test", "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/**"}},
		},
		"target_credential": map[string]any{"type": "token", "bearer_token": "wild-token"},
	})
	handshake := func(host string) error {
		conn := connectTunnel(t, "127.0.0.1", f.gh.Server.ProxyAddr(), host+":443")
		if conn == nil {
			t.Fatalf("CONNECT %s refused", host)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		return tls.Client(conn, &tls.Config{ServerName: host, RootCAs: f.proxyPool}).Handshake()
	}
	before := f.gh.Server.CA().Minted()
	if err := handshake("a.wild.e2e.test"); err != nil {
		t.Fatalf("first host: %v", err)
	}
	failed := 0
	for i := range 5 {
		if handshake(fmt.Sprintf("h%d.wild.e2e.test", i)) != nil {
			failed++
		}
	}
	if failed != 5 {
		t.Fatalf("%d of 5 new hosts beyond the mint budget were refused, want all", failed)
	}
	if err := handshake("a.wild.e2e.test"); err != nil {
		t.Fatalf("a cached leaf was refused: %v", err)
	}
	if n := f.gh.Server.CA().Minted() - before; n != 1 {
		t.Fatalf("%d leaves minted, want 1", n)
	}
	if limitHits(t, f, "leaf_mint_rate") < 5 {
		t.Fatal("refused mints not counted")
	}
}
