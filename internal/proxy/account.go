package proxy

// One request's accounting, in the order finishRequest does it: the trail record of an audited exchange, the end
// of its API session's request, the access log line, the denial audit and the metrics. Everything a request
// costs after its answer is here.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"time"
)

const (
	levelDebug = slog.LevelDebug
	levelInfo  = slog.LevelInfo
	levelWarn  = slog.LevelWarn
	levelError = slog.LevelError
)

func attrString(k, v string) slog.Attr { return slog.String(k, v) }

func attrErr(err error) slog.Attr { return slog.String("error", err.Error()) }

// finishRequest accounts a request once its response is done: session,
// recording, metrics and the access log.
func (s *Server) finishRequest(ctx context.Context, rs *requestState, sw *statusWriter) {
	if rs.status == 0 {
		rs.status = sw.status
	}
	if rs.status == 0 {
		rs.status = 200 // the handler wrote nothing; the connection sends an empty 200
	}
	_, reqN, _ := rs.reqTap.snapshot()
	bytesIn := reqN + sw.upIn.Load()
	bytesOut := sw.written + sw.upOut.Load()
	// Record before ending the request: a session closed meanwhile seals its trail only once its last request has
	// ended, so an exchange aborted by a termination is still in the trail.
	if (rs.decision == decisionAllow || rs.recordDenied) && rs.grant != nil && rs.grant.Target != nil && rs.grant.Target.AuditEnabled {
		rctx := ctx
		if rs.sessionCtx != nil {
			rctx = rs.sessionCtx
		}
		s.record(rctx, rs, sw)
	}
	if rs.active != nil {
		rs.active.End(bytesIn, bytesOut, rs.status)
	}
	s.logAccess(ctx, rs, bytesIn, bytesOut)
}

// logAccess writes the access log line and the request metrics. Nothing
// secret goes in: no header values, no query string.
func (s *Server) logAccess(ctx context.Context, rs *requestState, bytesIn, bytesOut int64) {
	d := s.now().Sub(rs.start)
	target, named := "", false
	if g := rs.grant; g != nil && g.Target != nil {
		target = g.Target.Name
	}
	if tn, ok := s.Authorizer.(TargetNamer); ok && target == "" && rs.method == http.MethodConnect {
		target = tn.TargetFor(rs.host)
		named = target != ""
	}
	level := levelInfo
	if rs.status >= 500 {
		level = levelWarn
	}
	s.writeAccessLine(ctx, level, rs, target, named, d, bytesIn, bytesOut)
	if rs.decision == decisionDeny && s.Denied != nil {
		d := DeniedRequest{RequestID: rs.id, Time: rs.start, Client: rs.client, Method: rs.method, Host: rs.host,
			Path: rs.path, Reason: rs.reason}
		if g := rs.grant; g != nil {
			d.Session = g.Session
			if g.Target != nil {
				d.TargetID = g.Target.ID
			}
		}
		s.Denied(d)
	}
	if m := s.Metrics; m != nil {
		m.observe(target, rs.decision, statusText(rs.status), d, bytesIn, bytesOut)
	}
}

// writeAccessLine writes the "proxy request" line (TestAccessLogLine pins its fields and their order). It
// builds the record itself instead of calling Logger.LogAttrs, which also looks up its caller's program counter
// (runtime.Callers) for a source location that the handlers `gatehouse serve` configures never write; the
// attributes go into the record in one AddAttrs, so the record allocates its overflow array once.
func (s *Server) writeAccessLine(ctx context.Context, level slog.Level, rs *requestState, target string, named bool,
	d time.Duration, bytesIn, bytesOut int64) {
	h := s.logger().Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	var a [19]slog.Attr
	n := copy(a[:], []slog.Attr{
		slog.String("request_id", rs.id),
		slog.String("client", rs.clientString()),
		slog.String("method", rs.method),
		slog.String("scheme", rs.scheme),
		slog.String("host", rs.host),
		slog.String("path", rs.path),
		slog.Int("status", rs.status),
		slog.String("decision", rs.decision),
	})
	if g := rs.grant; g != nil {
		n += copy(a[n:], []slog.Attr{
			slog.String("user", g.Session.UserName),
			slog.String("user_id", g.Session.UserID),
			slog.String("credential", g.Session.CredentialName),
			slog.String("target", g.targetName()),
			slog.Bool("unauthenticated", g.Unauthenticated),
		})
	}
	if named {
		a[n] = slog.String("target", target)
		n++
	}
	if rs.reason != "" {
		a[n] = slog.String("reason", rs.reason)
		n++
	}
	if rs.upstream != "" {
		a[n] = slog.String("upstream_error", rs.upstream)
		n++
	}
	if rs.err != nil {
		a[n] = attrErr(rs.err)
		n++
	}
	n += copy(a[n:], []slog.Attr{slog.Duration("duration", d), slog.Int64("bytes_in", bytesIn), slog.Int64("bytes_out", bytesOut)})
	r := slog.NewRecord(time.Now(), level, "proxy request", 0)
	r.AddAttrs(a[:n]...)
	_ = h.Handle(ctx, r)
}

