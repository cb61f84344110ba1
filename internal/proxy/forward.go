package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// requestState follows one request from parsing to the access log. The
// ReverseProxy hooks find it in the request context.
type requestState struct {
	id     string // request id, in every answer, log line and trail record
	start  time.Time
	client netip.AddrPort
	method string
	scheme string
	host   string // authority as the client sent it
	path   string // normalized escaped path
	outURL *url.URL
	// websocket is set for a complete WebSocket opening handshake, the only upgrade that is forwarded.
	websocket bool
	// scrub masks the injected credential in the response; nil when nothing is injected.
	scrub *scrubber
	// recordDenied is set for a policy denial that goes into its session's trail.
	recordDenied bool
	// overrideHit is set when the body was cut off for naming a _method field.
	overrideHit atomic.Bool
	proto       string // the client's protocol as recorded: HTTP/1.1, HTTP/2

	grant    *Grant
	decision string
	reason   string
	status   int
	err      error
	upstream string // upstream error kind, "" if none

	// chunkReserved is what bufferChunked holds of the server's chunked-body budget, returned when the
	// request is done.
	chunkReserved int64

	clientCtx context.Context // before Sessions.Begin, to tell a client hang-up from a termination
	// sessionCtx is what Sessions.Begin returned; the Recorder finds the session's trail through it.
	sessionCtx context.Context
	active     ActiveRequest
	reqTap     *tap
	respTap    *tap
	reqHeader  http.Header
	respHdr    http.Header
}

type stateKey struct{}

func stateFrom(ctx context.Context) *requestState {
	rs, _ := ctx.Value(stateKey{}).(*requestState)
	return rs
}

// serveHTTP handles one request from inside a tunnel (tun != nil) or an
// absolute-form request on the proxy port. rawHost is the Host header as
// received.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request, tun *tunnel, client netip.AddrPort, rawHost string, track *trackedConn) {
	rs := &requestState{id: s.ids.next(), start: time.Now(), client: client, method: r.Method, host: rawHost, proto: protoName(r)}
	sw := &statusWriter{ResponseWriter: w, requestID: rs.id}
	// Deferred so the request is accounted even when ReverseProxy aborts
	// the handler with http.ErrAbortHandler.
	defer func() {
		s.finishRequest(r.Context(), rs, sw)
		if rs.chunkReserved > 0 {
			s.chunked.Return(rs.chunkReserved)
		}
	}()
	if err := s.handle(sw, r, tun, rs, track); err != nil {
		var he *httpError
		if !errors.As(err, &he) {
			he = authFailure(err, levelTunnel)
		}
		rs.decision, rs.reason, rs.err = he.decision, he.logReason(), he.err
		if !sw.wroteHeader {
			writeError(sw, he, rs.id)
		}
		if he.code == statusClientClosed {
			rs.status = statusClientClosed
		}
	}
}

