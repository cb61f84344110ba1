package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// h1Conn serves HTTP/1.x on one connection itself instead of through
// net/http.Server: the server gives no access to the raw request head, and
// checkHead must see every head (keep-alive and pipelining included) before
// net/http repairs it. Responses are written by h1Writer.
type h1Conn struct {
	srv    *Server
	conn   net.Conn      // writes, deadlines, hijacking
	br     *bufio.Reader // every read goes through br: it may hold pipelined bytes
	prefix *prefixReader // what br reads from after growReader, nil before
	bw     *bufio.Writer
	tun    *tunnel // nil on the proxy port itself
	client netip.AddrPort
	track  *trackedConn
	// clientStr is client.String(), made once per connection rather than per request.
	clientStr string
	// cancel ends the context of the connection's requests (see serve).
	cancel context.CancelCauseFunc
}

// errClientGone is the cancellation cause when the client closed its side.
var errClientGone = errors.New("client closed the connection")

// aLongTimeAgo is a deadline in the past, used to abort a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

func (c *h1Conn) serve(ctx context.Context) {
	// The requests of a connection share one cancellable context, which the background read cancels when the
	// client hangs up (that ends the connection too, so no later request sees it cancelled) and which ends
	// with the connection. A context per request cost four allocations: the context, its cancel function, its
	// done channel and its parent's set of children. What a request derives from it, it cancels itself (the
	// session's request context at End, the transport's when its round trip ends).
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c.cancel = cancel
	// A connection that has not sent its first request gets ReadHeaderTimeout, as in net/http, not the
	// keep-alive idle timeout: a silent connection is the cheapest way to hold a descriptor.
	wait := c.srv.readHeaderTimeout()
	for first := true; ; first = false {
		c.track.setIdle(true)
		if c.srv.closing.Load() {
			return
		}
		c.shrinkReader()
		if !first {
			wait = c.srv.idleTimeout()
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(wait))
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		c.track.setIdle(false)
		_ = c.conn.SetReadDeadline(time.Now().Add(c.srv.readHeaderTimeout()))
		head, err := c.readHead()
		if errors.Is(err, errHeadTooLarge) {
			c.refuse(ctx, &httpError{code: http.StatusRequestHeaderFieldsTooLarge, errCode: "HEADERS_TOO_LARGE",
				msg: "request head too large", decision: decisionBadRequest, err: err})
			return
		}
		if errors.Is(err, errBareLF) {
			c.refuse(ctx, badRequest("malformed request: "+err.Error(), err))
			return
		}
		if err != nil {
			return // timeout or connection closed mid-head: nobody to answer
		}
		hi, err := checkHead(head)
		if err != nil {
			c.refuse(ctx, badRequest("malformed request: "+err.Error(), err))
			return
		}
		req, err := http.ReadRequest(c.br)
		if err != nil {
			c.refuse(ctx, badRequest("malformed request", err))
			return
		}
		_ = c.conn.SetReadDeadline(time.Time{})
		if err := crossCheck(req, hi); err != nil {
			c.refuse(ctx, badRequest("malformed request: "+err.Error(), err))
			return
		}
		if c.srv.closing.Load() {
			c.refuse(ctx, shuttingDown())
			return
		}
		if !c.serveRequest(ctx, req, hi) {
			return
		}
	}
}

// readHead peeks at the next request head. Connections start with a small
// read buffer (an idle tunnel then holds 4 KiB, not the maximum head size);
// a head that does not fit moves the connection to a buffer that holds the
// largest allowed head, and every limit and check applies as before.
func (c *h1Conn) readHead() ([]byte, error) {
	max := c.srv.maxHeaderBytes()
	if c.br.Size() > max {
		return peekHead(c.br, max)
	}
	// With max set to the buffer's size, "too large" means "does not fit".
	head, err := peekHead(c.br, c.br.Size())
	if !errors.Is(err, errHeadTooLarge) {
		return head, err
	}
	if !c.growReader() {
		return nil, errHeadTooLarge
	}
	return peekHead(c.br, max)
}

// smallReadBuffer is the read buffer every connection starts with: as large as
// net/http's, enough for the heads of ordinary requests.
const smallReadBuffer = 4096