func (g *Grant) targetName() string {
	if g.Target == nil {
		return ""
	}
	return g.Target.Name
}

// statusText is the metrics label of a status code; the common ones are made once.
func statusText(code int) string {
	switch code {
	case http.StatusOK:
		return "200"
	case http.StatusNoContent:
		return "204"
	case http.StatusNotModified:
		return "304"
	case http.StatusForbidden:
		return "403"
	case http.StatusNotFound:
		return "404"
	}
	return strconv.Itoa(code)
}

// detachedCtx is context.WithoutCancel's context without its two allocations (the context, and the copy of it
// that each Value call boxes): the values of parent, none of its cancellation. The trail record is written
// whatever happened to the request.
type detachedCtx struct{ parent context.Context }

func (c *detachedCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *detachedCtx) Done() <-chan struct{}       { return nil }
func (c *detachedCtx) Err() error                  { return nil }
func (c *detachedCtx) Value(key any) any           { return c.parent.Value(key) }

func (rs *requestState) clientString() string {
	if rs.clientStr != "" {
		return rs.clientStr
	}
	return rs.client.String()
}

// logRefused accounts a request refused before it could be fully parsed or
// authorized at the proxy level.
func (s *Server) logRefused(ctx context.Context, client netip.AddrPort, e *httpError, id string) {
	rs := &requestState{id: id, start: s.now(), client: client, status: e.code, decision: e.decision, reason: e.logReason(), err: e.err}
	s.logAccess(ctx, rs, 0, 0)
}

// errNoRecorder refuses audited requests when no recorder is configured.
var errNoRecorder = errors.New("no recorder configured")

// recorderReady fails closed: audited requests are refused while no recorder
// is configured, while it reports itself unhealthy, and after a failed Record
// until it reports itself healthy again.
func (s *Server) recorderReady() error {
	if s.Recorder == nil {
		return errNoRecorder
	}
	if err := s.Recorder.Healthy(); err != nil {
		return fmt.Errorf("recorder unhealthy: %w", err)
	}
	if s.recordFailed.CompareAndSwap(true, false) {
		s.logger().Info("proxy recorder healthy again; audited requests resume")
	}
	return nil
}

// record writes the exchange of an audited, forwarded request. A failure
// cannot take back the response already sent, so it marks the recorder
// broken for the requests that follow.
func (s *Server) record(ctx context.Context, rs *requestState, sw *statusWriter) {
	reqBody, reqN, reqTrunc := rs.reqTap.snapshot()
	respBody, respN, respTrunc := rs.respTap.snapshot()
	ex := &Exchange{
		Start:                 rs.start,
		Duration:              s.now().Sub(rs.start),
		Client:                rs.client,
		Method:                rs.method,
		URL:                   rs.outURL.String(),
		Proto:                 rs.proto,
		RequestHeader:         rs.reqHeader,
		RequestBody:           reqBody,
		RequestBodyTruncated:  reqTrunc,
		RequestBytes:          reqN + sw.upIn.Load(),
		Status:                rs.status,
		ResponseHeader:        rs.respHdr,
		ResponseBody:          respBody,
		ResponseBodyTruncated: respTrunc,
		ResponseBytes:         max(respN, sw.written) + sw.upOut.Load(),
	}
	ex.ID, ex.Decision = rs.id, "allowed"
	if !rs.answered.IsZero() {
		ex.Wait = rs.answered.Sub(rs.start)
	}
	switch {
	case rs.decision == decisionDeny:
		ex.Decision = "denied: " + rs.reason
	case rs.err != nil:
		ex.Error = rs.reason
	}
	if sw.status == http.StatusSwitchingProtocols {
		ex.WebSocket = rs.websocket
		ex.UpgradeBytesIn, ex.UpgradeBytesOut = sw.upIn.Load(), sw.upOut.Load()
		ex.WSMessages, ex.WSMessagesDropped = sw.ws.snapshot()
	}
	if s.Recorder == nil {
		return
	}
	rs.detached = detachedCtx{parent: ctx}
	if err := s.Recorder.Record(&rs.detached, rs.grant, ex); err != nil {
		s.recordFailed.Store(true)
		s.logger().LogAttrs(ctx, levelError, "proxy recording failed; refusing audited requests until the recorder is healthy",
			attrString("target", rs.grant.Target.Name), attrErr(err))
	}
}
