package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
)

// forward sends an admitted request to its target: it buffers a chunked body, arranges the recording's taps
// and hands the request to relay, or to the ReverseProxy when it asks for an upgrade; rewriteOut injects the
// target's credential on either way.
func (s *Server) forward(ctx context.Context, w *statusWriter, r *http.Request, rs *requestState) error {
	g := rs.grant
	if len(r.TransferEncoding) > 0 {
		if err := s.bufferChunked(r, rs); err != nil {
			return err
		}
	}
	if g.Target.AuditEnabled {
		rs.reqHeader = r.Header
	}
	if r.Body != nil && r.Body != http.NoBody && scansForOverride(r) {
		r.Body = newOverrideScanner(r.Body, &rs.overrideHit)
	}
	if r.Body != nil && r.Body != http.NoBody {
		rs.taps[0] = tap{rc: r.Body, limit: s.captureLimit(rs)}
		rs.reqTap = &rs.taps[0]
		r.Body = rs.reqTap
	}
	if g.Target.AuditEnabled && rs.websocket {
		w.ws = newWSCapture(s.captureLimit(rs))
	}
	rs.decision = decisionAllow
	if err := ctx.Err(); err != nil {
		return clientClosed(err) // reset while the body was read or the session opened
	}
	ctx = rs.withState(ctx)
	if headerHasToken(r.Header, "Connection", "upgrade") {
		s.reverseProxy().ServeHTTP(w, r.WithContext(ctx)) // ReverseProxy handles 101 Switching Protocols
		return nil
	}
	s.relay(ctx, w, r, rs)
	return nil
}

// bufferChunked reads a chunked body completely before anything is
// forwarded: a chunk-framing error found halfway would otherwise leave the
// target holding a partial request. The target then gets Content-Length
// framing only. What is buffered counts against the server's chunked-body
// budget; a body that finds the budget spent is streamed from there on (the
// target then sees chunked framing written by Gatehouse, and a framing error
// aborts the forwarded request mid-body), so never-ending chunked bodies
// cannot pin more memory than the budget.
func (s *Server) bufferChunked(r *http.Request, rs *requestState) error {
	limit := s.maxChunkedBody()
	var body []byte
	for {
		if len(body) == cap(body) {
			grow := min(max(int64(cap(body)), 4096), limit+1-int64(cap(body)))
			if !s.chunked.Reserve(grow) {
				s.limitHit(limitChunkedBudget)
				r.Body = &limitedBody{r: io.MultiReader(bytes.NewReader(body), r.Body), left: limit - int64(len(body))}
				r.Trailer = nil
				r.ContentLength = -1
				return nil
			}
			rs.chunkReserved += grow
			nb := make([]byte, len(body), int64(cap(body))+grow)
			copy(nb, body)
			body = nb
		}
		n, err := r.Body.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if int64(len(body)) > limit {
			return bodyTooLarge(nil)
		}
		if err == io.EOF {
			break
		}
		if errors.Is(err, errBodyReadTimeout) {
			return bodyTimeout(err)
		}
		if err != nil {
			return badRequest("malformed chunked body", err)
		}
	}
	r.TransferEncoding = nil
	r.Trailer = nil // request trailers are not forwarded
	r.ContentLength = int64(len(body))
	r.Body = http.NoBody
	if len(body) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	return nil
}

// errChunkedTooLarge ends a streamed chunked body that went past MaxChunkedBody.
var errChunkedTooLarge = errors.New("chunked request body too large")

// errBodyReadTimeout ends a request body whose client went silent for BodyReadTimeout.
var errBodyReadTimeout = errors.New("request body read timed out")

// limitedBody streams a chunked body beyond the buffer budget, still bounded by MaxChunkedBody.
type limitedBody struct {
	r    io.Reader
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if b.left -= int64(n); b.left < 0 {
		return 0, errChunkedTooLarge
	}
	return n, err
}

func (b *limitedBody) Close() error { return nil } // the connection owns the stream

func bodyTooLarge(err error) *httpError {
	return &httpError{code: http.StatusRequestEntityTooLarge, errCode: "BODY_TOO_LARGE",
		msg: "chunked request body too large", decision: decisionBadRequest, err: err}
}

func bodyTimeout(err error) *httpError {
	return &httpError{code: http.StatusRequestTimeout, errCode: "BODY_TIMEOUT",
		msg: "request body timed out", decision: decisionBadRequest, err: err}
}

// rewrite is the ReverseProxy Rewrite hook. ReverseProxy has already removed
// hop-by-hop headers, including any named by the client's Connection header,
// so nothing the client sends can remove the credential injected here
// (CVE-2021-33197).
func (s *Server) rewrite(pr *httputil.ProxyRequest) {
	s.rewriteOut(pr.Out, stateFrom(pr.In.Context()))
}

