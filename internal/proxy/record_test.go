package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type fakeRecorder struct {
	mu        sync.Mutex
	exchanges []*Exchange
	failNext  bool
	broken    error
}

func (r *fakeRecorder) Record(_ context.Context, _ *Grant, ex *Exchange) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failNext {
		r.failNext = false
		r.broken = errors.New("disk full")
		return r.broken
	}
	r.exchanges = append(r.exchanges, ex)
	return nil
}

func (r *fakeRecorder) Healthy() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.broken
}

var _ Recorder = (*fakeRecorder)(nil)

// first waits (up to 5 s) for the first recorded exchange: an upgraded connection is recorded when it ends.
func (r *fakeRecorder) first(t *testing.T) *Exchange {
	t.Helper()
	for range 500 {
		r.mu.Lock()
		n := len(r.exchanges)
		r.mu.Unlock()
		if n > 0 {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.exchanges[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("nothing was recorded")
	return nil
}

func TestRecording(t *testing.T) {
	rec := &fakeRecorder{}
	st := newSetup(t, true, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Origin", "yes")
		io.WriteString(w, "0123456789-response")
	}, func(s *Server, tg *Target) {
		s.Recorder = rec
		s.BodyLimit = 10
		tg.AuditEnabled = true
	})
	client := proxyClient(t, st.addr, st.ca, false)
	post := func(path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, st.origin.URL+path+"?a=1", strings.NewReader("short"))
		resp, err := client.Do(bearer(req))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := post("/rec")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "0123456789-response" {
		t.Fatalf("status %d body %q: the tap must not alter the stream", resp.StatusCode, body)
	}
	rec.mu.Lock()
	if len(rec.exchanges) != 1 {
		rec.mu.Unlock()
		t.Fatalf("recorded %d exchanges, want 1", len(rec.exchanges))
	}
	ex := rec.exchanges[0]
	rec.mu.Unlock()
	type view struct {
		Method, URL                       string
		Status                            int
		ReqBody, RespBody                 string
		ReqTrunc, RespTrunc               bool
		ReqBytes, RespBytes               int64
		ClientAuthorization, OriginHeader string
	}
	got := view{ex.Method, ex.URL, ex.Status, string(ex.RequestBody), string(ex.ResponseBody),
		ex.RequestBodyTruncated, ex.ResponseBodyTruncated, ex.RequestBytes, ex.ResponseBytes,
		ex.RequestHeader.Get("Authorization"), ex.ResponseHeader.Get("X-Origin")}
	want := view{"POST", st.origin.URL + "/rec?a=1", 200, "short", "0123456789", false, true, 5, 19,
		"Bearer " + userSecret, "yes"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("exchange (-want +got):\n%s", diff)
	}

	// A failed Record makes further audited requests fail closed.
	rec.mu.Lock()
	rec.failNext = true
	rec.mu.Unlock()
	post("/rec").Body.Close()
	hits := st.origin.hits.Load()
	resp = post("/rec")
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status after recorder failure %d, want 503", resp.StatusCode)
	}
	if e := readError(t, resp.Body); e.ErrorCode != "RECORDING_UNAVAILABLE" {
		t.Errorf("error_code %q", e.ErrorCode)
	}
	if st.origin.hits.Load() != hits {
		t.Error("request reached the origin while the recorder was broken")
	}

	// Once the recorder reports itself healthy, requests flow again.
	rec.mu.Lock()
	rec.broken = nil
	rec.mu.Unlock()
	resp2 := post("/rec")
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusOK {
		t.Errorf("status after recovery %d", resp2.StatusCode)
	}
}

func TestAuditedTargetWithoutRecorderFailsClosed(t *testing.T) {
	st := newSetup(t, true, nil, func(_ *Server, tg *Target) { tg.AuditEnabled = true })
	client := proxyClient(t, st.addr, st.ca, true)
	req, _ := http.NewRequest(http.MethodGet, st.origin.URL+"/x", nil)
	resp, err := client.Do(bearer(req))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || st.origin.hits.Load() != 0 {
		t.Errorf("status %d, origin hits %d; want 503 and none", resp.StatusCode, st.origin.hits.Load())
	}
}

// TestRecordedWait: the exchange says how much of its duration passed before the target's response header came
// (the trail's wait, HAR's timings.wait), and the rest is the body's. The origin answers its header at once and
// its body 50 ms later, so the split is known without timing anything.
func TestRecordedWait(t *testing.T) {
	rec := &fakeRecorder{}
	st := newSetup(t, true, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		time.Sleep(50 * time.Millisecond)
		io.WriteString(w, "late body")
	}, func(s *Server, tg *Target) {
		s.Recorder = rec
		tg.AuditEnabled = true
	})
	client := proxyClient(t, st.addr, st.ca, false)
	req, _ := http.NewRequest(http.MethodGet, st.origin.URL+"/rec", nil)
	resp, err := client.Do(bearer(req))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	ex := rec.first(t)
	if ex.Wait <= 0 || ex.Duration-ex.Wait < 50*time.Millisecond {
		t.Fatalf("wait %v of %v: want the 50 ms of the body after the wait", ex.Wait, ex.Duration)
	}
}
