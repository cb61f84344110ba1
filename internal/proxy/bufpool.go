package proxy

import "sync"

// bufferPool hands out the 32 KiB buffers ReverseProxy copies bodies with, so that copying reuses memory instead
// of allocating per request.
type bufferPool struct{ p sync.Pool }

// copyBuffers is shared by every Server: the buffers hold nothing between uses.
var copyBuffers = &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

func (b *bufferPool) Get() []byte { return *(b.p.Get().(*[]byte)) }

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) != 32<<10 {
		return
	}
	buf = buf[:cap(buf)]
	b.p.Put(&buf)
}
