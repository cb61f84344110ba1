package proxy

import (
	"bufio"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestRelayHopByHop pins what relay (the forwarder of requests that ask for no upgrade) does as ReverseProxy
// did: the headers of one connection go no further in either direction, whether standard or named by
// Connection; "Te: trailers" is passed on; a client that sent no User-Agent gets none of Go's; a header's
// several values all arrive; a trailer the target did not announce still reaches the client.
func TestRelayHopByHop(t *testing.T) {
	st := newSetup(t, false, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Resp-Hop")
		h.Set("X-Resp-Hop", "1")
		h.Set("Keep-Alive", "timeout=5")
		h["X-Multi"] = []string{"a", "b"}
		io.WriteString(w, "body")
		w.(http.Flusher).Flush()
		h.Set(http.TrailerPrefix+"X-Late", "late")
	}, nil)
	conn, br := plainTunnel(t, st.addr, st.origin.hostPort())
	resp := rawExchange(t, conn, br, "GET /x HTTP/1.1\r\nHost: "+st.origin.hostPort()+"\r\nAuthorization: Bearer "+userSecret+"\r\n"+
		"Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n"+
		"Te: trailers\r\nX-Kept: yes\r\n\r\n")
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || string(body) != "body" {
		t.Fatalf("status %d, body %q, %v", resp.StatusCode, body, err)
	}
	got := st.origin.lastHeader()
	for _, name := range []string{"Connection", "X-Hop", "Keep-Alive", "Proxy-Connection", "User-Agent"} {
		if v, ok := got[name]; ok {
			t.Errorf("origin received %s: %q", name, v)
		}
	}
	if got.Get("Te") != "trailers" || got.Get("X-Kept") != "yes" {
		t.Errorf("origin header lost Te or an ordinary header: %v", got)
	}
	for _, name := range []string{"X-Resp-Hop", "Keep-Alive"} {
		if v, ok := resp.Header[name]; ok {
			t.Errorf("client received %s: %q", name, v)
		}
	}
	if v := resp.Header.Values("X-Multi"); len(v) != 2 || v[0] != "a" || v[1] != "b" {
		t.Errorf("X-Multi = %q, want a and b", v)
	}
	if resp.Trailer.Get("X-Late") != "late" {
		t.Errorf("trailers %v, want X-Late", resp.Trailer)
	}
}

// TestRelayStreamsEvents checks that server-sent events are flushed as they come, over both protocols: the
// target sends its second event only once the client has read the first, or once it gave up waiting, which a
// relay that held the first event back makes it do (and the test fails instead of hanging).
func TestRelayStreamsEvents(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "http1", true: "http2"}[h2], func(t *testing.T) {
			first := make(chan struct{})
			var late atomic.Bool
			st := newSetup(t, true, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
				w.Header().Set("Content-Length", "20") // a length, so only the media type asks for flushing
				io.WriteString(w, "data: one\n\n")
				w.(http.Flusher).Flush()
				select {
				case <-first:
				case <-time.After(10 * time.Second):
					late.Store(true)
				}
				io.WriteString(w, "data: 2\n\n")
			}, nil)
			client := proxyClient(t, st.addr, st.ca, h2)
			client.Timeout = 0
			req, _ := http.NewRequest(http.MethodGet, st.origin.URL+"/events", nil)
			resp, err := client.Do(bearer(req))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			if late.Load() {
				t.Error("the first event reached the client only after the target stopped waiting for it")
			}
			close(first)
			if err != nil || line != "data: one\n" {
				t.Fatalf("first event %q, %v", line, err)
			}
		})
	}
}

// TestIsEventStream covers the media-type test that decides flushing.
func TestIsEventStream(t *testing.T) {
	for ct, want := range map[string]bool{
		"text/event-stream": true, "Text/Event-Stream; charset=utf-8": true, " text/event-stream ;x=y": true,
		"text/event-streams": false, "text/plain": false, "": false, "application/json; a=text/event-stream": false,
	} {
		if got := isEventStream(ct); got != want {
			t.Errorf("isEventStream(%q) = %v, want %v", ct, got, want)
		}
	}
}

// TestRelayCutShortStaysCutShort: a target that breaks off a chunked response mid-body must not look, to an
// HTTP/1.1 client, like one that finished: the proxy ends the response without its last chunk.
func TestRelayCutShortStaysCutShort(t *testing.T) {
	st := newSetup(t, false, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first part ")
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close() // mid-body, without the last chunk
		}
	}, nil)
	conn, br := plainTunnel(t, st.addr, st.origin.hostPort())
	resp := rawExchange(t, conn, br, "GET /cut HTTP/1.1\r\nHost: "+st.origin.hostPort()+"\r\nAuthorization: Bearer "+userSecret+"\r\n\r\n")
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Errorf("the client read a complete body %q from a target that broke off", body)
	}
}
