package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestTrailSearchAndHold runs `gatehouse trail search` and `gatehouse sessions hold` against a real server with a
// session recorded through the proxy.
func TestTrailSearchAndHold(t *testing.T) {
	h := newHarness(t)
	h.loginAdmin()
	id, send := proxiedSession(t, h)
	if code := send("/apis/apps/v1/namespaces/prod/needle-path-7"); code != 200 {
		t.Fatalf("proxied request: %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.Server.TrailIndexer().Flush(ctx); err != nil {
		t.Fatal(err)
	}

	hits := h.listJSON("trail", "search", "--method", "GET", "--path", "/apis/apps/v1/namespaces/prod", "--since", "168h")
	if len(hits) != 1 || hits[0]["connection_id"] != id || hits[0]["path"] != "/apis/apps/v1/namespaces/prod/needle-path-7" {
		t.Fatalf("search by method, path and time: %+v", hits)
	}
	// The origin answers {"path":...}: a response containing a string, whatever its case.
	if hits := h.listJSON("trail", "search", "--response-contains", "NEEDLE-PATH"); len(hits) != 1 {
		t.Errorf("search in response bodies: %+v", hits)
	}
	if hits := h.listJSON("trail", "search", "--method", "DELETE"); len(hits) != 0 {
		t.Errorf("no DELETE was sent, search found %+v", hits)
	}
	table := h.ok("", "trail", "search", "--contains", "needle-path")
	if !strings.Contains(table, id) || !strings.Contains(table, "(1 of 1 matches") {
		t.Errorf("table output:\n%s", table)
	}
	h.fails(2, []string{"--since or --from"}, "", "trail", "search", "--since", "1h", "--from", "2026-01-01T00:00:00Z")
	h.fails(1, []string{"start_time"}, "", "trail", "search", "--from", "yesterday")

	h.fails(2, []string{"--reason"}, "", "sessions", "hold", id)
	if out := h.ok("", "sessions", "hold", id, "--reason", "incident 12"); !strings.Contains(out, "legal hold") {
		t.Errorf("hold: %s", out)
	}
	show := h.ok("", "sessions", "show", id, "-o", "json")
	if !strings.Contains(show, `"legal_hold": true`) || !strings.Contains(show, "incident 12") {
		t.Errorf("session after hold:\n%s", show)
	}
	h.ok("", "sessions", "hold", id, "--release")
	if show := h.ok("", "sessions", "show", id, "-o", "json"); !strings.Contains(show, `"legal_hold": false`) {
		t.Errorf("session after release:\n%s", show)
	}
}
