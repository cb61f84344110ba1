package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
)

// relay forwards an admitted request that asks for no protocol upgrade over its target's pooled transport. It
// does what httputil.ReverseProxy does for such a request, in the same order and with the same hooks (rewrite's
// header filter and credential, modifyResponse, upstreamError), without the copies ReverseProxy makes for the
// generality it offers: a clone of the whole request (its header, URL and context), header values appended one
// by one into the client's response header, a media-type parse per response. Requests that ask for an upgrade
// (WebSocket) still go through ReverseProxy, which handles 101 Switching Protocols.
//
// Parsing and framing stay with net/http: the transport writes the request and reads the response, the
// connection's writer frames what is written here.
func (s *Server) relay(ctx context.Context, w *statusWriter, r *http.Request, rs *requestState) {
	rs.sw = w
	rs.trace.Got1xxResponse = rs.got1xx
	out := r.WithContext(httptrace.WithClientTrace(ctx, &rs.trace))
	out.Header = outboundHeader(r.Header)
	out.Close = false
	if r.ContentLength == 0 {
		out.Body = nil // a nil body lets the transport retry the request on a stale pooled connection
	}
	if out.Body != nil {
		// The transport closes the body it is given when it fails; the inbound body belongs to the connection.
		// Reads after relay returns are refused: the transport's writer may outlive the handler.
		rs.outBody = closeGuard{rc: out.Body}
		out.Body = &rs.outBody
		defer rs.outBody.Close()
	}
	// Tell a target that cares that trailers are supported, when the client said so (as ReverseProxy does).
	if headerHasToken(r.Header, "Te", "trailers") {
		out.Header.Set("Te", "trailers")
	}
	s.rewriteOut(out, rs)
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header.Set("User-Agent", "") // no Go default User-Agent on behalf of a client that sent none
	}

	res, err := s.transports.RoundTrip(out)
	rs.interimMu.Lock()
	rs.roundTripDone = true
	rs.interimMu.Unlock()
	if err != nil {
		s.upstreamError(w, out, err)
		return
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		// modifyResponse refuses a switch nobody asked for; should it not, the answer is refused here all the same.
		err := s.modifyResponse(res)
		res.Body.Close()
		if err == nil {
			err = &refusedResponseError{"target switched protocols for a request that asked for no upgrade"}
		}
		s.upstreamError(w, out, err)
		return
	}
	removeHopByHop(res.Header)
	if err := s.modifyResponse(res); err != nil {
		res.Body.Close()
		s.upstreamError(w, out, err)
		return
	}
	addHeader(w.Header(), res.Header)
	// The transport keeps the announced trailers' names in res.Trailer, not in the header.
	announced := len(res.Trailer)
	if announced > 0 {
		names := make([]string, 0, announced)
		for k := range res.Trailer {
			names = append(names, k)
		}
		w.Header().Add("Trailer", strings.Join(names, ", "))
	}
	w.WriteHeader(res.StatusCode)
	// A streamed response (no length) and server-sent events are flushed as they come, the header at once.
	streamed := res.ContentLength == -1 || isEventStream(res.Header.Get("Content-Type"))
	if streamed {
		w.Flush()
	}
	if err := s.copyBody(w, res.Body, streamed); err != nil {
		defer res.Body.Close()
		// The client must see the response cut short, not complete: under an HTTP server (the HTTP/2 one) the
		// handler is aborted, as ReverseProxy does; the HTTP/1 connection closes without the last chunk
		// (ReverseProxy let it write one, so that a chunked body cut off looked whole).
		if r.Context().Value(http.ServerContextKey) == nil {
			w.abort()
			s.reverseProxy().ErrorLog.Printf("proxy: response body cut short: %v", err)
			return
		}
		panic(http.ErrAbortHandler)
	}
	res.Body.Close() // now, not deferred: closing fills res.Trailer
	if len(res.Trailer) > 0 {
		w.Flush() // forces chunked framing, so that the trailers can follow
	}
	if len(res.Trailer) == announced {
		addHeader(w.Header(), res.Trailer)
		return
	}
	for k, vv := range res.Trailer {
		for _, v := range vv {
			w.Header().Add(http.TrailerPrefix+k, v)
		}
	}
}

