package proxy

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestTap: the body passes through unchanged, whatever the pieces it comes in; the tap keeps the first limit
// bytes, counts all of them, says when it kept less than there was, and remembers a read error (not EOF).
func TestTap(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		limit      int
		want       string
		truncated  bool
	}{
		{"empty", "", 10, "", false},
		{"shorter than the limit", "hello", 10, "hello", false},
		{"exactly the limit", "0123456789", 10, "0123456789", false},
		{"longer than the limit", "0123456789abc", 10, "0123456789", true},
		{"nothing recorded", "abc", 0, "", false}, // an unaudited body: nothing was to be kept, so nothing is cut
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := &tap{rc: io.NopCloser(iotest.OneByteReader(strings.NewReader(tc.body))), limit: tc.limit}
			var out bytes.Buffer
			if _, err := io.Copy(&out, tp); err != nil {
				t.Fatal(err)
			}
			body, n, truncated := tp.snapshot()
			if out.String() != tc.body || string(body) != tc.want || n != int64(len(tc.body)) || truncated != tc.truncated || tp.err != nil {
				t.Fatalf("passed %q, kept %q, counted %d, truncated %v, err %v", out.String(), body, n, truncated, tp.err)
			}
		})
	}
	broken := errors.New("connection reset")
	tp := &tap{rc: io.NopCloser(iotest.ErrReader(broken)), limit: 10}
	if _, err := io.Copy(io.Discard, tp); !errors.Is(err, broken) || !errors.Is(tp.err, broken) {
		t.Fatalf("read error %v, remembered %v", err, tp.err)
	}
	// What a snapshot returned never changes under a later read.
	tp = &tap{rc: io.NopCloser(strings.NewReader("abcdef")), limit: 10}
	buf := make([]byte, 3)
	tp.Read(buf)
	first, _, _ := tp.snapshot()
	tp.Read(buf)
	if string(first) != "abc" {
		t.Fatalf("an earlier snapshot became %q", first)
	}
}