func (s *Server) handle(w *statusWriter, r *http.Request, tun *tunnel, rs *requestState, track *trackedConn) error {
	level := levelTunnel
	if tun == nil {
		level = levelProxy
	}
	scheme, err := requestTarget(r, tun, rs.host)
	if err != nil {
		return err
	}
	rs.scheme = scheme
	raw, err := requestTargetPath(r.RequestURI)
	if err != nil {
		return badRequest("invalid request target", err)
	}
	if rs.path, err = s.normalizePath()(raw); err != nil {
		return badRequest("path refused", err)
	}
	unescaped, err := url.PathUnescape(rs.path)
	if err != nil {
		return badRequest("path refused", err)
	}
	rs.outURL = &url.URL{Scheme: scheme, Host: rs.host, Path: unescaped, RawPath: rs.path, RawQuery: r.URL.RawQuery}
	if rs.outURL.EscapedPath() != rs.path {
		// The wire path must be exactly the path the policy matched.
		return badRequest("path refused", fmt.Errorf("path %q does not round-trip", rs.path))
	}
	if rs.websocket, err = checkUpgrade(r); err != nil {
		return err
	}
	if queryOverridesMethod(r.URL.RawQuery) {
		return badRequest("method override in the query refused", nil)
	}
	secret, credID, err := requestCredentials(r, tun)
	if err != nil {
		return authFailure(fmt.Errorf("credentials: %w: %w", ErrUnauthenticated, err), level)
	}
	g, err := s.authorize(r.Context(), &AuthRequest{Client: rs.client, Secret: secret, CredentialID: credID,
		Scheme: scheme, Host: rs.host, Method: r.Method, Path: rs.path, Tunnel: tun != nil, ProxyTLS: proxyTLSFrom(r.Context()),
		WebSocket: rs.websocket})
	if err != nil {
		if denied := (*DeniedError)(nil); errors.As(err, &denied) && denied.Grant != nil {
			s.beginDenied(r, rs, denied.Grant)
		}
		return authFailure(err, level)
	}
	if g == nil || g.Target == nil {
		return authFailure(errors.New("authorizer returned no target"), level)
	}
	rs.grant = g
	if g.Conn != nil && g.Conn.UpstreamPlain && rs.outURL.Scheme == "https" {
		// transport_security client-only: TLS ends at the proxy; the target is spoken to in plain HTTP on the
		// port the client asked for.
		u := *rs.outURL
		u.Scheme = "http"
		if tun != nil {
			u.Host = tun.authority // keep the port the client tunnelled to, not http's default
		}
		rs.outURL = &u
	}
	if secret != "" && !g.Unauthenticated {
		track.authenticated() // a grant for a presented secret: the secret was valid
	}
	if !g.Unauthenticated {
		rs.scrub = s.scrubbers.scrubberFor(g.Target.Credential)
		w.scrub = rs.scrub
	}
	if g.Target.AuditEnabled {
		if err := s.recorderReady(); err != nil {
			return recordingUnavailable(err)
		}
	}
	ctx := r.Context()
	rs.clientCtx = ctx
	// An HTTP/2 stream the client reset while it was being authorized (rapid reset) opens no session and
	// reaches no target; the same holds for an HTTP/1 client that hung up.
	if err := ctx.Err(); err != nil {
		return clientClosed(err)
	}
	if s.Sessions != nil {
		sctx, active, err := s.Sessions.Begin(ctx, g, rs.client)
		if err != nil {
			return authFailure(err, level)
		}
		ctx, rs.active, rs.sessionCtx = sctx, active, sctx
	}
	if len(r.TransferEncoding) > 0 {
		if err := s.bufferChunked(r, rs); err != nil {
			return err
		}
	}
	if g.Target.AuditEnabled {
		rs.reqHeader = r.Header.Clone()
	}
	if r.Body != nil && r.Body != http.NoBody && scansForOverride(r) {
		r.Body = newOverrideScanner(r.Body, &rs.overrideHit)
	}
	if r.Body != nil && r.Body != http.NoBody {
		rs.reqTap = newTap(r.Body, s.captureLimit(rs))
		r.Body = rs.reqTap
	}
	if g.Target.AuditEnabled && rs.websocket {
		w.ws = newWSCapture(s.captureLimit(rs))
	}
	rs.decision = decisionAllow
	if err := ctx.Err(); err != nil {
		return clientClosed(err) // reset while the body was read or the session opened
	}
	s.reverseProxy().ServeHTTP(w, r.WithContext(context.WithValue(ctx, stateKey{}, rs)))
	return nil
}

// clientClosed is the outcome of a request whose client went away (or reset the stream) before it was forwarded.
func clientClosed(err error) *httpError {
	return &httpError{code: statusClientClosed, errCode: "CLIENT_CLOSED", msg: "client closed the request",
		decision: decisionClientClosed, err: err}
}