// growReader replaces the small read buffer with one that can hold the
// largest allowed head, carrying over the bytes already buffered. The large
// buffers of all connections together stay within the server's head budget
// (a large head costs 16 times a small one, and anyone can send one before
// authenticating); it reports false, and the head is refused as too large,
// when the budget is spent.
func (c *h1Conn) growReader() bool {
	size := int64(c.srv.readBufferSize())
	if !c.srv.heads.Reserve(size) {
		c.srv.limitHit(limitHeadBudget)
		return false
	}
	c.track.holdHeads(size)
	pending, _ := c.br.Peek(c.br.Buffered()) // the small reader is not read again
	c.prefix = &prefixReader{prefix: pending, r: c.conn}
	c.br = bufio.NewReaderSize(c.prefix, int(size))
	return true
}

// shrinkReader goes back to a small read buffer between requests once a large
// one holds nothing, so a single large head does not pin the large buffer
// for the rest of a long-lived connection.
func (c *h1Conn) shrinkReader() {
	if c.br.Size() <= smallReadBuffer || c.br.Buffered() > 0 {
		return
	}
	if c.prefix != nil && len(c.prefix.prefix) > 0 {
		return // cannot happen (the first fill takes it all), but never drop bytes
	}
	c.prefix = nil
	size := int64(c.br.Size())
	c.br = bufio.NewReaderSize(c.conn, smallReadBuffer)
	c.srv.heads.Return(size)
	c.track.holdHeads(-size)
}

// crossCheck makes sure net/http framed the request as checkHead did, so a
// parser disagreement is refused instead of exploited.
func crossCheck(req *http.Request, hi headInfo) error {
	switch {
	case hi.chunked != (len(req.TransferEncoding) == 1 && req.TransferEncoding[0] == "chunked"):
		return errUnsupportedTE
	case !hi.chunked && hi.contentLength != req.ContentLength && !(hi.contentLength == -1 && req.ContentLength == 0):
		return errInvalidCL
	case req.Host != hi.host && req.URL.Host == "":
		return errHost
	}
	return nil
}

// refuse answers a request that could not be parsed safely and closes.
func (c *h1Conn) refuse(ctx context.Context, e *httpError) {
	req := &http.Request{Method: http.MethodGet, ProtoMajor: 1, ProtoMinor: 1, Close: true, Header: http.Header{}}
	w := &h1Writer{c: c, req: req, header: http.Header{}, closeAfter: true}
	id := c.srv.ids.next()
	writeError(w, e, id)
	w.finish()
	c.srv.logRefused(ctx, c.client, e, id)
}

// serveRequest runs one request and reports whether the connection can be
// reused for the next one.
func (c *h1Conn) serveRequest(ctx context.Context, req *http.Request, hi headInfo) bool {
	w := &h1Writer{c: c, req: req, header: http.Header{}, cancel: c.cancel}
	w.closeAfter = req.Close || req.ProtoMinor == 0 || c.srv.closing.Load()
	if req.Method == http.MethodConnect {
		if c.tun != nil {
			c.refuse(ctx, badRequest("CONNECT inside a tunnel", nil))
			return false
		}
		c.srv.handleConnect(ctx, c, req, hi)
		return false
	}
	if e := req.Header.Get("Expect"); e != "" && !strings.EqualFold(e, "100-continue") {
		c.refuse(ctx, &httpError{code: http.StatusExpectationFailed, errCode: "BAD_REQUEST",
			msg: "unsupported Expect", decision: decisionBadRequest})
		return false
	}
	var body *h1Body
	if req.Body != nil && req.Body != http.NoBody {
		body = &h1Body{rc: req.Body, w: w, expectContinue: strings.EqualFold(req.Header.Get("Expect"), "100-continue"),
			timeout: c.srv.bodyReadTimeout()}
		req.Body = body
	} else if req.Header.Get("Upgrade") == "" {
		w.startBackgroundRead()
	}
	if c.clientStr == "" {
		c.clientStr = c.client.String()
	}
	req.RemoteAddr = c.clientStr
	c.srv.serveHTTP(w, req.WithContext(ctx), c.tun, c.client, hi.host, c.track)
	w.abortBackgroundRead()
	if w.hijacked {
		return false
	}
	if body != nil && !body.eof {
		if body.timedOut {
			w.closeAfter = true // the client went silent mid-body: answer now, read nothing more
		} else if body.expectContinue && !body.sentContinue {
			w.closeAfter = true // the client may never send the body it announced
		} else {
			// Discard what the handler left unread (a denied request's body)
			// so the next request starts where it should; give up and
			// close on large leftovers.
			_ = c.conn.SetReadDeadline(time.Now().Add(c.srv.readHeaderTimeout()))
			if _, err := io.CopyN(io.Discard, body.rc, 256<<10); err != io.EOF {
				w.closeAfter = true
			}
			_ = c.conn.SetReadDeadline(time.Time{})
		}
	}
	w.finish()
	return !w.closeAfter && !w.clientGone.Load()
}

