package limits

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Listener accepts from an inner listener, retrying temporary accept errors (a full descriptor table, a
// connection aborted before it was accepted) with a backoff instead of returning them: net/http's Serve and the
// proxy's own loop both stop for good on an accept error they do not know to be temporary, and with them the
// process. Every accepted connection is admitted through Conns, when set.
type Listener struct {
	net.Listener
	// Conns admits connections; nil admits every one.
	Conns *Conns
	// OnTemporary, if set, is called with each temporary accept error before backing off.
	OnTemporary func(error)
	// Defer, if set, says which connections are counted against their client address later, with Conn.BindTo:
	// those from a load balancer whose PROXY protocol header names the client. The rest are counted against
	// their remote address at once.
	Defer func(remote net.Addr) bool

	closeOnce sync.Once
	done      chan struct{}
	initOnce  sync.Once
}

// maxBackoff bounds the wait after repeated temporary errors, as net/http does.
const maxBackoff = time.Second

func (l *Listener) init() { l.initOnce.Do(func() { l.done = make(chan struct{}) }) }

// Accept returns the next admitted connection. A connection beyond the caps with nothing to evict is closed at
// once and the next one is accepted.
func (l *Listener) Accept() (net.Conn, error) {
	l.init()
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !IsTemporary(err) {
				return nil, err
			}
			if l.OnTemporary != nil {
				l.OnTemporary(err)
			}
			delay = min(max(2*delay, 5*time.Millisecond), maxBackoff)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return nil, net.ErrClosed
			}
			continue
		}
		delay = 0
		if l.Conns == nil {
			return c, nil
		}
		lc := &Conn{Conn: c}
		if lc.slot = l.Conns.Admit(c); lc.slot == nil {
			_ = c.Close()
			continue
		}
		if l.Defer != nil && l.Defer(c.RemoteAddr()) {
			return lc, nil
		}
		if !lc.BindTo(AddrOf(c.RemoteAddr())) {
			continue
		}
		return lc, nil
	}
}

// Close closes the inner listener and ends a backoff in progress.
func (l *Listener) Close() error {
	l.init()
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// IsTemporary reports whether an accept error passes: a timeout, or an errno that says the listener is fine but
// this attempt failed (see temporaryErrnos).
func IsTemporary(err error) bool {
	if err == nil || errors.Is(err, net.ErrClosed) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range temporaryErrnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Conn is an admitted connection.
type Conn struct {
	net.Conn
	slot   *Slot
	bound  atomic.Bool
	closed atomic.Bool
}

// BindTo counts the connection against the client address addr. It reports false, and closes the connection,
// when that address is over its limit. Only the first call counts.
func (c *Conn) BindTo(addr netip.Addr) bool {
	if c.bound.Swap(true) {
		return !c.closed.Load()
	}
	if !c.slot.Bind(addr) {
		_ = c.Close()
		return false
	}
	return true
}

// Bound reports whether the connection was counted against a client address.
func (c *Conn) Bound() bool { return c.bound.Load() }

// ReadFrom and WriteTo keep the inner connection's zero-copy paths (splice, sendfile) for io.Copy.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) { return io.Copy(c.Conn, r) }

// WriteTo copies what the connection reads to w.
func (c *Conn) WriteTo(w io.Writer) (int64, error) { return io.Copy(w, c.Conn) }

// Protect makes the connection no longer evictable (it authenticated, or is serving a request).
func (c *Conn) Protect() { c.slot.Protect() }

// Expose makes the connection evictable again (it went idle).
func (c *Conn) Expose() { c.slot.Expose() }

// Close releases the connection's place and closes it.
func (c *Conn) Close() error {
	if !c.closed.Swap(true) {
		c.slot.Release()
	}
	return c.Conn.Close()
}

// Protector is what a wrapped connection offers to move it out of (and back into) the evictable set.
type Protector interface {
	Protect()
	Expose()
}

var _ Protector = (*Conn)(nil)

// HTTPConnState is an http.Server ConnState hook for a server on a Listener: a connection serving a request is
// protected, an idle or new one is evictable.
func HTTPConnState(c net.Conn, st http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	p, ok := c.(Protector)
	if !ok {
		return
	}
	switch st {
	case http.StateActive:
		p.Protect()
	case http.StateIdle:
		p.Expose()
	}
}

// AddrOf returns the IP address of a connection's address, IPv4-in-IPv6 unmapped; the zero Addr when there is
// none (all such connections then share one count).
func AddrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	if a == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
