package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Tunnel opens a CONNECT tunnel through the proxy and speaks HTTP/2 over TLS inside it, returning the TLS
// connection with the client preface and SETTINGS already sent.
func h2Tunnel(t *testing.T, st *setup) (*tls.Conn, *http2.Framer) {
	t.Helper()
	conn, _ := plainTunnel(t, st.addr, st.origin.hostPort())
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	host, _, _ := net.SplitHostPort(st.origin.hostPort())
	tc := tls.Client(conn, &tls.Config{ServerName: host, RootCAs: st.ca.Pool, NextProtos: []string{http2.NextProtoTLS}})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != http2.NextProtoTLS {
		t.Fatalf("negotiated %q, want h2", p)
	}
	if _, err := tc.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(tc, tc)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return tc, fr
}

// TestHTTP2RapidReset pins CVE-2023-44487 for intercepted tunnels: 20,000 streams opened and cancelled at once on
// one connection started thousands of upstream requests and never ended the connection. Now the connection ends
// with GOAWAY ENHANCE_YOUR_CALM after a bounded number of resets, and the origin sees a bounded number of
// requests. The same holds when the client makes the server reset each stream (MadeYouReset, CVE-2025-8671),
// here by overflowing the stream's flow-control window.
func TestHTTP2RapidReset(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reset func(fr *http2.Framer, id uint32) error
	}{
		{"client resets", func(fr *http2.Framer, id uint32) error { return fr.WriteRSTStream(id, http2.ErrCodeCancel) }},
		{"server-made resets", func(fr *http2.Framer, id uint32) error { return fr.WriteWindowUpdate(id, 1<<31-1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newSetup(t, true, nil, func(s *Server, _ *Target) { s.Metrics = NewMetrics(nil) })
			sent, ga := h2Flood(t, st, tc.reset)
			if ga == nil || ga.ErrCode != http2.ErrCodeEnhanceYourCalm {
				t.Fatalf("no GOAWAY ENHANCE_YOUR_CALM after %d resets (got %+v)", sent, ga)
			}
			// Handlers started before the GOAWAY may still be on their way; let them land before counting.
			time.Sleep(200 * time.Millisecond)
			hits := st.origin.hits.Load()
			t.Logf("%d streams sent before the connection ended, %d reached the origin", sent, hits)
			if hits > h2ResetBurst+h2MaxStreams {
				t.Fatalf("%d upstream requests for reset streams, want at most %d", hits, h2ResetBurst+h2MaxStreams)
			}
			if counterValue(st.srv.Metrics.LimitHits.WithLabelValues(limitH2Resets)) < 1 {
				t.Fatal("the reset limit was not counted")
			}
			// A legitimate HTTP/2 client still gets answers on a new connection.
			resp, err := proxyClient(t, st.addr, st.ca, true).Do(bearer(mustRequest(t, "https://"+st.origin.hostPort()+"/after")))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
				t.Fatalf("after the flood: %d %s", resp.StatusCode, resp.Proto)
			}
		})
	}
}

