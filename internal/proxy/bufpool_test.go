//go:build !race

package proxy

import "testing"

// TestBufferPoolNoAlloc checks that a warm Get and Put of a copy buffer allocate nothing (ReverseProxy does one pair
// per request). sync.Pool drops items on purpose under the race detector, hence the build tag.
func TestBufferPoolNoAlloc(t *testing.T) {
	var p bufferPool
	p.p.New = func() any { b := make([]byte, 32<<10); return &b }
	p.Put(p.Get())
	if n := testing.AllocsPerRun(100, func() {
		b := p.Get()
		if len(b) != 32<<10 {
			t.Fatalf("buffer of %d bytes", len(b))
		}
		p.Put(b)
	}); n != 0 {
		t.Errorf("Get and Put allocate %v times", n)
	}
}
