package recording

import (
	"bytes"
	"crypto/sha256"
	"net/http"
	"testing"
)

func FuzzParseLine(f *testing.F) {
	var zero [sha256.Size]byte
	for _, rec := range []*record{
		{N: 1, Kind: KindOpen, Time: t0, Open: &SessionMeta{SessionID: "s", User: "u"}},
		{N: 2, Kind: KindExchange, Time: t0, Exchange: &Exchange{Seq: 1, Method: "GET", URL: "https://h/", RequestBody: []byte{0, 1}, RequestHeaders: http.Header{"A": {"b"}}}},
		{N: 3, Kind: KindClose, Time: t0, Close: &CloseInfo{Reason: "idle"}},
		{N: 4, Kind: KindInterrupted, Time: t0, Interrupted: &InterruptInfo{Reason: "crash", TornBytes: 9}},
	} {
		line, _, err := encodeLine(testKey, zero, rec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(bytes.TrimSuffix(line, []byte("\n")))
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"kind":"open","mac":"00"}`))
	f.Add([]byte(`{"n":1,"kind":"close","prev":"` + string(bytes.Repeat([]byte("0"), 64)) + `","mac":"` + string(bytes.Repeat([]byte("a"), 64)) + `"}`))
	f.Add([]byte("garbage"))

	f.Fuzz(func(t *testing.T, line []byte) {
		p, err := parseLine(line)
		if err != nil {
			return
		}
		if err := p.rec.checkKind(); err != nil {
			t.Fatalf("parsed a line with an inconsistent kind: %v", err)
		}
		if !bytes.HasPrefix(line, p.body[:len(p.body)-1]) {
			t.Fatal("MAC input is not a prefix of the line")
		}
		// Re-encoding what was parsed must verify, whatever the input was.
		again, _, err := encodeLine(testKey, p.prev, &p.rec)
		if err != nil {
			return // e.g. a time that does not marshal
		}
		q, err := parseLine(bytes.TrimSuffix(again, []byte("\n")))
		if err != nil || !q.checkMAC(testKey) {
			t.Fatalf("re-encoded line does not parse and verify: %v", err)
		}
	})
}

func FuzzRedactor(f *testing.F) {
	f.Add([]byte("token=abc123&x=1"), []byte("abc123"), []byte("zz"), 8)
	f.Add([]byte("aaaaaaaa"), []byte("aa"), []byte("a"), 3)
	f.Add([]byte("xabcdefx"), []byte("abcd"), []byte("cdef"), 5)
	f.Add([]byte("s%2Fx"), []byte("s/x"), []byte(""), -1)
	f.Add([]byte(""), []byte("q"), []byte("r"), 0)

	f.Fuzz(func(t *testing.T, data, s1, s2 []byte, limit int) {
		limit %= 1 << 12
		r := &Redactor{Secrets: [][]byte{s1, s2}}
		captured := data
		if limit >= 0 {
			captured = data[:min(len(data), limit+r.Slack())]
		}
		out, cut := r.Truncate(captured, limit)
		if limit >= 0 && len(out) > limit {
			t.Fatalf("%d bytes out, limit %d", len(out), limit)
		}
		if limit >= 0 && len(data) > limit && len(out) == len(data) && !cut && !bytes.Equal(out, data) {
			t.Fatal("changed body not reported as cut or redacted")
		}
		for _, s := range [][]byte{s1, s2} {
			// A secret that overlaps the replacement text could be
			// re-formed by it; real secrets do not look like "[REDACTED]".
			if len(s) == 0 || bytes.ContainsAny(s, Redacted) {
				continue
			}
			if bytes.Contains(out, s) {
				t.Fatalf("secret %q survives in %q", s, out)
			}
		}
	})
}
