package proxy

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"
)

// ErrUnauthenticated is returned by an Authorizer when no valid credential
// was presented. The client gets 407 at the proxy level (CONNECT,
// absolute-form requests) and 401 inside a tunnel.
var ErrUnauthenticated = errors.New("proxy: unauthenticated")

// ErrRateLimited is returned by an Authorizer when the client exceeded its
// rate limit; the client gets 429.
var ErrRateLimited = errors.New("proxy: rate limited")

// ErrRecordingUnavailable is returned by Sessions (or the proxy's own check) when an audited request cannot be
// recorded; the client gets 503, as for any other outage on Gatehouse's side, not 403 as for a policy decision.
var ErrRecordingUnavailable = errors.New("proxy: recording unavailable")

// ErrNoTarget is returned by an Authorizer for a CONNECT to an authority that no enabled target serves; the
// client gets the neutral 403 before any certificate is minted for the tunnel.
var ErrNoTarget = errors.New("proxy: no API target serves this host and port")

// DeniedError is returned by an Authorizer or Sessions to refuse a request. The client gets one neutral 403 for
// every policy denial, with the request id; Reason, the precise cause, goes to the access log, the trail and the
// audit event only, so a denial does not map the deny list for the client.
type DeniedError struct {
	Reason string
	// Grant, when set, says who was refused, for the log and the audit event. With a Target, the authorizer knew
	// the credential to be good and the request itself was refused (an endpoint rule, a channel policy): the
	// denial is then also recorded in the trail of the credential's API session when the target is audited.
	// Without one (a disabled or expired credential, say) only Session is meaningful.
	Grant *Grant
	// RetryAfter, if positive, is sent as Retry-After: when the refusal lifts (a session cool-down).
	RetryAfter time.Duration
}

func (e *DeniedError) Error() string { return "proxy: denied: " + e.Reason }

// Decisions recorded in logs and metrics.
const (
	decisionAllow           = "allow"
	decisionDeny            = "deny"
	decisionUnauthenticated = "unauthenticated"
	decisionBadRequest      = "bad_request"
	decisionRateLimited     = "rate_limited"
	decisionError           = "error"
	decisionClientClosed    = "client_closed"
)

// httpError keeps what the client is told (code, errCode, msg) apart from the
// cause, which is only logged.
type httpError struct {
	code     int
	errCode  string
	msg      string
	decision string
	err      error
	// reason is the precise cause for the log, the trail and the audit event when msg is kept neutral; "" means
	// msg says it all.
	reason string
	// retryAfter, if set, is sent as Retry-After (seconds).
	retryAfter string
	// approvalID, if set, is the approval request the client waits for (approval_request_id).
	approvalID string
}

// logReason is what the log, trail and audit event say about the failure.
func (e *httpError) logReason() string {
	if e.reason != "" {
		return e.reason
	}
	return e.msg
}

func (e *httpError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *httpError) Unwrap() error { return e.err }

func badRequest(msg string, err error) *httpError {
	return &httpError{code: http.StatusBadRequest, errCode: "BAD_REQUEST", msg: msg, decision: decisionBadRequest, err: err}
}

// authLevel says where an authentication failure happened, which decides
// between 407 (the proxy asks for credentials) and 401 (inside a tunnel the
// client talks to the target, so the target's status is used).
type authLevel int

const (
	levelProxy authLevel = iota
	levelTunnel
)

// authFailure maps an Authorizer or Sessions error to the client response.
func authFailure(err error, level authLevel) *httpError {
	var denied *DeniedError
	switch {
	case errors.Is(err, ErrUnauthenticated):
		code := http.StatusProxyAuthRequired
		if level == levelTunnel {
			code = http.StatusUnauthorized
		}
		return &httpError{code: code, errCode: "UNAUTHENTICATED", msg: "valid proxy credential required", decision: decisionUnauthenticated, err: err}
	case errors.Is(err, ErrNoTarget):
		// Neutral like every policy denial: telling which hosts no target serves would map the configured ones.
		return &httpError{code: http.StatusForbidden, errCode: "FORBIDDEN", msg: neutralDenial, decision: decisionDeny,
			err: err, reason: "no API target serves this host and port"}
	case errors.As(err, &denied):
		e := &httpError{code: http.StatusForbidden, errCode: "FORBIDDEN", msg: neutralDenial, decision: decisionDeny,
			err: err, reason: denied.Reason}
		if denied.RetryAfter > 0 {
			e.retryAfter = strconv.Itoa(int(math.Ceil(denied.RetryAfter.Seconds())))
		}
		return e
	case errors.Is(err, ErrRecordingUnavailable):
		return recordingUnavailable(err)
	case errors.Is(err, ErrRateLimited):
		return &httpError{code: http.StatusTooManyRequests, errCode: "RATE_LIMITED", msg: "too many requests", decision: decisionRateLimited, err: err}
	default:
		return &httpError{code: http.StatusInternalServerError, errCode: "INTERNAL_ERROR", msg: "internal error", decision: decisionError, err: err}
	}
}

// neutralDenial is the one message of every policy denial.
const neutralDenial = "request refused by policy; give the request id to your administrator for the reason"

// recordingUnavailable refuses an audited request that could not be recorded (fail closed).
func recordingUnavailable(err error) *httpError {
	return &httpError{code: http.StatusServiceUnavailable, errCode: "RECORDING_UNAVAILABLE",
		msg: "session recording unavailable", decision: decisionError, err: err}
}

// shuttingDown refuses a request that arrives while the proxy drains. Another node, or this one restarted, takes
// it a few seconds later.
func shuttingDown() *httpError {
	return &httpError{code: http.StatusServiceUnavailable, errCode: "SHUTTING_DOWN", msg: "gatehouse is shutting down; retry shortly",
		decision: decisionError, retryAfter: "5"}
}

// writeError sends e as the JSON body used for every error the proxy itself
// answers, in the service API's shape, with the request id.
func writeError(w http.ResponseWriter, e *httpError, requestID string) {
	h := w.Header()
	for k := range h {
		delete(h, k)
	}
	switch e.code {
	case http.StatusProxyAuthRequired:
		h.Set("Proxy-Authenticate", `Basic realm="gatehouse"`)
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
	}
	if e.retryAfter != "" {
		h.Set("Retry-After", e.retryAfter)
	}
	body, _ := json.Marshal(struct {
		ErrorCode    string `json:"error_code"`
		ErrorMessage string `json:"error_message"`
		RequestID    string `json:"request_id,omitempty"`
		ApprovalID   string `json:"approval_request_id,omitempty"`
	}{e.errCode, e.msg, requestID, e.approvalID})
	body = append(body, '\n')
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if requestID != "" {
		h.Set("X-Request-Id", requestID)
		h.Set(RequestIDHeader, requestID)
	}
	if e.code == statusClientClosed {
		return // nobody is listening; the status is for the log only
	}
	w.WriteHeader(e.code)
	_, _ = w.Write(body)
}

// statusClientClosed is nginx's and Caddy's status for a client that went
// away before the response; it is logged, never sent.
const statusClientClosed = 499
