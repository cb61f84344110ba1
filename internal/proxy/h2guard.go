package proxy

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/limits"
)

// HTTP/2 limits of an intercepted tunnel. x/net/http2 bounds concurrent handlers by MaxConcurrentStreams and
// refuses a queue of more than four times that many, but a client that opens and resets streams one after the
// other (rapid reset, CVE-2023-44487) never fills the queue: every stream starts a handler, and many of them a
// request to the target, before the reset is read. So the resets themselves are counted.
const (
	// h2MaxStreams is the concurrent streams a client may open (x/net's default is 250).
	h2MaxStreams = 100
	// h2ResetBurst resets are allowed at once on one connection, and h2ResetRate more per second after that;
	// beyond them the connection is ended with GOAWAY ENHANCE_YOUR_CALM. A browser that navigates away resets
	// a handful of streams, not hundreds.
	h2ResetBurst = 200
	h2ResetRate  = 50
	// h2GoAwayWait bounds how long the guard waits for the server to finish a frame before it closes without
	// a GOAWAY.
	h2GoAwayWait = time.Second
	// h2GoAwayLinger bounds how long a connection ended with a GOAWAY drains what the client still sends.
	h2GoAwayLinger = time.Second
)

// HTTP/2 frame types and the error code the guard uses (RFC 9113).
const (
	h2FrameHeaders   = 0x1
	h2FrameRSTStream = 0x3
	h2FrameGoAway    = 0x7
	h2EnhanceCalm    = 0xb
	h2PrefaceLen     = 24 // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	h2FrameHeaderLen = 9
)

// h2Guard sits between x/net's HTTP/2 server and the TLS connection of a tunnel. It follows the frame headers in
// both directions without copying or decoding anything: client frames to count RST_STREAM, server frames to
// know where a frame ends, so that when the resets pass their budget it can write a GOAWAY between two of the
// server's frames and close.
type h2Guard struct {
	net.Conn
	tls    *tls.Conn
	srv    *Server
	resets limits.Bucket

	// Read side, used only by the server's reading goroutine.
	rd frameScanner
	// lastStream is the highest stream a client HEADERS frame opened, the last-stream-id of the GOAWAY.
	lastStream atomic.Uint32

	wmu     sync.Mutex
	wr      frameScanner // server frames written so far
	tripped bool         // a GOAWAY is due at the next frame boundary
	closed  atomic.Bool
	// goneAway is set once the GOAWAY was written: the connection is then closed by linger, not by x/net.
	goneAway atomic.Bool
	// ended is closed once the GOAWAY was written or the connection closed without one after a trip, so the
	// reading goroutine does not report the end (and have x/net close the connection) before the GOAWAY.
	ended   chan struct{}
	endOnce sync.Once
}

func newH2Guard(tc *tls.Conn, s *Server) *h2Guard {
	return &h2Guard{Conn: tc, tls: tc, srv: s, rd: frameScanner{skip: h2PrefaceLen}, ended: make(chan struct{}),
		resets: limits.Bucket{Rate: h2ResetRate, Burst: h2ResetBurst}}
}

// ConnectionState lets x/net see the TLS state (it checks the version and cipher suite).
func (g *h2Guard) ConnectionState() tls.ConnectionState { return g.tls.ConnectionState() }

func (g *h2Guard) Read(p []byte) (int, error) {
	if g.closed.Load() {
		return 0, net.ErrClosed
	}
	n, err := g.Conn.Read(p)
	trip := false
	g.rd.scan(p[:n], func(typ byte, stream uint32) {
		switch typ {
		case h2FrameHeaders:
			if stream > g.lastStream.Load() {
				g.lastStream.Store(stream)
			}
		case h2FrameRSTStream:
			if !trip && !g.resets.Allow() {
				trip = true
			}
		}
	})
	if trip {
		g.srv.limitHit(limitH2Resets)
		g.trip()
		<-g.ended
		return 0, net.ErrClosed
	}
	return n, err
}

func (g *h2Guard) Write(p []byte) (int, error) {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	if g.closed.Load() {
		return 0, net.ErrClosed
	}
	if g.tripped {
		// The GOAWAY is due: pass the server's bytes up to the end of the frame it is in and end the connection
		// there. Waiting for a write that ends on a boundary may wait for ever under a flood: x/net writes its
		// buffer whole when it fills, and 4 KiB of 13-byte RST_STREAM frames almost never ends on one.
		if k := g.wr.untilBoundary(p); k >= 0 {
			n, err := g.Conn.Write(p[:k])
			g.wr.scan(p[:n], nil)
			if err == nil {
				g.goAwayLocked()
			}
			return n, net.ErrClosed
		}
	}
	n, err := g.Conn.Write(p)
	trip := false
	g.wr.scan(p[:n], func(typ byte, _ uint32) {
		// A stream the server resets because of what the client sent (a flow-control overflow, a frame on a
		// closed stream) has cost a handler as much as one the client reset itself ("MadeYouReset",
		// CVE-2025-8671), so both draw on one budget.
		if typ == h2FrameRSTStream && !trip && !g.resets.Allow() {
			trip = true
		}
	})
	if trip && !g.tripped {
		g.srv.limitHit(limitH2Resets)
	}
	if trip || g.tripped {
		g.tripLocked()
	}
	return n, err
}

