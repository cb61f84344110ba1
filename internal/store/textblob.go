package store

import (
	"bytes"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/s2"
	"modernc.org/sqlite"
)

// SQLite keeps long texts of the trail index (the recorded bodies it searches) compressed: storing 64 KiB of a
// body cost the index more than everything else it does for the exchange (the row's overflow pages, written to the
// WAL and again at the checkpoint), and the texts compress several times over. A long text is a BLOB of a version
// byte and the text in S2's block format; a short or incompressible one stays TEXT. Searches ask
// gatehouse_text_contains of a BLOB and LIKE of a TEXT, with the same meaning (an ASCII case-insensitive
// substring). PostgreSQL keeps plain text for its trigram indexes.
const (
	// packMin is the shortest text worth compressing: below it the row's page holds it anyway.
	packMin = 1024
	// packS2 is the version byte of a text in S2's block format.
	packS2 = 1
)

// packText is how SQLite stores text s (already valid UTF-8 without NUL): a string, or a compressed BLOB.
func packText(s string) any {
	if len(s) < packMin {
		return s
	}
	b := make([]byte, 1, 1+s2.MaxEncodedLen(len(s)))
	b[0] = packS2
	b = append(b[:1], s2.Encode(b[1:cap(b)], []byte(s))...)
	if len(b) > len(s)*9/10 {
		return s // it hardly compresses: not worth the decoding on every search that checks it
	}
	return b
}

var errPackedText = errors.New("stored trail text: unknown format")

// unpackText is the text a value of packText holds.
func unpackText(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case []byte:
		if len(v) == 0 || v[0] != packS2 {
			return "", errPackedText
		}
		b, err := s2.Decode(nil, v[1:])
		if err != nil {
			return "", fmt.Errorf("stored trail text: %w", err)
		}
		return string(b), nil
	}
	return "", fmt.Errorf("stored trail text: a %T", v)
}

// storedText scans a text column of the trail index into s.
type storedText struct{ s *string }

func (t storedText) Scan(v any) (err error) {
	*t.s, err = unpackText(v)
	return err
}

// unpacked holds decoded texts for gatehouse_text_contains, whose haystacks are folded in place.
var unpacked = sync.Pool{New: func() any { return new([]byte) }}

// textContains is gatehouse_text_contains(packed, needle): 1 if the text holds needle, ASCII letters folded as
// SQLite's LIKE folds them, else 0.
func textContains(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	needle, ok := args[1].(string)
	if !ok {
		return nil, errors.New("gatehouse_text_contains: the needle must be text")
	}
	var hay []byte
	switch v := args[0].(type) {
	case nil:
		return int64(0), nil
	case string:
		hay = []byte(v)
	case []byte:
		if len(v) == 0 || v[0] != packS2 {
			return nil, errPackedText
		}
		buf := unpacked.Get().(*[]byte)
		defer unpacked.Put(buf)
		n, err := s2.DecodedLen(v[1:])
		if err != nil {
			return nil, fmt.Errorf("gatehouse_text_contains: %w", err)
		}
		if cap(*buf) < n {
			*buf = make([]byte, n)
		}
		if hay, err = s2.Decode((*buf)[:n], v[1:]); err != nil {
			return nil, fmt.Errorf("gatehouse_text_contains: %w", err)
		}
	default:
		return nil, fmt.Errorf("gatehouse_text_contains: a %T", v)
	}
	foldBytes(hay)
	n := []byte(needle)
	foldBytes(n)
	if bytes.Contains(hay, n) {
		return int64(1), nil
	}
	return int64(0), nil
}

func init() {
	sqlite.MustRegisterDeterministicScalarFunction("gatehouse_text_contains", 2, textContains)
}

// foldBytes folds the ASCII capitals of b to lower case in place, eight bytes at a time: for each byte of a word,
// adding a constant to its low seven bits sets the high bit exactly when it is at least 'A' (or beyond 'Z'), and no
// sum carries into the next byte.
func foldBytes(b []byte) {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		low := x &^ highs
		upper := (low + (0x80-'A')*ones) &^ (low + (0x80-'Z'-1)*ones) &^ x & highs
		binary.LittleEndian.PutUint64(b[i:], x|upper>>2)
	}
	for ; i < len(b); i++ {
		b[i] = asciiFold[b[i]]
	}
}
