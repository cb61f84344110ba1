package server

import (
	"bytes"
	"cmp"
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/serviceapi"
)

// apiHandler is the API listener's handler: the routes of both dialects, and for requests that match none of
// them an error in the service API's JSON shape instead of ServeMux's plain text. (The configuration API routes
// all of /api and /api/ itself, in its own shape.)
type apiHandler struct {
	mux     *http.ServeMux
	metrics *apiMetrics // nil counts nothing
}

func (h *apiHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	_, pattern := h.mux.Handler(r)
	if pattern == "" {
		h.unrouted(sw, r)
	} else {
		h.mux.ServeHTTP(sw, r)
	}
	if h.metrics != nil {
		h.metrics.observe(r, pattern, cmp.Or(sw.status, http.StatusOK), time.Since(start))
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