// trip ends the connection: a GOAWAY with ENHANCE_YOUR_CALM now if the server is between frames, else right
// after the frame it is writing, else (the client does not read) a plain close.
func (g *h2Guard) trip() {
	// A write blocked on a client that does not read must not hold the lock forever.
	_ = g.Conn.SetWriteDeadline(time.Now().Add(h2GoAwayWait))
	g.wmu.Lock()
	defer g.wmu.Unlock()
	g.tripLocked()
}

// tripLocked writes the GOAWAY if the server is between frames, or leaves it to the next Write, bounded by a
// timer that closes the connection without one; g.wmu must be held.
func (g *h2Guard) tripLocked() {
	if g.closed.Load() {
		g.end()
		return
	}
	if g.wr.atBoundary() {
		g.goAwayLocked()
		return
	}
	if g.tripped {
		return
	}
	g.tripped = true
	time.AfterFunc(h2GoAwayWait, func() {
		if !g.closed.Swap(true) {
			_ = g.Conn.Close()
		}
		g.end()
	})
}

func (g *h2Guard) end() { g.endOnce.Do(func() { close(g.ended) }) }

// goAwayLocked writes the GOAWAY and closes; g.wmu must be held and the server stream be at a frame boundary.
func (g *h2Guard) goAwayLocked() {
	if g.closed.Swap(true) {
		return
	}
	var f [h2FrameHeaderLen + 8]byte
	f[2] = 8 // payload length
	f[3] = h2FrameGoAway
	binary.BigEndian.PutUint32(f[9:13], g.lastStream.Load()&0x7fffffff)
	binary.BigEndian.PutUint32(f[13:17], h2EnhanceCalm)
	_, _ = g.Conn.Write(f[:])
	// The connection is not closed here: closing a socket that still holds unread bytes makes the kernel answer
	// with a reset, and a reset can destroy the GOAWAY in the client's receive queue before the client reads it (a
	// flooding client always has bytes in flight). The reader is woken instead, x/net's serve loop ends, and
	// linger drains and closes.
	g.goneAway.Store(true)
	_ = g.Conn.SetReadDeadline(time.Now())
	g.end()
}

// linger, once x/net's serve loop is done, half-closes a connection that was ended with a GOAWAY and drains what
// the client still sends, for at most h2GoAwayLinger, so that the caller's close sends no reset.
func (g *h2Guard) linger() {
	if !g.goneAway.Load() {
		return
	}
	raw := g.tls.NetConn()
	if hc, ok := raw.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
	}
	_ = raw.SetReadDeadline(time.Now().Add(h2GoAwayLinger))
	_, _ = io.Copy(io.Discard, raw)
}

func (g *h2Guard) Close() error {
	g.closed.Store(true)
	g.end()
	if g.goneAway.Load() {
		return nil // linger closes (see goAwayLocked)
	}
	return g.Conn.Close()
}

// frameScanner follows HTTP/2 frame boundaries across arbitrary reads or writes.
type frameScanner struct {
	skip int // bytes still to pass: the client preface, or the rest of a frame's payload
	hdr  [h2FrameHeaderLen]byte
	hdrN int
}

// scan passes over b, calling frame (when not nil) with the type and stream of each frame header completed.
func (f *frameScanner) scan(b []byte, frame func(typ byte, stream uint32)) {
	for len(b) > 0 {
		if f.skip > 0 {
			k := min(f.skip, len(b))
			f.skip -= k
			b = b[k:]
			continue
		}
		k := copy(f.hdr[f.hdrN:], b)
		f.hdrN += k
		b = b[k:]
		if f.hdrN < h2FrameHeaderLen {
			return
		}
		f.hdrN = 0
		f.skip = int(f.hdr[0])<<16 | int(f.hdr[1])<<8 | int(f.hdr[2])
		if frame != nil {
			frame(f.hdr[3], binary.BigEndian.Uint32(f.hdr[5:9])&0x7fffffff)
		}
	}
}

// untilBoundary reports how many bytes of b end the frame in progress (0 at a boundary), or -1 when b ends inside
// it; f itself does not move.
func (f frameScanner) untilBoundary(b []byte) int {
	if f.atBoundary() {
		return 0
	}
	for i := 0; i < len(b); {
		if f.skip > 0 {
			k := min(f.skip, len(b)-i)
			f.skip -= k
			i += k
			if f.skip == 0 && f.hdrN == 0 {
				return i
			}
			continue
		}
		k := copy(f.hdr[f.hdrN:], b[i:])
		f.hdrN += k
		i += k
		if f.hdrN < h2FrameHeaderLen {
			return -1
		}
		f.hdrN = 0
		f.skip = int(f.hdr[0])<<16 | int(f.hdr[1])<<8 | int(f.hdr[2])
		if f.skip == 0 {
			return i
		}
	}
	return -1
}

// atBoundary reports whether the bytes scanned so far end exactly at the end of a frame.
func (f *frameScanner) atBoundary() bool { return f.skip == 0 && f.hdrN == 0 }