// h1Body wraps a request body to send "100 Continue" on the first read, to
// bound the wait for each read, and to start watching for a client
// disconnect once the body is consumed.
type h1Body struct {
	rc             io.ReadCloser
	w              *h1Writer
	expectContinue bool
	sentContinue   bool
	eof            bool
	timedOut       bool
	timeout        time.Duration
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	if b.expectContinue && !b.sentContinue {
		b.sentContinue = true
		b.w.writeContinue()
	}
	// An idle deadline per read, not one for the whole body: a large upload may take long, a silent one may not.
	_ = b.w.c.conn.SetReadDeadline(time.Now().Add(b.timeout))
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
		_ = b.w.c.conn.SetReadDeadline(time.Time{}) // the background read waits as long as the response takes
		b.w.startBackgroundRead()
	} else if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		b.timedOut = true
		b.w.c.srv.limitHit(limitBodyTimeout)
		err = fmt.Errorf("%w: %w", errBodyReadTimeout, err)
	}
	return n, err
}

func (b *h1Body) Close() error { return nil } // the connection owns the stream

// h1Writer is the http.ResponseWriter of h1Conn. It frames the response with
// Content-Length when the handler set one and chunked encoding otherwise.
type h1Writer struct {
	c      *h1Conn
	req    *http.Request
	header http.Header
	cancel context.CancelCauseFunc

	mu          sync.Mutex // orders the 100-continue write before the header
	wroteHeader bool
	noBody      bool
	chunked     bool
	remaining   int64 // bytes still allowed by Content-Length, -1 unbounded
	closeAfter  bool
	aborted     bool // the body broke off: finish writes no last chunk
	hijacked    bool
	cw          io.WriteCloser

	bgOnce     sync.Once
	bgStarted  bool           // set under bgOnce: the background read runs or ran
	bgWG       sync.WaitGroup // done when it has returned (a WaitGroup, unlike a channel, costs no allocation)
	bgAborted  atomic.Bool
	clientGone atomic.Bool
}

func (w *h1Writer) Header() http.Header { return w.header }

func (w *h1Writer) writeContinue() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.wroteHeader || w.hijacked {
		return
	}
	_, _ = w.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	_ = w.c.bw.Flush()
}

func (w *h1Writer) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.wroteHeader || w.hijacked {
		return
	}
	if code < 100 || code > 999 {
		code = http.StatusInternalServerError
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// Interim responses (103 Early Hints) carry the current header.
		w.writeStatusAndHeader(code, w.header)
		_ = w.c.bw.Flush()
		return
	}
	w.wroteHeader = true
	h := w.header.Clone()
	w.noBody = w.req.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified || code == http.StatusSwitchingProtocols
	w.remaining = -1
	h.Del("Transfer-Encoding")
	if cl := h.Get("Content-Length"); cl != "" {
		if n, err := parseContentLength(cl); err == nil {
			w.remaining = n
		} else {
			h.Del("Content-Length")
		}
	}
	if code == http.StatusNoContent {
		h.Del("Content-Length")
	}
	switch {
	case w.noBody || w.remaining >= 0:
		h.Del("Trailer")
	case w.req.ProtoAtLeast(1, 1):
		w.chunked = true
		h.Set("Transfer-Encoding", "chunked")
	default:
		h.Del("Trailer")
		w.closeAfter = true // HTTP/1.0: the body ends when the connection does
	}
	if w.closeAfter || w.c.srv.closing.Load() {
		w.closeAfter = true
		h.Set("Connection", "close")
	}
	if _, ok := h["Date"]; !ok {
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			delete(h, k)
		}
	}
	w.writeStatusAndHeader(code, h)
	if w.chunked {
		w.cw = httputil.NewChunkedWriter(w.c.bw)
	}
}

