package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"time"
)

// Approvals holds the requests of API sessions that must be approved before they reach their target (a connection
// policy's access_control with authorize).
type Approvals interface {
	// Admit is called for every request once its API session has begun (ctx is the session's) and before it is
	// forwarded. It returns nil to forward, or an error to refuse: an *ApprovalError while the session is pending
	// or after it was rejected or expired. It may block while the session waits for a decision and must return
	// when ctx is done.
	Admit(ctx context.Context, g *Grant, client netip.AddrPort, requestLine string) error
}

// ApprovalError refuses a request of a session that has not been approved. Unlike a policy denial it tells the
// client why, with the approval request's id, which the client gives to an authorizer.
type ApprovalError struct {
	// RequestID is the approval request's id.
	RequestID string
	// State is "pending", "rejected" or "expired".
	State string
	// RetryAfter, if positive, is sent as Retry-After while the request is pending.
	RetryAfter time.Duration
}

func (e *ApprovalError) Error() string {
	return fmt.Sprintf("proxy: session approval request %s is %s", e.RequestID, e.State)
}

// approve asks Approvals about the request (nil Approvals holds nothing) and maps a refusal to the answer.
func (s *Server) approve(ctx context.Context, r *http.Request, rs *requestState, level authLevel) error {
	if s.Approvals == nil {
		return nil
	}
	// The query stays out: it may carry a token, and the line is shown to authorizers and sent in notifications.
	line := r.Method + " " + rs.outURL.Scheme + "://" + rs.host + rs.path
	err := s.Approvals.Admit(ctx, rs.grant, rs.client, line)
	if err == nil {
		return nil // before ae, which errors.As moves to the heap: an admitted request allocates none
	}
	var ae *ApprovalError
	switch {
	case errors.As(err, &ae):
		e := &httpError{code: http.StatusForbidden, decision: decisionDeny, err: err, approvalID: ae.RequestID,
			reason: "session approval " + ae.State + " (approval request " + ae.RequestID + ")"}
		switch ae.State {
		case "pending":
			e.errCode = "APPROVAL_PENDING"
			e.msg = "this API session waits for an authorizer's approval (approval request " + ae.RequestID + "); retry once it is approved"
			if ae.RetryAfter > 0 {
				e.retryAfter = strconv.Itoa(int(ae.RetryAfter.Seconds() + 0.999))
			}
		case "rejected":
			e.errCode = "APPROVAL_REJECTED"
			e.msg = "an authorizer rejected this API session (approval request " + ae.RequestID + ")"
		default:
			e.errCode = "APPROVAL_EXPIRED"
			e.msg = "this API session was not approved in time (approval request " + ae.RequestID + ")"
		}
		return e
	case rs.clientCtx != nil && rs.clientCtx.Err() != nil:
		return clientClosed(err)
	case ctx.Err() != nil:
		// The session ended (terminated, say) while its request waited.
		return authFailure(&DeniedError{Reason: "session closed while waiting for approval: " + context.Cause(ctx).Error(), Grant: rs.grant}, level)
	default:
		return authFailure(err, level)
	}
}