// copyBody copies a response body to the client with a pooled buffer, flushing after each write when streamed.
func (s *Server) copyBody(w *statusWriter, body io.Reader, streamed bool) error {
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	for {
		nr, rerr := body.Read(buf)
		if rerr != nil && rerr != io.EOF && !errors.Is(rerr, context.Canceled) {
			s.reverseProxy().ErrorLog.Printf("proxy: read error during response body copy: %v", rerr)
		}
		if nr > 0 {
			nw, werr := w.Write(buf[:nr])
			if werr != nil {
				return werr
			}
			if nw != nr {
				return io.ErrShortWrite
			}
			if streamed {
				w.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// got1xx passes an interim response (103 Early Hints, say) on to the client while the round trip runs; the
// statusWriter scrubs its header like any other.
func (rs *requestState) got1xx(code int, header textproto.MIMEHeader) error {
	rs.interimMu.Lock()
	defer rs.interimMu.Unlock()
	if rs.roundTripDone {
		return nil // the final response owns the header map now
	}
	h := rs.sw.Header()
	for k, vv := range header {
		for _, v := range vv {
			h.Add(k, v)
		}
	}
	rs.sw.WriteHeader(code)
	clear(h) // a 1xx's header is not the final response's
	return nil
}

// outboundHeader is the client's header for the target without the hop-by-hop headers (those named by
// Connection, and the standard ones): a map of its own, whose values are the client's, shared (clipped, so
// that an append copies): what the target gets is changed by replacing and deleting names, never by writing
// into a value, and the client's header stays as received for the recording. rewriteOut then removes what
// must never reach a target.
func outboundHeader(in http.Header) http.Header {
	conn := in["Connection"]
	out := make(http.Header, len(in))
	for k, vv := range in {
		if !isHopByHop(k, conn) {
			out[k] = vv[:len(vv):len(vv)]
		}
	}
	return out
}

// hopByHop are the headers of one connection (RFC 9110 section 7.6.1, and those RFC 2616 listed), as
// ReverseProxy removes them.
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// isHopByHop reports whether the header name is hop-by-hop, or named as such by the Connection values conn.
func isHopByHop(name string, conn []string) bool {
	if equalFoldAny(name, hopByHop...) {
		return true
	}
	for _, v := range conn {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = textproto.TrimString(tok); tok != "" && strings.EqualFold(tok, name) {
				return true
			}
		}
	}
	return false
}

// removeHopByHop removes the hop-by-hop headers of a target's response.
func removeHopByHop(h http.Header) {
	conn := h["Connection"]
	for k := range h {
		if isHopByHop(k, conn) {
			delete(h, k)
		}
	}
}

// addHeader adds src's values to dst. A name dst lacks takes src's values without a copy: src is a response
// header the transport made for this request alone, and values are replaced in a header, never written into.
func addHeader(dst, src http.Header) {
	for k, vv := range src {
		if old, ok := dst[k]; ok {
			dst[k] = append(old[:len(old):len(old)], vv...)
			continue
		}
		dst[k] = vv
	}
}

// isEventStream reports a text/event-stream media type (server-sent events), which is flushed as it comes.
func isEventStream(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "text/event-stream")
}

// closeGuard passes reads to a request body until Close, after which reads fail; Close does not close the
// body, which the connection owns.
type closeGuard struct {
	rc     io.ReadCloser
	closed atomic.Bool
}

var errBodyAfterHandler = errors.New("request body read after the request ended")

func (g *closeGuard) Read(p []byte) (int, error) {
	if g.closed.Load() {
		return 0, errBodyAfterHandler
	}
	return g.rc.Read(p)
}

func (g *closeGuard) Close() error {
	g.closed.Store(true)
	return nil
}

// interim is the part of requestState that relay's interim-response hook shares with the round trip.
type interim struct {
	sw            *statusWriter
	trace         httptrace.ClientTrace
	interimMu     sync.Mutex
	roundTripDone bool
	outBody       closeGuard
}