// rewriteOut turns the outbound request, a copy of the client's without its hop-by-hop headers (ReverseProxy's
// or relay's), into the target's: its URL and Host, the client's headers a target must never see removed,
// and the target's credential injected.
func (s *Server) rewriteOut(out *http.Request, rs *requestState) {
	rs.fwdURL = *rs.outURL
	out.URL = &rs.fwdURL
	out.Host = rs.host
	h := out.Header
	deleteHeaders(h, strippedRequestHeader)
	if rs.scrub != nil {
		// What the scrubber must read comes back uncompressed, whole and unextended: a compressed body hides the
		// secret, and a client choosing byte ranges of a reflected header could fetch it in pieces no scan finds.
		h["Accept-Encoding"] = identityEncoding
		h.Del("Range")
		h.Del("If-Range")
		h.Del("Sec-Websocket-Extensions")
	}
	injectCredential(h, rs.grant.Target.Credential, rs.scrub)
	if rs.websocket && rs.grant.Target.AuditEnabled {
		// A compressed (permessage-deflate) message cannot be read, redacted or searched; without the offer the
		// target sends plain frames, which is what a recorded session needs.
		h.Del("Sec-Websocket-Extensions")
	}
}

// identityEncoding is the Accept-Encoding value of a scrubbed request, shared by all of them: a header's values
// are replaced, never written into, and the slice is clipped so that an append copies.
var identityEncoding = []string{"identity"}[:1:1]

// strippedRequestHeader reports the client's headers that never reach a target, in any spelling: its own
// credentials, Expect (answered by the proxy), forwarding headers a target might trust, and the method and
// path overrides.
func strippedRequestHeader(name string) bool {
	return equalFoldAny(name, "authorization", "proxy-authorization", "expect", "forwarded", "x-real-ip") ||
		len(name) >= len("x-forwarded-") && strings.EqualFold(name[:len("x-forwarded-")], "x-forwarded-") ||
		isMethodOverride(name) || isPathOverride(name) ||
		// CGI, WSGI, PHP and Rack turn "-" into "_" (HTTP_X_API_KEY), so X_Api_Key would reach them as the
		// very header stripped or injected here; nginx drops underscored names by default for that reason.
		strings.IndexByte(name, '_') >= 0
}

// protoName is the protocol a client spoke, as HAR and the trail name it.
func protoName(r *http.Request) string {
	switch {
	case r.ProtoMajor == 2:
		return "HTTP/2"
	case r.ProtoMajor == 1 && r.ProtoMinor == 1:
		return "HTTP/1.1"
	case r.ProtoMajor == 1 && r.ProtoMinor == 0:
		return "HTTP/1.0"
	}
	return fmt.Sprintf("HTTP/%d.%d", r.ProtoMajor, r.ProtoMinor)
}

// injectCredential sets the target's credential; a certificate is presented
// by the transport instead. The header value made once for the credential's scrubber is used when there is
// one: values in a header are replaced, never written into, and it is clipped, so that an append copies.
func injectCredential(h http.Header, c TargetCredential, sc *scrubber) {
	if sc != nil && sc.injectValue != nil {
		if c.Type == CredentialHeader {
			deleteHeaders(h, func(n string) bool { return strings.EqualFold(n, c.HeaderName) })
		}
		h[sc.injectName] = sc.injectValue
		return
	}
	switch c.Type {
	case CredentialToken:
		h.Set("Authorization", "Bearer "+c.Token)
	case CredentialBasicAuth:
		r := http.Request{Header: h}
		r.SetBasicAuth(c.Username, c.Password)
	case CredentialHeader:
		deleteHeaders(h, func(n string) bool { return strings.EqualFold(n, c.HeaderName) })
		h.Set(c.HeaderName, c.HeaderValue)
	}
}

// deleteHeaders removes the headers whose name matches, whatever their spelling in the map: match compares
// without case.
func deleteHeaders(h http.Header, match func(name string) bool) {
	for k := range h {
		if match(k) {
			delete(h, k)
		}
	}
}

// captureLimit is how much of each body to keep for the recording: the session's own limit when its Sessions
// says (a connection policy can set it), else BodyLimit; nothing for unaudited targets.
func (s *Server) captureLimit(rs *requestState) int {
	if rs.grant == nil || rs.grant.Target == nil || !rs.grant.Target.AuditEnabled {
		return 0
	}
	if cl, ok := rs.active.(interface{ CaptureLimit() int }); ok {
		return cl.CaptureLimit()
	}
	return s.bodyLimit()
}

// modifyResponse notes the response header for the recording and taps the
// body of audited exchanges.
func (s *Server) modifyResponse(resp *http.Response) error {
	rs := stateFrom(resp.Request.Context())
	if rs == nil {
		return nil
	}
	rs.answered = s.now()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		if err := checkSwitch(resp.Request, resp, rs.websocket); err != nil {
			return err
		}
	}
	if rs.scrub != nil {
		if err := scrubResponse(resp, rs.scrub); err != nil {
			return err
		}
	}
	if !rs.grant.Target.AuditEnabled {
		return nil
	}
	rs.respHdr = resp.Header
	if resp.StatusCode != http.StatusSwitchingProtocols && resp.Body != nil {
		// An upgraded body is the raw backend conn and must stay one.
		rs.taps[1] = tap{rc: resp.Body, limit: s.captureLimit(rs)}
		rs.respTap = &rs.taps[1]
		resp.Body = rs.respTap
	}
	return nil
}

func (s *Server) reverseProxy() *httputil.ReverseProxy {
	s.init()
	return s.rp
}

// headerHasToken reports whether a comma-separated header (Connection, say) lists token, case-insensitively.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}
