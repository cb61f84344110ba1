package proxy

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestRefusalsCarryRetryAfter pins that a refusal which lifts by itself tells the client when.
func TestRefusalsCarryRetryAfter(t *testing.T) {
	tests := []struct {
		name string
		e    *httpError
		code int
		want string
	}{
		{"cool-down", authFailure(&DeniedError{Reason: "session in cool-down", RetryAfter: 2500 * time.Millisecond}, levelProxy), http.StatusForbidden, "3"},
		{"plain denial", authFailure(&DeniedError{Reason: "no"}, levelProxy), http.StatusForbidden, ""},
		{"draining", shuttingDown(), http.StatusServiceUnavailable, "5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			writeError(rec, tt.e, "req-1")
			if rec.Code != tt.code || rec.Header().Get("Retry-After") != tt.want {
				t.Errorf("got %d Retry-After=%q, want %d %q", rec.Code, rec.Header().Get("Retry-After"), tt.code, tt.want)
			}
		})
	}
}