// beginDenied accounts a request the policy refused to the API session of its credential, so that the refusal,
// with its precise reason, is in the trail of an audited target next to the exchanges that were allowed. Nothing
// is forwarded; when no session can be had (cool-down, recording down) the refusal is only logged.
func (s *Server) beginDenied(r *http.Request, rs *requestState, g *Grant) {
	rs.grant = g
	if g.Target == nil || !g.Target.AuditEnabled || s.Sessions == nil || s.recorderReady() != nil {
		return
	}
	sctx, active, err := s.Sessions.Begin(r.Context(), g, rs.client)
	if err != nil {
		return
	}
	rs.sessionCtx, rs.active, rs.recordDenied = sctx, active, true
	rs.reqHeader = r.Header.Clone()
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

// requestTarget checks that the request is for the authority the client may
// talk to and returns its scheme.
func requestTarget(r *http.Request, tun *tunnel, rawHost string) (string, error) {
	if r.Method == http.MethodConnect {
		return "", badRequest("CONNECT inside a tunnel", nil)
	}
	if hs := r.Header.Values("Host"); len(hs) > 1 || len(hs) == 1 && hs[0] != rawHost {
		return "", badRequest("conflicting Host headers", nil)
	}
	if rawHost == "" {
		return "", badRequest("missing Host header", nil)
	}
	if r.URL.User != nil {
		// Deprecated by RFC 9110 and a classic way to disguise a host.
		return "", badRequest("userinfo in request target", nil)
	}
	if r.URL.Host != "" || r.URL.Scheme != "" {
		u, uerr := canonicalAuthority(r.URL.Host, r.URL.Scheme)
		h, herr := canonicalAuthority(rawHost, r.URL.Scheme)
		if uerr != nil || herr != nil || u != h {
			return "", badRequest("absolute URI authority disagrees with Host", errors.Join(uerr, herr))
		}
	}
	if tun != nil {
		if r.URL.Scheme != "" && r.URL.Scheme != tun.scheme {
			return "", badRequest("absolute URI scheme disagrees with the tunnel", nil)
		}
		h, err := canonicalAuthority(rawHost, tun.scheme)
		if err != nil || h != tun.authority {
			return "", badRequest("Host disagrees with CONNECT authority", err)
		}
		return tun.scheme, nil
	}
	switch r.URL.Scheme {
	case "http":
		return "http", nil
	case "":
		return "", badRequest("this is an HTTP proxy: configure it as your client's proxy (for example curl --proxy) instead of sending requests to it directly", nil)
	default:
		return "", badRequest("use CONNECT for "+r.URL.Scheme+" targets", nil)
	}
}

// requestCredentials finds the proxy secret: the client's own
// "Authorization: Bearer" slot first, then Proxy-Authorization on an
// absolute-form request, then the credential of the tunnel's CONNECT.
func requestCredentials(r *http.Request, tun *tunnel) (secret, credentialID string, err error) {
	v, err := singleHeader(r.Header, "Authorization")
	if err != nil {
		return "", "", err
	}
	if tok, ok := cutAuthScheme(v, "Bearer"); ok {
		return tok, "", nil
	}
	if tun != nil {
		return tun.secret, tun.credentialID, nil
	}
	v, err = singleHeader(r.Header, "Proxy-Authorization")
	if err != nil || v == "" {
		return "", "", err
	}
	return parseProxyAuthorization(v)
}

func (s *Server) authorize(ctx context.Context, ar *AuthRequest) (*Grant, error) {
	if s.Authorizer == nil {
		return nil, &DeniedError{Reason: "no authorizer configured"}
	}
	g, err := s.Authorizer.Authorize(ctx, ar)
	if err != nil {
		return nil, fmt.Errorf("authorize: %w", err)
	}
	return g, nil
}

// rewrite is the ReverseProxy Rewrite hook. ReverseProxy has already removed
// hop-by-hop headers, including any named by the client's Connection header,
// so nothing the client sends can remove the credential injected here
// (CVE-2021-33197).
func (s *Server) rewrite(pr *httputil.ProxyRequest) {
	rs := stateFrom(pr.In.Context())
	u := *rs.outURL
	pr.Out.URL = &u
	pr.Out.Host = rs.host
	h := pr.Out.Header
	deleteHeaders(h, func(name string) bool {
		return name == "authorization" || name == "proxy-authorization" || name == "expect" ||
			name == "forwarded" || name == "x-real-ip" || strings.HasPrefix(name, "x-forwarded-") ||
			isMethodOverride(name) || isPathOverride(name) ||
			// CGI, WSGI, PHP and Rack turn "-" into "_" (HTTP_X_API_KEY), so X_Api_Key would reach them as the
			// very header stripped or injected here; nginx drops underscored names by default for that reason.
			strings.IndexByte(name, '_') >= 0
	})
	if rs.scrub != nil {
		// What the scrubber must read comes back uncompressed, whole and unextended: a compressed body hides the
		// secret, and a client choosing byte ranges of a reflected header could fetch it in pieces no scan finds.
		h.Set("Accept-Encoding", "identity")
		h.Del("Range")
		h.Del("If-Range")
		h.Del("Sec-Websocket-Extensions")
	}
	injectCredential(h, rs.grant.Target.Credential)
	if rs.websocket && rs.grant.Target.AuditEnabled {
		// A compressed (permessage-deflate) message cannot be read, redacted or searched; without the offer the
		// target sends plain frames, which is what a recorded session needs.
		h.Del("Sec-Websocket-Extensions")
	}
}

// protoName is the protocol a client spoke, as HAR and the trail name it.
func protoName(r *http.Request) string {
	if r.ProtoMajor == 2 {
		return "HTTP/2"
	}
	return fmt.Sprintf("HTTP/%d.%d", r.ProtoMajor, r.ProtoMinor)
}

// injectCredential sets the target's credential; a certificate is presented
// by the transport instead.
func injectCredential(h http.Header, c TargetCredential) {
	switch c.Type {
	case CredentialToken:
		h.Set("Authorization", "Bearer "+c.Token)
	case CredentialBasicAuth:
		r := http.Request{Header: h}
		r.SetBasicAuth(c.Username, c.Password)
	case CredentialHeader:
		name := strings.ToLower(c.HeaderName)
		deleteHeaders(h, func(n string) bool { return n == name })
		h.Set(c.HeaderName, c.HeaderValue)
	}
}

// deleteHeaders removes headers whose lower-cased name matches, whatever
// their spelling in the map.
func deleteHeaders(h http.Header, match func(lowerName string) bool) {
	for k := range h {
		if match(strings.ToLower(k)) {
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
	rs.respHdr = resp.Header.Clone()
	if resp.StatusCode != http.StatusSwitchingProtocols && resp.Body != nil {
		// An upgraded body is the raw backend conn and must stay one.
		rs.respTap = newTap(resp.Body, s.captureLimit(rs))
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
