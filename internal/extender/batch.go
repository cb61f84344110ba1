package extender

import (
	"crypto/tls"
	"encoding/binary"
	"net"
	"sync"
)

// crypto/tls writes every record (at most 16 KiB) with its own write to the socket, and yamux writes each frame as
// two writes, its 12-byte header and then its body. On the agent's side, which carries the downloads, that was
// about three system calls per 32 KiB forwarded, half the agent's CPU time. batchedTLS gathers the records of a
// frame, header and body, into one socket write; the bytes and records on the wire are unchanged.

// yamux's frame header (github.com/hashicorp/yamux spec.md): version, type, flags, stream id, length.
const (
	yamuxHeaderLen = 12
	yamuxTypeData  = 0
)

// batchConn is the raw connection under the TLS client: while held, writes collect in buf instead of going out.
type batchConn struct {
	net.Conn
	mu   sync.Mutex
	hold bool
	buf  []byte
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hold {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// setHold starts or ends holding; ending it writes what was held.
func (c *batchConn) setHold(on bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hold = on
	if on || len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	// Keep a frame's worth of capacity for the next one, not the largest burst ever seen.
	if cap(c.buf) > 512<<10 {
		c.buf = nil
	} else {
		c.buf = c.buf[:0]
	}
	return err
}

// batchedTLS is the agent's session connection. Only yamux's send loop writes to it, one header or body at a time.
type batchedTLS struct {
	*tls.Conn
	raw *batchConn
	// pending is set after a data header whose body is the next write; both leave in one socket write.
	pending bool
}

// newBatchedTLS wraps raw in a TLS client; the caller must finish the handshake before the first Write, which
// would otherwise hold the client hello back while waiting for the answer to it.
func newBatchedTLS(raw net.Conn, cfg *tls.Config) *batchedTLS {
	b := &batchConn{Conn: raw}
	return &batchedTLS{Conn: tls.Client(b, cfg), raw: b}
}

func (c *batchedTLS) Write(p []byte) (int, error) {
	if err := c.raw.setHold(true); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(p)
	if err == nil && !c.pending && isDataHeader(p) {
		// yamux writes this frame's body next, at once: the header waits for it.
		c.pending = true
		return n, nil
	}
	c.pending = false
	if ferr := c.raw.setHold(false); err == nil {
		err = ferr
	}
	return n, err
}

// Close sends anything held (a header whose body never came) before the close alert.
func (c *batchedTLS) Close() error {
	_ = c.raw.setHold(false)
	return c.Conn.Close()
}

// isDataHeader says whether p is exactly a yamux data frame header announcing a body.
func isDataHeader(p []byte) bool {
	return len(p) == yamuxHeaderLen && p[1] == yamuxTypeData && binary.BigEndian.Uint32(p[8:12]) > 0
}

// maxRecordPlain is the most plaintext one TLS record carries (RFC 8446 section 5.1).
const maxRecordPlain = 16 << 10

// headerJoiner is the session connection on the side that did not dial (the hub, a relay's serving node): the
// TLS connection came from the API server, so writes cannot be gathered under it as batchedTLS does, but a data
// frame's header can still travel in its body's first record instead of a record and a system call of its own. A
// request through an extender, one small frame, goes out as one record and one write instead of two. Only yamux's
// send loop writes to it; a header held when the session closes has lost its body anyway, so Close does not send
// it (and does not race the send loop).
type headerJoiner struct {
	net.Conn
	held []byte // a data frame header whose body is the next write
	buf  []byte
}

func (c *headerJoiner) Write(p []byte) (int, error) {
	if len(c.held) == 0 {
		if isDataHeader(p) {
			c.held = append(c.held[:0], p...)
			return len(p), nil
		}
		return c.Conn.Write(p)
	}
	// The header and as much of the body as fills its first record; the rest of a long body goes as it is, so
	// it is not copied once more.
	k := min(len(p), maxRecordPlain-len(c.held))
	c.buf = append(append(c.buf[:0], c.held...), p[:k]...)
	c.held = c.held[:0]
	if _, err := c.Conn.Write(c.buf); err != nil {
		return 0, err
	}
	if k == len(p) {
		return len(p), nil
	}
	n, err := c.Conn.Write(p[k:])
	return k + n, err
}
