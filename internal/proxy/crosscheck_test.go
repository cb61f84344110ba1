package proxy

import (
	"bufio"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// parse runs both parsers on head, as serveConn does: checkHead on the bytes, then net/http on the same bytes.
func parse(t testing.TB, head string) (*http.Request, headInfo, bool) {
	t.Helper()
	hi, err := checkHead([]byte(head))
	if err != nil {
		return nil, hi, false
	}
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
	if err != nil {
		return nil, hi, false
	}
	return req, hi, true
}

// TestCrossCheckRefusesDisagreement feeds crossCheck what checkHead found in one head and what net/http found in
// another, as if the two parsers had read the same bytes differently: each such disagreement about the framing or
// the authority must be refused, since it is what request smuggling exploits.
func TestCrossCheckRefusesDisagreement(t *testing.T) {
	for _, tc := range []struct {
		name, checked, parsed string
		want                  error
	}{
		{"chunked for checkHead only", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
			"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n", errUnsupportedTE},
		{"chunked for net/http only", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
			"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", errUnsupportedTE},
		{"another length", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
			"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n", errInvalidCL},
		{"a length net/http did not see", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
			"POST /a HTTP/1.1\r\nHost: x\r\n\r\n", errInvalidCL},
		{"HTTP/1.0 chunked, one head", "POST /a HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
			"POST /a HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", errUnsupportedTE},
		{"another host", "GET /a HTTP/1.1\r\nHost: allowed.example\r\n\r\n",
			"GET /a HTTP/1.1\r\nHost: other.example\r\n\r\n", errHost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, hi, ok := parse(t, tc.checked)
			if !ok {
				t.Fatalf("checked head does not parse: %q", tc.checked)
			}
			req, _, ok := parse(t, tc.parsed)
			if !ok {
				t.Fatalf("parsed head does not parse: %q", tc.parsed)
			}
			if err := crossCheck(req, hi); !errors.Is(err, tc.want) {
				t.Fatalf("crossCheck = %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzCrossCheck: whenever both parsers accept a head and crossCheck lets it through, they read the same framing
// (chunked or not, the same body length) and the same authority; whatever they read differently is refused. The
// seed corpus holds agreeing heads and the disagreement the fuzzer found: net/http ignores Transfer-Encoding on
// HTTP/1.0 (golang/go#12785) while checkHead does not, so such a request is refused.
func FuzzCrossCheck(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET http://a/b HTTP/1.1\r\nHost: b\r\n\r\n",
		"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n",
		"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
		"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
		"POST /u HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		"CONNECT a:443 HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.0\r\nhost:  a \r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, head string) {
		req, hi, ok := parse(t, head)
		if !ok || crossCheck(req, hi) != nil {
			return
		}
		netChunked := slices.Equal(req.TransferEncoding, []string{"chunked"})
		if hi.chunked != netChunked {
			t.Fatalf("%q: crossCheck let through chunked=%v (checkHead) against %v (net/http)", head, hi.chunked, netChunked)
		}
		if want := max(hi.contentLength, 0); !hi.chunked && req.ContentLength != want {
			t.Fatalf("%q: crossCheck let through a body of %d (checkHead) against %d (net/http)", head, want, req.ContentLength)
		}
		if req.URL.Host == "" && req.Host != hi.host {
			t.Fatalf("%q: crossCheck let through host %q (checkHead) against %q (net/http)", head, hi.host, req.Host)
		}
	})
}
