package configapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/requestid"
)

// Error codes of the configuration API. The first six are the reference's; the rest follow its style.
const (
	CodeInvalidQuery          = "InvalidQuery"
	CodeInvalidAuthentication = "InvalidAuthenticationRequest"
	CodeUnauthenticated       = "Unauthenticated"
	CodeAuthenticationFailure = "AuthenticationFailure"
	CodeUnauthorized          = "Unauthorized"
	CodeNotFound              = "NotFound"
	CodeUnsupportedMethod     = "UnsupportedMethod"
	CodeSyntacticError        = "SyntacticError"
	CodeSemanticError         = "SemanticError"
	CodeTransactionLocked     = "TransactionLocked"
	CodeNoTransaction         = "NoOpenTransaction"
	CodeTooManyRequests       = "TooManyRequests"
	CodeInternalError         = "InternalError"
	// CodeNotSupported refuses a value Gatehouse would store without acting on it.
	CodeNotSupported = "NOT_SUPPORTED"
	// CodeMFARequired and CodeMFAEnrollmentRequired answer a right password whose second factor is missing.
	CodeMFARequired           = "MfaRequired"
	CodeMFAEnrollmentRequired = "MfaEnrollmentRequired"
)

// Error is a failure with what the client is told kept apart from the cause (Err), which is only logged.
type Error struct {
	Status  int
	Code    string
	Message string
	// Field is the path of the offending field inside the request body ("network.clients[0]"), if any.
	Field string
	// RetryAfter, if set, is sent as the Retry-After header.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// errorBody is the one error shape of the configuration API:
//
//	{"error":{"code":"SemanticError","message":"...","details":{"path":"/api/...","field":"body.name"}},"meta":{...}}
type errorBody struct {
	Error struct {
		Code    string       `json:"code"`
		Message string       `json:"message"`
		Details errorDetails `json:"details"`
	} `json:"error"`
	Meta map[string]string `json:"meta"`
}

type errorDetails struct {
	Path  string `json:"path"`
	Field string `json:"field,omitempty"`
	// RequestID is the id of the request (also in the X-Request-Id header and the access log), for support.
	RequestID string `json:"request_id,omitempty"`
}

func syntactic(field, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeSyntacticError, Message: msg, Field: field}
}

func semantic(field, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeSemanticError, Message: msg, Field: field}
}

func notSupported(field, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeNotSupported, Message: msg, Field: field}
}

func notFound(msg string) *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: msg}
}

func invalidQuery(param, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidQuery, Message: msg, Field: param}
}

var (
	errUnauthenticated = &Error{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: "the resource requires an authenticated session"}
	errAuthFailure     = &Error{Status: http.StatusUnauthorized, Code: CodeAuthenticationFailure, Message: "authenticating the user with the given credentials has failed"}
	errUnauthorized    = &Error{Status: http.StatusForbidden, Code: CodeUnauthorized, Message: "the user is not authorized to access this resource"}
	errNoTransaction   = &Error{Status: http.StatusConflict, Code: CodeNoTransaction, Message: "this session has no open transaction"}
)

func unsupportedMethod(method string) *Error {
	return &Error{Status: http.StatusMethodNotAllowed, Code: CodeUnsupportedMethod, Message: "method " + method + " is not supported here"}
}

// writeError sends err in the configuration API's error shape and logs causes worth logging.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: CodeInternalError, Message: "internal error", Err: err}
	}
	if e.Status >= 500 {
		log.Error("configuration api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	} else if e.Err != nil {
		log.Debug("configuration api request refused", "method", r.Method, "path", r.URL.Path, "status", e.Status, "err", e.Err)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds())))
	}
	var b errorBody
	b.Error.Code, b.Error.Message = e.Code, e.Message
	b.Error.Details = errorDetails{Path: r.URL.Path, Field: e.Field, RequestID: requestid.From(r.Context())}
	b.Meta = map[string]string{"href": r.URL.Path, "transaction": transactionPath}
	writeJSON(w, e.Status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
