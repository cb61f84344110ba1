package proxy

import "sync"

// bufferPool hands out the 32 KiB buffers ReverseProxy copies bodies with, so that copying reuses memory instead
// of allocating per request. sync.Pool holds pointers (a slice put as an interface value allocates its header), and
// ReverseProxy hands back the slice, not the pointer: the emptied *[]byte holders are pooled too, so that a Get and a
// Put allocate nothing once warm.
type bufferPool struct{ p, holders sync.Pool }

// copyBuffers is shared by every Server: the buffers hold nothing between uses.
var copyBuffers = &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

func (b *bufferPool) Get() []byte {
	h := b.p.Get().(*[]byte)
	buf := *h
	*h = nil // a holder in the pool must not keep a buffer that is in use
	b.holders.Put(h)
	return buf
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) != 32<<10 {
		return
	}
	h, _ := b.holders.Get().(*[]byte)
	if h == nil {
		h = new([]byte)
	}
	*h = buf[:cap(buf)]
	b.p.Put(h)
}
