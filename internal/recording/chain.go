package recording

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
)

const (
	macPrefix = `,"mac":"`
	macSuffix = `"}`
	// macTrailerLen is the length of `,"mac":"<64 hex>"}`.
	macTrailerLen = len(macPrefix) + 2*sha256.Size + len(macSuffix)
)

// errBadLine is wrapped by every parseLine failure.
var errBadLine = errors.New("malformed trail line")

// parsedLine is a trail line split into its record, the exact bytes the MAC
// covers and the MAC it claims.
type parsedLine struct {
	rec  record
	body []byte
	mac  [sha256.Size]byte
	prev [sha256.Size]byte
}

// encodeLine returns the trail line (with newline) for rec chained to prev,
// and the line's MAC.
func encodeLine(key []byte, prev [sha256.Size]byte, rec *record) ([]byte, [sha256.Size]byte, error) {
	return encodeLineMAC(hmac.New(sha256.New, key), prev, rec)
}

// encodeLineMAC is encodeLine with a keyed HMAC the caller reuses (a trail's
// writer keeps one, instead of keying a new one for every record).
func encodeLineMAC(h hash.Hash, prev [sha256.Size]byte, rec *record) ([]byte, [sha256.Size]byte, error) {
	return appendLineMAC(nil, h, prev, rec)
}

// appendLineMAC is encodeLineMAC appending to dst (a writer reuses its buffer). Exchange records, one per
// request, go through appendExchangeRecord, which writes what json.Marshal would without reflection.
func appendLineMAC(dst []byte, h hash.Hash, prev [sha256.Size]byte, rec *record) ([]byte, [sha256.Size]byte, error) {
	start := len(dst)
	ok := false
	if rec.Kind == KindExchange && rec.Exchange != nil && rec.Open == nil && rec.Close == nil && rec.Interrupted == nil {
		dst, ok = appendExchangeRecord(dst, rec, prev)
	}
	if !ok {
		rec.Prev = hex.EncodeToString(prev[:])
		body, err := json.Marshal(rec)
		if err != nil {
			return nil, [sha256.Size]byte{}, fmt.Errorf("encode trail record: %w", err)
		}
		dst = append(dst[:start], body...)
	}
	// The MAC's input and output go through dst's spare capacity, past the line: arrays of the stack given to
	// h, an interface, would each be moved to the heap.
	mac := sumMACIn(h, prev, dst[start:], dst[len(dst):])
	dst = dst[:len(dst)-1] // the closing brace comes after the MAC
	dst = append(dst, macPrefix...)
	dst = hex.AppendEncode(dst, mac[:])
	dst = append(dst, macSuffix...)
	dst = append(dst, '\n')
	return dst, mac, nil
}

func computeMAC(key []byte, prev [sha256.Size]byte, body []byte) [sha256.Size]byte {
	return sumMAC(hmac.New(sha256.New, key), prev, body)
}

// sumMAC resets h (a keyed HMAC-SHA256) and returns its MAC of prev and body.
func sumMAC(h hash.Hash, prev [sha256.Size]byte, body []byte) [sha256.Size]byte {
	return sumMACIn(h, prev, body, nil)
}

// sumMACIn is sumMAC using scratch's capacity (which must not overlap body) for what it hands to h; it
// allocates only when scratch has less than sha256.Size bytes of room.
func sumMACIn(h hash.Hash, prev [sha256.Size]byte, body, scratch []byte) [sha256.Size]byte {
	h.Reset()
	scratch = append(scratch[:0], prev[:]...)
	h.Write(scratch)
	h.Write(body)
	var mac [sha256.Size]byte
	copy(mac[:], h.Sum(scratch[:0]))
	return mac
}

// checkMAC reports whether p's MAC is valid under key. It compares in
// constant time even though a MAC is not a secret, so that no one has to
// reason about whether a timing side channel matters here.
func (p *parsedLine) checkMAC(key []byte) bool {
	want := computeMAC(key, p.prev, p.body)
	return hmac.Equal(want[:], p.mac[:])
}

// parseLine splits one trail line (without its newline) into record, body and
// MAC. It checks the shape only; checkMAC checks authenticity.
func parseLine(line []byte) (parsedLine, error) {
	var p parsedLine
	n := len(line)
	if n < macTrailerLen+2 || line[0] != '{' {
		return p, fmt.Errorf("parse trail line: %w: too short", errBadLine)
	}
	trailer := line[n-macTrailerLen:]
	if !bytes.HasPrefix(trailer, []byte(macPrefix)) || !bytes.HasSuffix(trailer, []byte(macSuffix)) {
		return p, fmt.Errorf("parse trail line: %w: no mac trailer", errBadLine)
	}
	macHex := trailer[len(macPrefix) : len(trailer)-len(macSuffix)]
	if !isLowerHex(macHex) {
		return p, fmt.Errorf("parse trail line: %w: mac is not lowercase hex", errBadLine)
	}
	hex.Decode(p.mac[:], macHex)

	p.body = make([]byte, 0, n-macTrailerLen+1)
	p.body = append(p.body, line[:n-macTrailerLen]...)
	p.body = append(p.body, '}')
	if err := json.Unmarshal(p.body, &p.rec); err != nil {
		return p, fmt.Errorf("parse trail line: %w: %w", errBadLine, err)
	}
	if !isLowerHex([]byte(p.rec.Prev)) || len(p.rec.Prev) != 2*sha256.Size {
		return p, fmt.Errorf("parse trail line: %w: bad prev", errBadLine)
	}
	hex.Decode(p.prev[:], []byte(p.rec.Prev))
	if err := p.rec.checkKind(); err != nil {
		return p, fmt.Errorf("parse trail line: %w: %w", errBadLine, err)
	}
	return p, nil
}

// checkKind requires exactly the payload that the kind names.
func (r *record) checkKind() error {
	var set int
	for _, present := range []bool{r.Open != nil, r.Exchange != nil, r.Close != nil, r.Interrupted != nil} {
		if present {
			set++
		}
	}
	var ok bool
	switch r.Kind {
	case KindOpen:
		ok = r.Open != nil
	case KindExchange:
		ok = r.Exchange != nil
	case KindClose:
		ok = r.Close != nil
	case KindInterrupted:
		ok = r.Interrupted != nil
	default:
		return fmt.Errorf("unknown kind %q", r.Kind)
	}
	if !ok || set != 1 {
		return fmt.Errorf("kind %q without its payload", r.Kind)
	}
	return nil
}

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
