package extender

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// scriptedReader answers each Read with the next of its chunk sizes (filling p, at most), remembers how big each
// p was, and ends with err once the script is done.
type scriptedReader struct {
	chunks []int
	err    error
	next   byte
	asked  []int
}

func (r *scriptedReader) Read(p []byte) (int, error) {
	r.asked = append(r.asked, len(p))
	if len(r.chunks) == 0 {
		return 0, r.err
	}
	n := min(r.chunks[0], len(p))
	r.chunks = r.chunks[1:]
	for i := range p[:n] {
		p[i] = r.next
		r.next++
	}
	return n, nil
}

// TestCopyBurstBuffers pins when a pipe reads through its big buffer: only after a read filled the small one, and
// back to the small one as soon as a read comes back short, so an idle or trickling pipe never waits holding a big
// buffer. Every byte arrives, in order.
func TestCopyBurstBuffers(t *testing.T) {
	const s, b = smallCopyBuf, bigCopyBuf
	for _, c := range []struct {
		name   string
		chunks []int
		asked  []int // len(p) of each Read, the last being the one that ends the copy
	}{
		{"trickle", []int{100, 5, 300}, []int{s, s, s, s}},
		{"burst", []int{s, b, b, 1000, 10}, []int{s, b, b, b, s, s}},
		{"burst thins out", []int{s, s - 1, s, 7}, []int{s, b, s, b, s}},
		{"full small read at the end", []int{s}, []int{s, b}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &scriptedReader{chunks: append([]int(nil), c.chunks...), err: io.EOF}
			var got bytes.Buffer
			if err := copyBurst(&got, r); err != nil {
				t.Fatalf("copyBurst: %v", err)
			}
			total := 0
			for _, n := range c.chunks {
				total += n
			}
			want := make([]byte, total)
			for i := range want {
				want[i] = byte(i)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("copied %d bytes, not the %d the source gave in order", got.Len(), total)
			}
			if len(r.asked) != len(c.asked) {
				t.Fatalf("reads asked for %v, want %v", r.asked, c.asked)
			}
			for i := range c.asked {
				if r.asked[i] != c.asked[i] {
					t.Fatalf("reads asked for %v, want %v", r.asked, c.asked)
				}
			}
		})
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestCopyBurstErrors(t *testing.T) {
	readErr := errors.New("target reset")
	if err := copyBurst(io.Discard, &scriptedReader{chunks: []int{10, bigCopyBuf}, err: readErr}); !errors.Is(err, readErr) {
		t.Fatalf("read failure: got %v, want %v", err, readErr)
	}
	writeErr := errors.New("stream closed")
	if err := copyBurst(failingWriter{writeErr}, &scriptedReader{chunks: []int{10}, err: io.EOF}); !errors.Is(err, writeErr) {
		t.Fatalf("write failure: got %v, want %v", err, writeErr)
	}
}
