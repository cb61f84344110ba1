package server

import (
	"bytes"
	"cmp"
	"log/slog"
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/requestid"

	"github.com/gatehouse-dev/gatehouse/internal/serviceapi"
)

// apiHandler is the API listener's handler: the routes of both dialects, and for requests that match none of
// them an error in the service API's JSON shape instead of ServeMux's plain text. (The configuration API routes
// all of /api and /api/ itself, in its own shape.)
type apiHandler struct {
	mux     *http.ServeMux
	metrics *apiMetrics  // nil counts nothing
	log     *slog.Logger // the access log; nil writes none
}

func (h *apiHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := requestid.FromHeader(r.Header.Get(requestid.Header))
	r = r.WithContext(requestid.With(r.Context(), id))
	w.Header().Set(requestid.Header, id)
	sw := &statusWriter{ResponseWriter: w}
	_, pattern := h.mux.Handler(r)
	if pattern == "" {
		h.unrouted(sw, r)
	} else {
		h.mux.ServeHTTP(sw, r)
	}
	status, d := cmp.Or(sw.status, http.StatusOK), time.Since(start)
	if h.metrics != nil {
		h.metrics.observe(r, pattern, status, d)
	}
	if h.log != nil {
		// No query string: it may carry a filter with personal data; no headers: they carry tokens.
		h.log.LogAttrs(r.Context(), slog.LevelInfo, "api request", slog.String("request_id", id), slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.String("route", pattern), slog.Int("status", status),
			slog.String("client", r.RemoteAddr), slog.Duration("duration", d))
	}
}

// unrouted lets the mux decide what a request without a route gets (404, 405 with Allow, or a redirect to the
// clean path) and rewrites the two errors in the dialect's shape.
func (h *apiHandler) unrouted(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{header: http.Header{}}
	handler, _ := h.mux.Handler(r)
	handler.ServeHTTP(rec, r)
	if rec.status == http.StatusNotFound || rec.status == http.StatusMethodNotAllowed {
		serviceapi.WriteRouteError(w, r, rec.status, rec.header.Get("Allow"))
		return
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.status)
	w.Write(rec.body.Bytes())
}

// recorder keeps what the mux's fallback handlers write; they write little.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