func (w *h1Writer) writeStatusAndHeader(code int, h http.Header) {
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	// As fmt's "HTTP/1.1 %03d %s\r\n" wrote it (code is 100 to 999 here), without boxing its arguments.
	var line [16]byte
	b := strconv.AppendInt(append(line[:0], "HTTP/1.1 "...), int64(code), 10)
	_, _ = w.c.bw.Write(append(b, ' '))
	_, _ = w.c.bw.WriteString(text)
	_, _ = w.c.bw.WriteString("\r\n")
	_ = h.Write(w.c.bw) // Header.Write turns CR and LF in values into spaces
	_, _ = w.c.bw.WriteString("\r\n")
}

func (w *h1Writer) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	switch {
	case w.noBody:
		return 0, http.ErrBodyNotAllowed
	case w.chunked:
		if len(p) == 0 {
			return 0, nil // a zero-length chunk would end the body
		}
		return w.cw.Write(p)
	case w.remaining >= 0 && int64(len(p)) > w.remaining:
		n, _ := w.c.bw.Write(p[:w.remaining])
		w.remaining = 0
		return n, http.ErrContentLength
	}
	if w.remaining > 0 {
		w.remaining -= int64(len(p))
	}
	return w.c.bw.Write(p)
}

// Flush sends buffered response bytes to the client; ReverseProxy calls it
// for streaming responses.
func (w *h1Writer) Flush() {
	if w.hijacked {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	_ = w.c.bw.Flush()
}

// Hijack hands the connection to ReverseProxy for protocol upgrades
// (WebSocket). Bytes the client already sent stay readable from the conn.
func (w *h1Writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.abortBackgroundRead()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	w.hijacked = true
	_ = w.c.bw.Flush()
	conn := &bufConn{Conn: w.c.conn, r: w.c.br}
	return conn, bufio.NewReadWriter(w.c.br, w.c.bw), nil
}

// finish ends the response: an empty 200 if nothing was written, the last
// chunk and trailers for chunked bodies, then a flush.
func (w *h1Writer) finish() {
	if w.hijacked {
		return
	}
	if w.aborted {
		_ = w.c.bw.Flush() // what came of the body, then the connection closes without a last chunk
		return
	}
	if !w.wroteHeader {
		if w.header.Get("Content-Length") == "" {
			w.header.Set("Content-Length", "0")
		}
		w.WriteHeader(http.StatusOK)
	}
	if w.chunked {
		_ = w.cw.Close() // writes the "0\r\n" last-chunk
		trailer := http.Header{}
		for _, list := range w.header.Values("Trailer") {
			for k := range strings.SplitSeq(list, ",") {
				k = http.CanonicalHeaderKey(strings.TrimSpace(k))
				if v, ok := w.header[k]; ok {
					trailer[k] = v
				}
			}
		}
		for k, v := range w.header {
			if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
				trailer[http.CanonicalHeaderKey(name)] = v
			}
		}
		_ = trailer.Write(w.c.bw)
		_, _ = w.c.bw.WriteString("\r\n")
	}
	if w.remaining > 0 {
		w.closeAfter = true // the handler wrote less than it announced
	}
	_ = w.c.bw.Flush()
}

// abort ends a response whose body broke off: the connection closes after what was written, without the last
// chunk and trailers, so that the client sees the response cut short rather than complete.
func (w *h1Writer) abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.aborted, w.closeAfter = true, true
}

// startBackgroundRead watches the connection while the handler runs, once
// the request body has been consumed, so a client that hangs up cancels the
// request context and with it the upstream request.
func (w *h1Writer) startBackgroundRead() {
	w.bgOnce.Do(func() {
		w.bgStarted = true
		w.bgWG.Add(1)
		go w.backgroundRead()
	})
}

func (w *h1Writer) backgroundRead() {
	defer w.bgWG.Done()
	if _, err := w.c.br.Peek(1); err != nil && !w.bgAborted.Load() {
		w.clientGone.Store(true)
		if w.cancel != nil {
			w.cancel(errClientGone)
		}
	}
}

func (w *h1Writer) abortBackgroundRead() {
	w.bgOnce.Do(func() {}) // no read may start after this
	if !w.bgStarted {
		return
	}
	w.bgAborted.Store(true)
	_ = w.c.conn.SetReadDeadline(aLongTimeAgo)
	w.bgWG.Wait()
	_ = w.c.conn.SetReadDeadline(time.Time{})
}

// bufConn is a net.Conn whose reads drain a bufio.Reader first, so bytes
// buffered while reading a CONNECT or an upgrade request are not lost.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// prefixReader returns the bytes a small read buffer held before reading on
// from the connection.
type prefixReader struct {
	prefix []byte
	r      io.Reader
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.r.Read(b)
}
