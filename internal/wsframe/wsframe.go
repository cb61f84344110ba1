// Package wsframe follows the frames of a WebSocket connection (RFC 6455) as its bytes stream by and reports each
// message, for the recording of upgraded exchanges. It never changes or holds back the stream.
package wsframe

import (
	"encoding/binary"
	"strconv"
	"time"
	"unicode/utf8"
)

// Message directions.
const (
	ToTarget = "to_target"
	ToClient = "to_client"
)

// Message is one WebSocket message of an upgraded exchange: a data
// message (all its fragments) or a control frame.
type Message struct {
	Time      time.Time `json:"time"`
	Direction string    `json:"direction"`
	// Opcode is "text", "binary", "close", "ping", "pong", or "0x3".."0xf"
	// for reserved opcodes.
	Opcode string `json:"opcode"`
	// Size is the payload length in bytes, all fragments together.
	Size int64 `json:"size"`
	// Text holds the start of a text message, at most the body limit after
	// redaction; binary and control payloads are never kept.
	Text      string `json:"text,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	// Compressed marks a message sent with RSV1 set (permessage-deflate):
	// its payload is not readable, so no text is kept.
	Compressed bool `json:"compressed,omitempty"`
	// Incomplete marks a message the connection closed in the middle of.
	Incomplete bool `json:"incomplete,omitempty"`
}

// Parser follows the frames of one direction of a WebSocket connection
// (RFC 6455 section 5) as bytes stream by, and reports each message to
// Emit. It never changes or holds back the stream: a parser that loses
// track (a protocol error) stops reporting and sets Broken, and the bytes
// keep flowing. It is not safe for concurrent use; use one per direction.
type Parser struct {
	// Direction is ToTarget or ToClient.
	Direction string
	// Limit is how many payload bytes of a text message to keep; 0 keeps none.
	Limit int
	// Now stamps messages; nil means time.Now.
	Now func() time.Time
	// Emit receives each finished message.
	Emit func(Message)

	hdr  [14]byte
	hn   int // header bytes collected
	hlen int // header length once known, else 0

	inFrame   bool
	remaining uint64
	mask      [4]byte
	masked    bool
	maskPos   int
	control   bool
	fin       bool

	data *Message // the data message being assembled
	text []byte
	ctl  *Message // the control frame being read

	// Broken is set once the stream stopped parsing as WebSocket frames.
	Broken bool
}

// Write feeds p, the next bytes of the direction, to the parser. It always
// consumes all of p.
func (p *Parser) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 && !p.Broken {
		if !p.inFrame {
			b = p.header(b)
			continue
		}
		k := len(b)
		if uint64(k) > p.remaining {
			k = int(p.remaining)
		}
		p.payload(b[:k])
		b = b[k:]
		p.remaining -= uint64(k)
		if p.remaining == 0 {
			p.endFrame()
		}
	}
	return n, nil
}

// header collects header bytes from b and returns what is left of b.
func (p *Parser) header(b []byte) []byte {
	for len(b) > 0 {
		p.hdr[p.hn] = b[0]
		p.hn++
		b = b[1:]
		if p.hn == 2 {
			p.hlen = 2
			switch p.hdr[1] & 0x7f {
			case 126:
				p.hlen += 2
			case 127:
				p.hlen += 8
			}
			if p.hdr[1]&0x80 != 0 {
				p.hlen += 4
			}
		}
		if p.hn >= 2 && p.hn == p.hlen {
			p.startFrame()
			return b
		}
	}
	return b
}

func (p *Parser) startFrame() {
	h := p.hdr[:p.hlen]
	p.hn, p.hlen = 0, 0
	p.fin = h[0]&0x80 != 0
	op := h[0] & 0x0f
	rsv1 := h[0]&0x40 != 0
	p.masked = h[1]&0x80 != 0
	length := uint64(h[1] & 0x7f)
	rest := h[2:]
	switch length {
	case 126:
		length = uint64(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
	case 127:
		length = binary.BigEndian.Uint64(rest)
		rest = rest[8:]
		if length>>63 != 0 {
			p.Broken = true
			return
		}
	}
	if p.masked {
		copy(p.mask[:], rest)
	}
	p.maskPos = 0
	p.remaining = length
	p.control = op >= 8
	switch {
	case p.control:
		if !p.fin || length > 125 {
			p.Broken = true // control frames are short and never fragmented
			return
		}
		p.ctl = &Message{Time: p.now(), Direction: p.Direction, Opcode: opcodeName(op), Size: int64(length)}
	case op == 0:
		if p.data == nil {
			p.Broken = true // a continuation with nothing to continue
			return
		}
		p.data.Size += int64(length)
	default:
		if p.data != nil {
			p.Broken = true // a new message before the last one ended
			return
		}
		p.data = &Message{Time: p.now(), Direction: p.Direction, Opcode: opcodeName(op), Size: int64(length), Compressed: rsv1}
		p.text = p.text[:0]
	}
	p.inFrame = true
	if length == 0 {
		p.endFrame()
	}
}

func (p *Parser) payload(b []byte) {
	if p.control || p.data == nil || p.data.Opcode != "text" || p.data.Compressed {
		p.maskPos = (p.maskPos + len(b)) % 4
		return
	}
	room := p.Limit - len(p.text)
	if room <= 0 {
		if len(b) > 0 {
			p.data.Truncated = true
		}
		p.maskPos = (p.maskPos + len(b)) % 4
		return
	}
	take := min(room, len(b))
	if take < len(b) {
		p.data.Truncated = true
	}
	for i := range take {
		c := b[i]
		if p.masked {
			c ^= p.mask[p.maskPos]
		}
		p.maskPos = (p.maskPos + 1) % 4
		p.text = append(p.text, c)
	}
	p.maskPos = (p.maskPos + len(b) - take) % 4
}

func (p *Parser) endFrame() {
	p.inFrame = false
	if p.control {
		m := p.ctl
		p.ctl = nil
		p.emit(*m)
		return
	}
	if p.fin {
		p.finishData(false)
	}
}

func (p *Parser) finishData(incomplete bool) {
	m := p.data
	p.data = nil
	if m == nil {
		return
	}
	m.Incomplete = incomplete
	if m.Opcode == "text" && len(p.text) > 0 {
		t := p.text
		// A cut can split a character; keep whole ones only.
		for i := 0; i < utf8.UTFMax-1 && m.Truncated && len(t) > 0 && !utf8.Valid(t); i++ {
			t = t[:len(t)-1]
		}
		m.Text = string(t)
	}
	p.emit(*m)
}

// Close reports a message left unfinished when the connection ended.
func (p *Parser) Close() error {
	if !p.Broken {
		if p.ctl != nil {
			c := *p.ctl
			p.ctl = nil
			c.Incomplete = true
			p.emit(c)
		}
		p.finishData(true)
	}
	return nil
}

func (p *Parser) emit(m Message) {
	if p.Emit != nil {
		p.Emit(m)
	}
}

func (p *Parser) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func opcodeName(op byte) string {
	switch op {
	case 1:
		return "text"
	case 2:
		return "binary"
	case 8:
		return "close"
	case 9:
		return "ping"
	case 10:
		return "pong"
	}
	return "0x" + strconv.FormatUint(uint64(op), 16)
}

// OpcodeNumber is the inverse of opcodeName.
func OpcodeNumber(name string) int {
	for op := range 16 {
		if opcodeName(byte(op)) == name {
			return op
		}
	}
	return -1
}
