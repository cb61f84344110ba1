package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestHeadsLargerThanTheSmallBuffer pins the lazy read buffer: connections
// start with 4 KiB and move to one that holds the largest allowed head only
// when a head does not fit. Heads between the two sizes must work, pipelined
// bytes behind a large head must not be lost, the connection must go on
// serving small heads afterwards, and the limit and the bare-LF check must
// refuse exactly as with one large buffer.
func TestHeadsLargerThanTheSmallBuffer(t *testing.T) {
	var got []string
	st := newSetup(t, false, func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Path+" "+itoa(len(r.Header.Get("X-Pad"))))
	}, nil)
	host := st.origin.hostPort()
	req := func(path string, pad int) string {
		return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + userSecret +
			"\r\nX-Pad: " + strings.Repeat("p", pad) + "\r\n\r\n"
	}
	for _, tc := range []struct {
		name string
		// pipelined requests, written at once; want is the status of each
		raw  []string
		want []int
		seen []string // what the origin received
	}{
		{"one small", []string{req("/a", 10)}, []int{200}, []string{"/a 10"}},
		{"just over the small buffer", []string{req("/a", smallReadBuffer)}, []int{200}, []string{"/a 4096"}},
		{"large then small, pipelined", []string{req("/a", 20000), req("/b", 5), req("/c", 9000)}, []int{200, 200, 200},
			[]string{"/a 20000", "/b 5", "/c 9000"}},
		{"small then large, pipelined", []string{req("/a", 5), req("/b", 30000)}, []int{200, 200}, []string{"/a 5", "/b 30000"}},
		{"head at the limit", []string{req("/a", 64<<10-200)}, []int{200}, []string{"/a " + itoa(64<<10-200)}},
		{"head over the limit", []string{req("/a", 70<<10)}, []int{431}, nil},
		{"bare LF past the small buffer", []string{"GET /a HTTP/1.1\r\nHost: " + host + "\r\nX-Pad: " +
			strings.Repeat("p", 6000) + "\nX-B: 1\r\n\r\n"}, []int{400}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			conn, br := plainTunnel(t, st.addr, host)
			if _, err := io.WriteString(conn, strings.Join(tc.raw, "")); err != nil {
				t.Fatal(err)
			}
			var status []int
			for range tc.want {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("after %v: read response: %v", status, err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				status = append(status, resp.StatusCode)
			}
			if diff := cmp.Diff(tc.want, status); diff != "" {
				t.Errorf("statuses (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.seen, got); diff != "" {
				t.Errorf("origin saw (-want +got):\n%s", diff)
			}
		})
	}
}
