package proxy

import (
	"sync"

	"github.com/gatehouse-dev/gatehouse/internal/wsframe"
)

// maxWSMessages bounds the messages kept for one upgraded exchange, so a chatty connection that stays open for
// hours cannot grow the proxy's memory without end; the rest are counted.
const maxWSMessages = 10000

// maxWSText bounds the text kept over all messages of one upgraded exchange, so that the exchange's trail record
// (one line, written at once) and the memory held until the connection ends stay bounded too: past it, messages
// are kept with direction, opcode and size, their text cut (marked truncated).
const maxWSText = 1 << 20

// wsCapture follows both directions of an audited WebSocket connection and collects its messages for the
// exchange's recording. ReverseProxy copies each direction on its own goroutine and returns when the first one
// ends, so the other may still be feeding its parser while the exchange is recorded: each direction has a lock.
type wsCapture struct {
	toTarget, toClient wsDirection

	mu       sync.Mutex
	messages []wsframe.Message
	text     int // bytes of text kept so far
	dropped  int64
}

type wsDirection struct {
	mu     sync.Mutex
	p      wsframe.Parser
	closed bool
}

// newWSCapture returns a capture that keeps up to limit bytes of each text message.
func newWSCapture(limit int) *wsCapture {
	c := &wsCapture{}
	c.toTarget.p = wsframe.Parser{Direction: wsframe.ToTarget, Limit: limit, Emit: c.add}
	c.toClient.p = wsframe.Parser{Direction: wsframe.ToClient, Limit: limit, Emit: c.add}
	return c
}

func (c *wsCapture) add(m wsframe.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.messages) >= maxWSMessages {
		c.dropped++
		return
	}
	if c.text+len(m.Text) > maxWSText {
		m.Text, m.Truncated = "", true
	}
	c.text += len(m.Text)
	c.messages = append(c.messages, m)
}

// feed passes bytes seen in one direction to its parser; bytes after the snapshot are not recorded.
func (d *wsDirection) feed(b []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		_, _ = d.p.Write(b)
	}
}

func (d *wsDirection) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.closed = true
		_ = d.p.Close()
	}
}

// snapshot ends both parsers (a message cut by the close is kept, marked incomplete) and returns the messages.
func (c *wsCapture) snapshot() ([]wsframe.Message, int64) {
	if c == nil {
		return nil, 0
	}
	c.toTarget.close()
	c.toClient.close()
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]wsframe.Message(nil), c.messages...), c.dropped
}