// h2Flood opens 20,000 streams on one tunnel, each followed by reset(id), and returns how many were sent before
// the connection ended and the GOAWAY received, if any.
func h2Flood(t *testing.T, st *setup, reset func(fr *http2.Framer, id uint32) error) (int, *http2.GoAwayFrame) {
	t.Helper()
	tc, _ := h2Tunnel(t, st)
	var goAway atomic.Pointer[http2.GoAwayFrame]
	readDone := make(chan error, 1)
	go func() {
		rf := http2.NewFramer(nil, tc)
		for {
			f, err := rf.ReadFrame()
			if err != nil {
				readDone <- err
				return
			}
			if ga, ok := f.(*http2.GoAwayFrame); ok {
				cp := *ga
				goAway.Store(&cp)
			}
		}
	}()
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	bw := bufio.NewWriterSize(tc, 64<<10)
	wfr := http2.NewFramer(bw, nil)
	sent := 0
	for i := range 20000 {
		block.Reset()
		for _, hf := range []hpack.HeaderField{
			{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
			{Name: ":authority", Value: st.origin.hostPort()}, {Name: ":path", Value: "/reset"},
			{Name: "authorization", Value: "Bearer " + userSecret},
		} {
			_ = enc.WriteField(hf)
		}
		id := uint32(2*i + 1)
		if err := wfr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block.Bytes(),
			EndStream: true, EndHeaders: true}); err != nil {
			break
		}
		if err := reset(wfr, id); err != nil {
			break
		}
		// Batches small enough that x/net's own queue limit (four times the concurrent streams) never trips, as
		// an attacker who keeps the server's handlers busy would send them.
		if i%20 == 19 {
			if bw.Flush() != nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		sent = i + 1
	}
	_ = bw.Flush()
	select {
	case err := <-readDone:
		if goAway.Load() == nil {
			t.Logf("the connection ended without a GOAWAY: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the connection stayed open after the reset flood")
	}
	return sent, goAway.Load()
}

func mustRequest(t *testing.T, url string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// countingSessions counts the sessions begun.
type countingSessions struct{ begun atomic.Int64 }

func (c *countingSessions) Begin(ctx context.Context, _ *Grant, _ netip.AddrPort) (context.Context, ActiveRequest, error) {
	c.begun.Add(1)
	return ctx, nil, nil
}

// TestResetStreamIsNotForwarded pins the check before forwarding: a request whose stream was reset (its context
// done) while it was being authorized opens no session and reaches no target.
func TestResetStreamIsNotForwarded(t *testing.T) {
	sessions := &countingSessions{}
	st := newSetup(t, false, nil, func(s *Server, _ *Target) { s.Sessions = sessions })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+st.origin.hostPort()+"/reset", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.RequestURI = r.URL.String()
	bearer(r)
	rec := &recordingWriter{header: http.Header{}}
	st.srv.init()
	st.srv.serveHTTP(rec, r, nil, netip.MustParseAddrPort("127.0.0.1:1"), r.Host, nil)
	if n := st.origin.hits.Load(); n != 0 {
		t.Fatalf("the origin got %d requests for a reset stream", n)
	}
	if n := sessions.begun.Load(); n != 0 {
		t.Fatalf("%d sessions begun for a reset stream", n)
	}
}

// recordingWriter is a minimal ResponseWriter.
type recordingWriter struct {
	header http.Header
	code   int
	body   strings.Builder
}

func (w *recordingWriter) Header() http.Header { return w.header }
func (w *recordingWriter) WriteHeader(c int)   { w.code = c }
func (w *recordingWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.body.Write(p)
}

// FuzzFrameScanner checks the guard's frame scanner against frames written by x/net's Framer, whatever the
// sizes of the reads they arrive in.
func FuzzFrameScanner(f *testing.F) {
	f.Add([]byte{1, 0, 5, 3, 0, 1, 0, 0x40, 7}, []byte{1, 2, 3})
	f.Add([]byte{0, 0xff, 0xff, 4, 0, 0, 8, 0, 0}, []byte{9, 9, 9, 200})
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, spec, splits []byte) {
		type frame struct {
			typ    byte
			stream uint32
		}
		var want []frame
		var wire bytes.Buffer
		fr := http2.NewFramer(&wire, nil)
		for i := 0; i+3 <= len(spec) && len(want) < 50; i += 3 {
			typ, stream, n := spec[i]%10, uint32(spec[i+1])<<8|uint32(spec[i+2]), int(spec[i+2])*37%5000
			if err := fr.WriteRawFrame(http2.FrameType(typ), 0, stream, make([]byte, n)); err != nil {
				t.Fatal(err)
			}
			want = append(want, frame{typ, stream})
		}
		var got []frame
		sc := frameScanner{}
		b := wire.Bytes()
		for i := 0; len(b) > 0; i++ {
			n := len(b)
			if len(splits) > 0 {
				n = min(len(b), int(splits[i%len(splits)])+1)
			}
			sc.scan(b[:n], func(typ byte, stream uint32) { got = append(got, frame{typ, stream}) })
			b = b[n:]
		}
		if len(got) != len(want) {
			t.Fatalf("scanned %d frames, wrote %d", len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("frame %d: scanned %+v, wrote %+v", i, got[i], want[i])
			}
		}
		if !sc.atBoundary() {
			t.Fatal("not at a frame boundary after whole frames")
		}
		// untilBoundary, from any point of the stream, names the shortest prefix that ends on a boundary.
		whole := wire.Bytes()
		if len(whole) > 0 && len(splits) > 0 {
			cut := int(splits[0]) * 31 % len(whole)
			var at frameScanner
			at.scan(whole[:cut], nil)
			rest := whole[cut:]
			k := at.untilBoundary(rest)
			if k < 0 || k > len(rest) {
				t.Fatalf("untilBoundary = %d in a stream of whole frames (%d bytes left)", k, len(rest))
			}
			for j := 0; j <= k; j++ {
				probe := at
				probe.scan(rest[:j], nil)
				if probe.atBoundary() != (j == k) {
					t.Fatalf("untilBoundary = %d, but a boundary after %d bytes is %v", k, j, probe.atBoundary())
				}
			}
		}
	})
}
