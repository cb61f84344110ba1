package recording

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

func TestBodyTap(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		limit     int
		want      string
		truncated bool
	}{
		{"empty", "", 10, "", false},
		{"shorter than limit", "hello", 10, "hello", false},
		{"exactly the limit", "0123456789", 10, "0123456789", false},
		{"longer than limit", "0123456789abc", 10, "0123456789", true},
		{"zero limit", "abc", 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// OneByteReader exercises captures that arrive in many pieces.
			tap := NewBodyTap(io.NopCloser(iotest.OneByteReader(strings.NewReader(tt.body))), tt.limit)
			var out bytes.Buffer
			if _, err := io.Copy(&out, tap); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.body {
				t.Errorf("passed through %q, want %q", out.String(), tt.body)
			}
			if got := string(tap.Bytes()); got != tt.want {
				t.Errorf("Bytes = %q, want %q", got, tt.want)
			}
			if tap.N() != int64(len(tt.body)) || tap.Truncated() != tt.truncated || !tap.Complete() {
				t.Errorf("N %d Truncated %v Complete %v", tap.N(), tap.Truncated(), tap.Complete())
			}
		})
	}
}

// zeroStream yields n zero bytes without allocating.
type zeroStream struct{ n int64 }

func (z *zeroStream) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	k := int(min(int64(len(p)), z.n))
	clear(p[:k])
	z.n -= int64(k)
	return k, nil
}

// TestBodyTapMemoryIsFlat streams 1 GiB through a tap and requires that what
// was allocated meanwhile is bounded by the capture limit, not the stream.
func TestBodyTapMemoryIsFlat(t *testing.T) {
	const size, limit = 1 << 30, 64 << 10
	buf := make([]byte, 32<<10)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	tap := NewBodyTap(io.NopCloser(&zeroStream{n: size}), limit)
	for {
		_, err := tap.Read(buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if tap.N() != size || !tap.Truncated() {
		t.Fatalf("N = %d, Truncated = %v", tap.N(), tap.Truncated())
	}
	if c := cap(tap.buf); c > limit {
		t.Errorf("capture buffer capacity %d exceeds limit %d", c, limit)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*limit {
		t.Errorf("allocated %d bytes for a 1 GiB stream, want at most %d", alloc, 4*limit)
	}
}
