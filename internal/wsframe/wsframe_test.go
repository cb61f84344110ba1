package wsframe

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// wsFrame encodes one frame; a non-nil mask masks the payload as a client must.
func wsFrame(fin bool, op byte, payload []byte, mask []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	mbit := byte(0)
	if mask != nil {
		mbit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		out = append(out, mbit|byte(n))
	case n < 1<<16:
		out = append(out, mbit|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, mbit|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	p := append([]byte(nil), payload...)
	if mask != nil {
		out = append(out, mask...)
		for i := range p {
			p[i] ^= mask[i%4]
		}
	}
	return append(out, p...)
}

func parseWS(stream []byte, limit, chunk int) ([]Message, bool) {
	var got []Message
	p := &Parser{Direction: ToTarget, Limit: limit, Emit: func(m Message) { got = append(got, m) }}
	for len(stream) > 0 {
		n := min(chunk, len(stream))
		p.Write(stream[:n])
		stream = stream[n:]
	}
	p.Close()
	return got, p.Broken
}

func TestParser(t *testing.T) {
	mask := []byte{0x37, 0xfa, 0x21, 0x3d}
	big := bytes.Repeat([]byte("é"), 40000) // 80000 bytes: a 64-bit length
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name   string
		stream []byte
		limit  int
		want   []Message
		broken bool
	}{
		{"masked text", wsFrame(true, 1, []byte("Hello"), mask), 64,
			[]Message{{Opcode: "text", Size: 5, Text: "Hello"}}, false},
		{"unmasked binary keeps no content", wsFrame(true, 2, []byte{0, 1, 2}, nil), 64,
			[]Message{{Opcode: "binary", Size: 3}}, false},
		{"fragments with a ping between", cat(wsFrame(false, 1, []byte("Hel"), mask), wsFrame(true, 9, []byte("p"), mask), wsFrame(true, 0, []byte("lo"), mask)), 64,
			[]Message{{Opcode: "ping", Size: 1}, {Opcode: "text", Size: 5, Text: "Hello"}}, false},
		{"text cut at the limit on a character boundary", wsFrame(true, 1, []byte("aéb"), nil), 2,
			[]Message{{Opcode: "text", Size: 4, Text: "a", Truncated: true}}, false},
		{"16-bit length", wsFrame(true, 1, bytes.Repeat([]byte("z"), 300), mask), 4,
			[]Message{{Opcode: "text", Size: 300, Text: "zzzz", Truncated: true}}, false},
		{"64-bit length", wsFrame(true, 1, big, nil), 4,
			[]Message{{Opcode: "text", Size: 80000, Text: "éé", Truncated: true}}, false},
		{"close and pong", cat(wsFrame(true, 8, []byte{3, 232}, nil), wsFrame(true, 10, nil, nil)), 64,
			[]Message{{Opcode: "close", Size: 2}, {Opcode: "pong"}}, false},
		{"compressed text is size only", append([]byte{0xc1, 3}, "abc"...), 64,
			[]Message{{Opcode: "text", Size: 3, Compressed: true}}, false},
		{"cut mid-message", wsFrame(false, 1, []byte("par"), nil), 64,
			[]Message{{Opcode: "text", Size: 3, Text: "par", Incomplete: true}}, false},
		{"continuation without a message", wsFrame(true, 0, []byte("x"), nil), 64, nil, true},
		{"fragmented control frame", wsFrame(false, 9, []byte("x"), nil), 64, nil, true},
		{"new message inside a fragmented one", cat(wsFrame(false, 1, []byte("a"), nil), wsFrame(true, 1, []byte("b"), nil)), 64, nil, true},
		{"control frame over 125 bytes", wsFrame(true, 9, bytes.Repeat([]byte("p"), 126), nil), 64, nil, true},
		{"64-bit length with the top bit set", []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1}, 64, nil, true},
		{"limit 0 keeps no text", wsFrame(true, 1, []byte("secret"), nil), 0,
			[]Message{{Opcode: "text", Size: 6, Truncated: true}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{1, 3, 1 << 20} {
				got, broken := parseWS(tc.stream, tc.limit, chunk)
				if broken != tc.broken {
					t.Fatalf("chunk %d: broken %v, want %v", chunk, broken, tc.broken)
				}
				if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(Message{}, "Time", "Direction"), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("chunk %d (-want +got):\n%s", chunk, diff)
				}
			}
		})
	}
}

// FuzzParser: however a stream is split into writes, the parser reports the same messages; it never panics.
func FuzzParser(f *testing.F) {
	mask := []byte{1, 2, 3, 4}
	f.Add(wsFrame(true, 1, []byte("hello"), mask), 3, 8)
	f.Add(append(wsFrame(false, 2, []byte{9, 9}, nil), wsFrame(true, 0, []byte{8}, nil)...), 1, 0)
	f.Add(wsFrame(true, 8, []byte{3, 232}, mask), 2, 64)
	f.Add([]byte{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0}, 5, 4)
	f.Add([]byte{0x81, 126, 0xff}, 1, 4)
	f.Fuzz(func(t *testing.T, stream []byte, chunk, limit int) {
		if chunk < 1 || chunk > 1<<16 || limit < 0 || limit > 1<<16 {
			return
		}
		whole, wb := parseWS(stream, limit, len(stream)+1)
		split, sb := parseWS(stream, limit, chunk)
		if wb != sb {
			t.Fatalf("broken %v whole, %v split", wb, sb)
		}
		if diff := cmp.Diff(whole, split, cmpopts.IgnoreFields(Message{}, "Time"), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("split writes changed the messages:\n%s", diff)
		}
		for _, m := range whole {
			if len(m.Text) > limit {
				t.Fatalf("text of %d bytes past the limit %d", len(m.Text), limit)
			}
			if m.Opcode != "text" && m.Text != "" {
				t.Fatalf("%s message kept content", m.Opcode)
			}
		}
	})
}
