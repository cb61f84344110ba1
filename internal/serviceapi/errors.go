package serviceapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/requestid"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Error is a failure with what the client is told (Status, Code, Message, Property) kept apart from the cause
// (Err), which is only logged.
type Error struct {
	Status   int
	Code     string
	Message  string
	Property string
	Details  []errorDetail
	Err      error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// errorDetail is one item of an error's details, in PrivX's shape (a list of these is what the PrivX SDK decodes):
// an invalid field, or a permission the caller lacks (MISSING_PERMISSION, NOT_HELD) named in property.
type errorDetail struct {
	Code     string `json:"error_code"`
	Message  string `json:"error_message,omitempty"`
	Property string `json:"property,omitempty"`
}

// errorBody is the service API's error shape.
type errorBody struct {
	ErrorCode    string        `json:"error_code"`
	ErrorMessage string        `json:"error_message"`
	Property     string        `json:"property,omitempty"`
	Details      []errorDetail `json:"details,omitempty"`
	// RequestID is the id of the request (also in the X-Request-Id header and the access log), for support.
	RequestID string `json:"request_id,omitempty"`
}

func badRequest(property, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "BAD_REQUEST", Message: msg, Property: property}
}

func notFound(what string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "NOT_FOUND", Message: what + " not found"}
}

var errUnauthenticated = &Error{Status: http.StatusUnauthorized, Code: "UNAUTHENTICATED", Message: "missing or invalid access token"}

// permissionDenied refuses a principal that lacks perm, naming it so that an operator knows which role to grant.
func permissionDenied(perm string) *Error {
	return &Error{Status: http.StatusForbidden, Code: "FORBIDDEN", Message: "permission denied: this needs the " + perm + " permission",
		Details: []errorDetail{{Code: "MISSING_PERMISSION", Message: "this needs the " + perm + " permission", Property: perm}}}
}

// WriteRouteError answers a request that matches no route (404) or none for its method (405, with allow as the
// Allow header) in the service API's error shape, so clients parse every answer of the API the same way.
func WriteRouteError(w http.ResponseWriter, r *http.Request, status int, allow string) {
	e := errorBody{ErrorCode: "NOT_FOUND", ErrorMessage: "no such endpoint: " + r.URL.Path}
	if why := unsupportedFeature(r, status == http.StatusMethodNotAllowed); why != "" {
		// A PrivX SDK call of a feature Gatehouse lacks: say so, whatever the method.
		status = http.StatusNotFound
		e = errorBody{ErrorCode: "NOT_SUPPORTED", ErrorMessage: r.URL.Path + " is not supported by Gatehouse: " + why}
	} else if status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", allow)
		e = errorBody{ErrorCode: "METHOD_NOT_ALLOWED", ErrorMessage: "method " + r.Method + " is not allowed on " + r.URL.Path + "; allowed: " + allow}
	}
	e.RequestID = requestid.From(r.Context())
	writeJSON(w, status, e)
}

// rateLimited is the answer to a login attempt from a source or for a user with too many recent failures.
type rateLimited struct{ retryAfter time.Duration }

func (r *rateLimited) Error() string { return "too many failed attempts" }

// toError maps any error a handler returns to the Error the client sees: the one place where store and
// validation errors get their status codes.
func toError(err error) *Error {
	var e *Error
	var fe *model.FieldError
	var pe policy.FieldError
	var pes policy.FieldErrors
	var bq *store.BadQueryError
	if ae := approvalError(err); ae != nil {
		return ae
	}
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &fe):
		code := "BAD_REQUEST"
		if fe.Code != "" {
			code = fe.Code
		}
		return &Error{Status: 400, Code: code, Message: fe.Error(), Property: fe.Field, Err: err}
	case errors.As(err, &pe):
		return &Error{Status: 400, Code: "BAD_REQUEST", Message: pe.Error(), Property: pe.Field, Err: err}
	case errors.As(err, &pes) && len(pes) > 0:
		details := make([]errorDetail, 0, len(pes))
		for _, fe := range pes {
			details = append(details, errorDetail{Code: "BAD_REQUEST", Message: fe.Msg, Property: fe.Field})
		}
		return &Error{Status: 400, Code: "BAD_REQUEST", Message: pes.Error(), Property: pes[0].Field, Details: details, Err: err}
	case errors.Is(err, store.ErrNotExist):
		return &Error{Status: 404, Code: "NOT_FOUND", Message: "object not found", Err: err}
	case errors.Is(err, store.ErrConflict):
		return &Error{Status: 409, Code: "CONFLICT", Message: "an object with the same name already exists", Property: "name", Err: err}
	case errors.Is(err, store.ErrReference):
		return &Error{Status: 400, Code: "BAD_REFERENCE", Message: "a referenced object does not exist", Err: err}
	case errors.As(err, &bq):
		// The store names the parameter as the API does, so a bad sortkey is answered like any other bad property.
		return &Error{Status: 400, Code: "BAD_QUERY", Message: "bad list parameter: " + bq.Msg, Property: bq.Param, Err: err}
	}
	return &Error{Status: 500, Code: "INTERNAL_ERROR", Message: "internal error", Err: err}
}

// writeError sends err in the service API's error shape and logs causes worth logging.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var rl *rateLimited
	if errors.As(err, &rl) {
		w.Header().Set("Retry-After", strconv.Itoa(int(rl.retryAfter.Seconds())))
		writeJSON(w, http.StatusTooManyRequests, errorBody{ErrorCode: "TOO_MANY_REQUESTS", ErrorMessage: "too many failed attempts; retry later",
			RequestID: requestid.From(r.Context())})
		return
	}
	e := toError(err)
	if e.Status >= 500 {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "request_id", requestid.From(r.Context()), "err", err)
	} else if e.Err != nil {
		log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "status", e.Status, "request_id", requestid.From(r.Context()), "err", e.Err)
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
	}
	writeJSON(w, e.Status, errorBody{ErrorCode: e.Code, ErrorMessage: e.Message, Property: e.Property, Details: e.Details,
		RequestID: requestid.From(r.Context())})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}
