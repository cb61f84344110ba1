package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"sync/atomic"
	"time"
)

// requestState follows one request from parsing to the access log. The
// ReverseProxy hooks find it in the request context.
type requestState struct {
	id    string // request id, in every answer, log line and trail record
	start time.Time
	// answered is when the target's response header arrived (zero if none did): the trail's wait.
	answered time.Time
	client   netip.AddrPort
	// clientStr is client as text when the connection made it already (r.RemoteAddr), for the access log.
	clientStr string
	method    string
	scheme    string
	host      string // authority as the client sent it
	path      string // normalized escaped path
	outURL    *url.URL
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
	// reqHeader and respHdr are the client's request header and the target's response header for the
	// recording, as received, without a copy: ReverseProxy works on a clone of the request (Rewrite must not
	// change In) and is done with the response header once ModifyResponse returns (it copies it to the
	// client's), and the recorder redacts into a copy of its own.
	reqHeader http.Header
	respHdr   http.Header

	// target, auth, writer and fwdURL are kept here rather than allocated each: what outURL points to at
	// first, the question to the Authorizer, the response writer and the forwarded request's URL (rewriteOut).
	target url.URL
	auth   AuthRequest
	writer statusWriter
	fwdURL url.URL
	// taps hold reqTap and respTap, which point here when set.
	taps [2]tap
	// interim is what relay shares with the round trip.
	interim
	// detached is the trail record's context (record).
	detached detachedCtx

	// ctx is the forwarded request's context: the session's, with this state as the value of stateKey. It
	// lives here so that it costs no allocation of its own (context.WithValue's would).
	ctx stateCtx
}

type stateKey struct{}

// stateCtx is a context carrying a requestState.
type stateCtx struct {
	context.Context
	rs *requestState
}

func (c *stateCtx) Value(key any) any {
	if key == (stateKey{}) {
		return c.rs
	}
	return c.Context.Value(key)
}

// withState returns ctx carrying rs, for the ReverseProxy hooks (stateFrom).
func (rs *requestState) withState(ctx context.Context) context.Context {
	rs.ctx = stateCtx{Context: ctx, rs: rs}
	return &rs.ctx
}

func stateFrom(ctx context.Context) *requestState {
	rs, _ := ctx.Value(stateKey{}).(*requestState)
	return rs
}

// serveHTTP handles one request from inside a tunnel (tun != nil) or an
// absolute-form request on the proxy port. rawHost is the Host header as
// received.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request, tun *tunnel, client netip.AddrPort, rawHost string, track *trackedConn) {
	rs := &requestState{id: s.ids.next(), start: time.Now(), client: client, clientStr: r.RemoteAddr, method: r.Method, host: rawHost,
		proto: protoName(r)}
	sw := &rs.writer
	sw.ResponseWriter, sw.requestID = w, rs.id
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

// handle is one request read top to bottom: admit it (or refuse it), then forward it. finishRequest
// (account.go) accounts for it afterwards, whatever happened.
func (s *Server) handle(w *statusWriter, r *http.Request, tun *tunnel, rs *requestState, track *trackedConn) error {
	ctx, err := s.admit(r, tun, rs, track)
	w.scrub = rs.scrub // even a refusal's headers are scrubbed once a credential is known
	if err != nil {
		return err
	}
	return s.forward(ctx, w, r, rs)
}

// clientClosed is the outcome of a request whose client went away (or reset the stream) before it was forwarded.
func clientClosed(err error) *httpError {
	return &httpError{code: statusClientClosed, errCode: "CLIENT_CLOSED", msg: "client closed the request",
		decision: decisionClientClosed, err: err}
}
