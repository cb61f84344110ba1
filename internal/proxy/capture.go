package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// tap counts the bytes of a body as it streams by and keeps the first limit
// of them for the recording. It never holds the stream back.
type tap struct {
	rc    io.ReadCloser
	limit int

	mu        sync.Mutex // the transport may still read while the handler finishes
	buf       []byte
	n         int64
	truncated bool
	err       error
}

func (t *tap) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	t.mu.Lock()
	t.n += int64(n)
	if room := t.limit - len(t.buf); room > 0 {
		t.buf = append(t.buf, p[:min(n, room)]...)
		if n > room {
			t.truncated = true
		}
	} else if n > 0 && t.limit > 0 {
		t.truncated = true
	}
	if err != nil && err != io.EOF {
		t.err = err
	}
	t.mu.Unlock()
	return n, err
}

func (t *tap) Close() error { return t.rc.Close() }

// snapshot returns what was captured so far. The bytes are shared, not copied: a tap only ever appends past
// what it returned, and the slice is clipped, so that neither a later read nor the caller's appends can change
// what the other sees.
func (t *tap) snapshot() (body []byte, n int64, truncated bool) {
	if t == nil {
		return nil, 0, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf[:len(t.buf):len(t.buf)], t.n, t.truncated
}

// statusWriter remembers the status and counts the bytes sent to the client,
// including those of an upgraded (hijacked) connection.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	written     int64
	upIn        atomic.Int64 // client to target after an upgrade
	upOut       atomic.Int64 // target to client after an upgrade
	// scrub, when set, masks the injected credential in every header sent, interim (103) ones included, which
	// ReverseProxy copies straight from the target.
	scrub *scrubber
	// requestID is set on every answer, interim ones excepted.
	requestID string
	// ws, when set, records the messages of an audited WebSocket upgrade.
	ws *wsCapture
	// idValue holds requestID as a header value, so that setting it allocates nothing.
	idValue [1]string
}

func (w *statusWriter) WriteHeader(code int) {
	if w.scrub != nil {
		w.scrub.header(w.Header())
	}
	if w.requestID != "" && code >= 200 {
		w.idValue[0] = w.requestID
		w.Header()[RequestIDHeader] = w.idValue[:]
	}
	if !w.wroteHeader && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	return n, err
}

// Flush passes ReverseProxy's flushes through.
func (w *statusWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack passes an upgrade through and counts its bytes.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("hijack: %w", err)
	}
	w.status, w.wroteHeader = http.StatusSwitchingProtocols, true
	return &countingConn{Conn: conn, in: &w.upIn, out: &w.upOut, ws: w.ws}, brw, nil
}

// abort passes on that the response broke off, to a writer that can say so (h1Writer); under the HTTP/2
// server relay aborts the handler instead.
func (w *statusWriter) abort() {
	if a, ok := w.ResponseWriter.(interface{ abort() }); ok {
		a.abort()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type countingConn struct {
	net.Conn
	in, out *atomic.Int64
	ws      *wsCapture
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	if c.ws != nil && n > 0 {
		c.ws.toTarget.feed(p[:n])
	}
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	if c.ws != nil && n > 0 {
		c.ws.toClient.feed(p[:n])
	}
	return n, err
}
