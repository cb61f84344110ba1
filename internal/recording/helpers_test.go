package recording

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var testKey = bytes.Repeat([]byte("k"), 32)

// t0 is the fixed clock of the tests.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// newTestStore opens a store in a fresh directory with a clock that ticks
// one second per reading.
func newTestStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, testKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	tick := t0
	s.now = func() time.Time { tick = tick.Add(time.Second); return tick }
	return s
}

func testMeta(id string) SessionMeta {
	return SessionMeta{SessionID: id, User: "alice", Target: "k8s-prod", Credential: "sa-token", ClientAddr: "192.0.2.7:51000", Started: t0}
}

func testExchange(i int) *Exchange {
	return &Exchange{
		ID:              "req-" + string(rune('a'+i%26)),
		Started:         t0.Add(time.Duration(i) * time.Second),
		DurationMS:      12.5,
		Method:          http.MethodGet,
		URL:             "https://api.example.test/v1/pods?limit=10",
		Proto:           "HTTP/1.1",
		Status:          200,
		RequestHeaders:  http.Header{"Accept": {"application/json"}},
		ResponseHeaders: http.Header{"Content-Type": {"application/json"}},
		ResponseBody:    []byte(`{"items":[]}`),
		ResponseBytes:   12,
		Decision:        "allowed",
	}
}

// writeTrail creates a closed trail with n exchanges and returns its seal.
func writeTrail(t *testing.T, s *Store, id string, n int) Seal {
	t.Helper()
	ctx := context.Background()
	w, err := s.Create(ctx, testMeta(id), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := w.Append(ctx, testExchange(i)); err != nil {
			t.Fatal(err)
		}
	}
	seal, err := w.Close("idle timeout")
	if err != nil {
		t.Fatal(err)
	}
	return seal
}

func trailPath(dir, id string) string { return filepath.Join(dir, id+trailExt) }

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte("\n"))
}
