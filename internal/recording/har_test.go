package recording

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/wsframe"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func TestWriteHARGolden(t *testing.T) {
	creatorVersion = "v1.2.3-test"
	start := time.Date(2025, 3, 14, 9, 27, 0, 123_000_000, time.UTC)
	ex := []Exchange{
		{
			Seq: 1, ID: "r1", Started: start, DurationMS: 42.5, WaitMS: 40,
			Method: "POST", URL: "https://api.example.test/v1/pods?dryRun=All&limit=10", Proto: "HTTP/2", Status: 201,
			RequestHeaders: http.Header{
				"Authorization": {"Bearer [REDACTED]"},
				"Content-Type":  {"application/json"},
				"Cookie":        {"sid=[REDACTED]; theme=[REDACTED]"},
			},
			ResponseHeaders: http.Header{
				"Content-Type": {"application/json"},
				"Set-Cookie":   {"sid=[REDACTED]; Path=/; HttpOnly; Secure"},
			},
			RequestBody:   []byte(`{"name":"web"}`),
			RequestBytes:  14,
			ResponseBody:  []byte(`{"status":"created"}`),
			ResponseBytes: 5000, ResponseBodyTruncated: true,
			Decision: "allowed",
		},
		{
			Seq: 2, ID: "r2", Started: start.Add(time.Second), DurationMS: 3,
			Method: "GET", URL: "https://api.example.test/v1/blob", Proto: "HTTP/1.1", Status: 302,
			ResponseHeaders: http.Header{"Content-Type": {"application/octet-stream"}, "Location": {"/v1/blob/2"}},
			ResponseBody:    []byte{0xff, 0x00, 0xfe},
			ResponseBytes:   3,
			Decision:        "allowed",
		},
		{
			Seq: 3, ID: "r3", Started: start.Add(2 * time.Second),
			Method: "DELETE", URL: "https://api.example.test/v1/nodes/n1",
			Decision: "denied: no authorized endpoint", Error: "request refused by policy", Proto: "https",
		},
		{
			Seq: 4, ID: "r4", Started: start.Add(3 * time.Second), DurationMS: 1500,
			Method: "GET", URL: "wss://api.example.test/v1/watch", Proto: "HTTP/1.1", Status: 101, WebSocket: true,
			ResponseHeaders: http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}},
			WSMessages: []wsframe.Message{
				{Time: start.Add(3100 * time.Millisecond), Direction: wsframe.ToTarget, Opcode: "text", Size: 15, Text: `{"watch":"pods"}`},
				{Time: start.Add(3200 * time.Millisecond), Direction: wsframe.ToClient, Opcode: "binary", Size: 2048},
				{Time: start.Add(3300 * time.Millisecond), Direction: wsframe.ToClient, Opcode: "close", Size: 2},
			},
			Decision: "allowed",
		},
	}
	var buf bytes.Buffer
	if err := WriteHAR(&buf, testMeta("0f8fad5b-d9cb-469f-a165-70867728950e"), ex); err != nil {
		t.Fatal(err)
	}

	golden := filepath.Join("testdata", "session.har")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), buf.String()); diff != "" {
		t.Errorf("HAR differs from %s (-want +got), rerun with -update if intended:\n%s", golden, diff)
	}

	// Fields that HAR viewers require, whatever the golden file says.
	var doc struct {
		Log struct {
			Version string `json:"version"`
			Entries []map[string]json.RawMessage
		} `json:"log"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Log.Version != "1.2" || len(doc.Log.Entries) != len(ex) {
		t.Fatalf("log.version %q with %d entries", doc.Log.Version, len(doc.Log.Entries))
	}
	// httpVersion is the protocol the client spoke, never the URL's scheme; legacy trails say "unknown".
	for i, want := range []string{"HTTP/2", "HTTP/1.1", "unknown", "HTTP/1.1"} {
		var req struct {
			HTTPVersion string `json:"httpVersion"`
		}
		if err := json.Unmarshal(doc.Log.Entries[i]["request"], &req); err != nil || req.HTTPVersion != want {
			t.Errorf("entry %d: httpVersion %q (%v), want %q", i, req.HTTPVersion, err, want)
		}
	}
	for i, e := range doc.Log.Entries {
		for _, k := range []string{"startedDateTime", "time", "request", "response", "cache", "timings"} {
			if _, ok := e[k]; !ok {
				t.Errorf("entry %d lacks %q", i, k)
			}
		}
	}
}
