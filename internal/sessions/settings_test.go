package sessions

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/proxy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TestSettingsRecordingLimitAndRedaction: the service API settings recording_body_limit and
// recording_redact_headers shape what a trail keeps: bodies cut at the limit (and marked truncated), the named
// headers redacted on top of the built-in credential headers.
func TestSettingsRecordingLimitAndRedaction(t *testing.T) {
	m, st, rec, _ := newManager(t)
	set := model.DefaultSettings()
	set.RecordingBodyLimit, set.RecordingRedactHeaders = 8, []string{"X-Team-Secret"}
	m.Settings = func() model.Settings { return set }
	ctx := context.Background()
	g := grant(true)
	rctx, r, err := m.Begin(ctx, g, client)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"X-Team-Secret": {"team-secret-value"}, "X-Plain": {"plain-value"}}
	ex := &proxy.Exchange{Start: time.Now(), Method: "POST", URL: "https://api.example.com/x", RequestHeader: h,
		RequestBody: []byte("request-body-0123456789"), RequestBytes: 23,
		Status: 200, ResponseBody: []byte("response-body-0123456789"), ResponseBytes: 24}
	if err := m.Record(rctx, g, ex); err != nil {
		t.Fatal(err)
	}
	r.End(23, 24, 200)
	id := sessionOf(t, rctx).row.ID
	m.CloseAll(ctx, "test over")
	waitStatus(t, st, id, store.SessionDisconnected, "test over")
	page, err := rec.Read(ctx, id, 0, 0)
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("trail: %d exchanges, %v", len(page.Items), err)
	}
	got := page.Items[0]
	if string(got.RequestBody) != "request-" || !got.RequestBodyTruncated || string(got.ResponseBody) != "response" || !got.ResponseBodyTruncated {
		t.Errorf("bodies with an 8-byte limit: %q (truncated %v), %q (truncated %v)", got.RequestBody, got.RequestBodyTruncated, got.ResponseBody, got.ResponseBodyTruncated)
	}
	if v := got.RequestHeaders.Get("X-Team-Secret"); strings.Contains(v, "team-secret-value") || v == "" {
		t.Errorf("X-Team-Secret in the trail: %q, want it redacted", v)
	}
	if v := got.RequestHeaders.Get("X-Plain"); v != "plain-value" {
		t.Errorf("X-Plain in the trail: %q, want it kept", v)
	}
}
