package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

func TestProxyProtocol(t *testing.T) {
	src := &net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 4242}
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		version byte
		wantOK  bool
	}{
		{"trusted v2", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, 2, true},
		{"trusted v1", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, 1, true},
		{"untrusted", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, 2, false},
		{"none trusted", nil, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newSetup(t, false, nil, func(s *Server, _ *Target) { s.TrustedProxyProtocol = tc.trusted })
			conn, err := net.Dial("tcp", st.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			h := proxyproto.HeaderProxyFromAddrs(tc.version, src, conn.RemoteAddr())
			if _, err := h.WriteTo(conn); err != nil {
				t.Fatal(err)
			}
			io.WriteString(conn, "GET "+st.origin.URL+"/x HTTP/1.1\r\nHost: "+st.origin.hostPort()+
				"\r\nAuthorization: Bearer "+userSecret+"\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if !tc.wantOK {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("untrusted PROXY header got a response %d", resp.StatusCode)
				}
				if len(st.auth.requests()) != 0 || st.origin.hits.Load() != 0 {
					t.Error("request from an untrusted PROXY source was processed")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			reqs := st.auth.requests()
			if resp.StatusCode != http.StatusOK || len(reqs) != 1 || reqs[0].Client != netip.MustParseAddrPort("203.0.113.7:4242") {
				t.Fatalf("status %d, authorizer saw %+v; want the PROXY header's address", resp.StatusCode, reqs)
			}
		})
	}
}

// TestProxyProtocolClientsCountedApart pins the per-client cap behind a load balancer: connections count against
// the client their PROXY header names, not against the balancer, so one client's share cannot shut out the others.
func TestProxyProtocolClientsCountedApart(t *testing.T) {
	st := newSetup(t, false, nil, func(s *Server, _ *Target) {
		s.TrustedProxyProtocol = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		s.MaxConnsPerClient = 1
	})
	request := func(src string) (net.Conn, int) {
		conn, err := net.Dial("tcp", st.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP(src), Port: 4242}, conn.RemoteAddr())
		if _, err := h.WriteTo(conn); err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, "GET "+st.origin.URL+"/x HTTP/1.1\r\nHost: "+st.origin.hostPort()+
			"\r\nAuthorization: Bearer "+userSecret+"\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return conn, 0
		}
		resp.Body.Close()
		return conn, resp.StatusCode
	}
	// Each keeps its (authenticated) keep-alive connection open.
	for _, src := range []string{"203.0.113.7", "203.0.113.8", "203.0.113.9"} {
		if _, code := request(src); code != http.StatusOK {
			t.Fatalf("client %s behind the balancer: %d", src, code)
		}
	}
	if _, code := request("203.0.113.7"); code != 0 {
		t.Fatalf("a second connection of a client at its cap got %d, want it refused", code)
	}
}
