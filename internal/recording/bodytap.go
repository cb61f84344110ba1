package recording

import (
	"io"
	"sync"
)

// BodyTap is an io.ReadCloser that passes a body through unchanged while it
// keeps a copy of the first bytes and counts all of them. It never holds more
// than its limit, however long the stream, so it can sit on every request
// and response body of the proxy.
//
// A tap is safe for concurrent use: net/http may still be reading a request
// body on its own goroutine when the proxy records the exchange.
type BodyTap struct {
	rc    io.ReadCloser
	limit int

	mu   sync.Mutex
	buf  []byte
	n    int64
	done bool // reached io.EOF
}

var _ io.ReadCloser = (*BodyTap)(nil)

// NewBodyTap returns a tap on rc that captures up to limit bytes. Use
// Writer.CaptureLimit for limit so that redaction can see whole secrets at
// the cut.
func NewBodyTap(rc io.ReadCloser, limit int) *BodyTap {
	return &BodyTap{rc: rc, limit: max(limit, 0)}
}

// Read reads from the underlying body and records what passes.
func (t *BodyTap) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n += int64(n)
	if room := t.limit - len(t.buf); room > 0 && n > 0 {
		t.grow(min(room, n))
		t.buf = append(t.buf, p[:min(room, n)]...)
	}
	if err == io.EOF {
		t.done = true
	}
	return n, err
}

// grow makes room for k more bytes without ever letting the capacity exceed
// the limit, which append's own growth policy would.
func (t *BodyTap) grow(k int) {
	need := len(t.buf) + k
	if need <= cap(t.buf) {
		return
	}
	c := min(max(2*cap(t.buf), need, 512), t.limit)
	nb := make([]byte, len(t.buf), c)
	copy(nb, t.buf)
	t.buf = nb
}

// Close closes the underlying body.
func (t *BodyTap) Close() error {
	return t.rc.Close()
}

// Bytes returns a copy of the captured bytes.
func (t *BodyTap) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.buf == nil {
		return nil
	}
	return append([]byte(nil), t.buf...)
}

// N returns the number of bytes read through the tap so far.
func (t *BodyTap) N() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// Truncated reports whether more bytes passed than were captured.
func (t *BodyTap) Truncated() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n > int64(len(t.buf))
}

// Complete reports whether the body was read to its end, as opposed to
// abandoned by a client or target that went away.
func (t *BodyTap) Complete() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.done
}
