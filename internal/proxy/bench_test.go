package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkKeepAliveRequests is the proxy's per-request cost on one keep-alive connection (absolute-form, no
// recording), with and without a request body: it shows what the limits add to the hot path (measured
// against the code before them: no allocation for a GET, two for a request with a body, the read deadline's timer).
func BenchmarkKeepAliveRequests(b *testing.B) {
	for _, bc := range []struct{ name, req string }{
		{"get", "GET http://%s/ok HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer " + userSecret + "\r\n\r\n"},
		{"post", "POST http://%s/ok HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer " + userSecret + "\r\nContent-Length: 5\r\n\r\nhello"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			st := newSetup(b, false, nil, nil)
			origin := st.origin.hostPort()
			raw := strings.ReplaceAll(bc.req, "%s", origin)
			c, err := net.Dial("tcp", st.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := io.WriteString(c, raw); err != nil {
					b.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
