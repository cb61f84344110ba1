package store

import (
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// SQLite's text index (migrations 00028, 00043) holds, for each block of trail index rows, every distinct trigram of
// their texts once, as a word: a column letter and the hex of the trigram with ASCII letters folded to lower case. Counting
// each trigram once instead of every occurrence, and doing it in Go, is what makes indexing a 64 KiB body cheap
// (the FTS5 trigram tokenizer spent milliseconds per body in the pure-Go SQLite). A search asks the index for the
// blocks holding every trigram of the needle and checks the needle against their rows' stored texts, so it stays
// exact.
const (
	termLine     = 'l' // request_line
	termRequest  = 'q' // request_text
	termResponse = 'r' // response_text
)

// maxNeedleTerms bounds the trigrams of a needle the index is asked for: any of them narrow the rows down, and the
// check against the stored text makes the answer exact whatever was left out.
const maxNeedleTerms = 16

// termSet gathers the distinct trigrams of a text. A trigram of three ASCII characters, the common case, is a bit
// in a bitmap of all 2^21 of them; any other goes in a map.
type termSet struct {
	bits  *[1 << 21 / 64]uint64
	set   []uint32 // the bits set, to clear them for the next text
	other map[string]struct{}
	buf   []byte // blockTerms' words, reused
}

var termSets = sync.Pool{New: func() any {
	return &termSet{bits: new([1 << 21 / 64]uint64), other: make(map[string]struct{})}
}}

// asciiFold is foldASCII of every byte (a table of 256, so that indexing it needs no bounds check).
var asciiFold = func() (t [256]byte) {
	for c := range t {
		t[c] = foldASCII(byte(c))
	}
	return t
}()

func foldASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// appendTerms appends the words of text's distinct trigrams (three characters), each followed by a space.
func (ts *termSet) appendTerms(dst []byte, col byte, text string) []byte {
	defer ts.reset()
	return ts.add(dst, col, text)
}

// add appends the words of the trigrams of text not in the set yet and adds them to it: called for several texts
// before a reset, it makes the words of their union.
func (ts *termSet) add(dst []byte, col byte, text string) []byte {
	// k rolls over an ASCII run: while rolling, its low 14 bits are the folded text[i] and text[i+1], so each
	// window costs one new character (bodies are mostly ASCII, and a 64 KiB body is 64 Ki windows).
	var k uint32
	rolling := false
	bits := ts.bits
	for i := 0; i+2 < len(text); i++ {
		c2 := text[i+2]
		if !rolling && c2 < utf8.RuneSelf && text[i]|text[i+1] < utf8.RuneSelf {
			k, rolling = uint32(asciiFold[text[i]])<<7|uint32(asciiFold[text[i+1]]), true
		}
		if rolling && c2 < utf8.RuneSelf {
			k = (k<<7 | uint32(asciiFold[c2])) & (1<<21 - 1)
			if bits[k/64]&(1<<(k%64)) != 0 {
				continue
			}
			bits[k/64] |= 1 << (k % 64)
			ts.set = append(ts.set, k)
			a, b, c := byte(k>>14), byte(k>>7&0x7f), byte(k&0x7f)
			dst = append(dst, col, hexDigit(a>>4), hexDigit(a), hexDigit(b>>4), hexDigit(b), hexDigit(c>>4), hexDigit(c), ' ')
			continue
		}
		rolling = false
		if !utf8.RuneStart(text[i]) {
			continue // inside a character; its window starts at its first byte
		}
		end := i
		for range 3 {
			if end >= len(text) {
				return dst // fewer than three characters left
			}
			_, size := utf8.DecodeRuneInString(text[end:])
			end += size
		}
		var fb [3 * utf8.UTFMax]byte
		f := fb[:0]
		for _, c := range []byte(text[i:end]) {
			f = append(f, foldASCII(c))
		}
		if _, ok := ts.other[string(f)]; ok {
			continue
		}
		ts.other[string(f)] = struct{}{}
		dst = append(dst, col)
		dst = hex.AppendEncode(dst, f)
		dst = append(dst, ' ')
	}
	return dst
}

// hexDigit is the lower-case hex digit of the low four bits of b.
func hexDigit(b byte) byte { return "0123456789abcdef"[b&15] }

func (ts *termSet) reset() {
	for _, k := range ts.set {
		ts.bits[k/64] &^= 1 << (k % 64)
	}
	ts.set = ts.set[:0]
	clear(ts.other)
}

// blockTerms is the text index document of a block of entries: the words of the distinct trigrams of their request
// lines and bodies, as stored (indexText), column by column.
func blockTerms(texts [][3]string) string {
	ts := termSets.Get().(*termSet)
	defer termSets.Put(ts)
	// Up to eight bytes of words per character of text; large texts repeat trigrams, so growing past 32 KiB is rare.
	size := 0
	for _, t := range texts {
		size += len(t[0]) + len(t[1]) + len(t[2])
	}
	b := ts.buf[:0]
	if need := min(8*size, 32<<10); cap(b) < need {
		b = make([]byte, 0, need)
	}
	for col, letter := range [3]byte{termLine, termRequest, termResponse} {
		for j, t := range texts {
			if j > 0 && t[col] == texts[j-1][col] {
				continue // the same request line or body again (an API polled): its trigrams are in already
			}
			b = ts.add(b, letter, t[col])
		}
		ts.reset()
	}
	if cap(b) <= 64<<10 {
		ts.buf = b // pooled with the set, for the next block
	}
	return string(b)
}

// needleTerms returns the words of needle's distinct trigrams in column col, at most maxNeedleTerms of them.
func needleTerms(col byte, needle string) []string {
	ts := termSets.Get().(*termSet)
	defer termSets.Put(ts)
	words := strings.Fields(string(ts.appendTerms(nil, col, indexText(needle))))
	return words[:min(len(words), maxNeedleTerms)]
}

// Blocks of the SQLite text index (migration 00043): a document holds the trigrams of up to blockRows rows with
// consecutive ids, and its rowid names them: first id * blockRows + (count - 1).
const blockRows = 16

// blockRowid is the text index rowid of the block of count rows from id first.
func blockRowid(first int64, count int) int64 { return first*blockRows + int64(count-1) }

// blockJoin is the FROM of a text search: the blocks matching the text index query (the first argument), in rowid
// order, joined to the rows each covers (blockRowid). The blocks come from an ordered subquery so that the
// search's ORDER BY (block, then row) sorts only within a block and a page stops early; NOT INDEXED keeps the
// rows a range of each block's ids rather than, say, every DELETE for every block.
func blockJoin(ascending bool) string {
	dir := "DESC"
	if ascending {
		dir = "ASC"
	}
	return "(SELECT rowid AS b FROM trail_index_blocks WHERE trail_index_blocks MATCH ? ORDER BY rowid " + dir + " LIMIT -1) f " +
		"JOIN trail_index t NOT INDEXED ON t.id BETWEEN f.b / 16 AND f.b / 16 + f.b % 16"
}

// insertTerms adds the text index documents of entries, which were inserted as the rows ids (by session and seq);
// texts returns the stored request line and bodies of entry i. Rows with consecutive ids share a document, up to
// blockRows of them.
func insertTerms(ctx context.Context, c conn, entries []TrailEntry, ids map[entryKey]int64, texts func(i int) [3]string) error {
	type row struct {
		id int64
		i  int
	}
	rows := make([]row, 0, len(entries))
	for i := range entries {
		k := entryKey{entries[i].SessionID, entries[i].Seq}
		id, ok := ids[k]
		if !ok {
			continue // indexed before (a retried batch), or twice in this batch
		}
		delete(ids, k)
		rows = append(rows, row{id, i})
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(a.id, b.id) })
	var args []any
	var block [][3]string
	for start := 0; start < len(rows); {
		end := start + 1
		for end < len(rows) && end-start < blockRows && rows[end].id == rows[end-1].id+1 {
			end++
		}
		block = block[:0]
		for _, r := range rows[start:end] {
			block = append(block, texts(r.i))
		}
		args = append(args, blockRowid(rows[start].id, end-start), blockTerms(block))
		start = end
	}
	for len(args) > 0 {
		n := min(len(args), 2*blockInsertRows)
		q := "INSERT INTO trail_index_blocks (rowid, terms) VALUES (?,?)" + strings.Repeat(",(?,?)", n/2-1)
		if _, err := c.exec(ctx, q, args[:n]...); err != nil {
			return fmt.Errorf("index the text of %d exchanges: %w", len(rows), err)
		}
		args = args[n:]
	}
	return nil
}

// blockInsertRows bounds the documents of one INSERT (two parameters each, far below SQLite's 32,766).
const blockInsertRows = 1000

type entryKey struct {
	session string
	seq     int64
}

// indexMissingTerms gives the rows indexed before migration 00043 their text index documents. It runs when a
// SQLite store opens and does nothing once every row has them.
func (s *Store) indexMissingTerms(ctx context.Context) error {
	if s.pg {
		return nil
	}
	var total int
	if err := s.conn().queryRow(ctx, `SELECT COUNT(*) FROM trail_index WHERE NOT terms_indexed`).Scan(&total); err != nil {
		return fmt.Errorf("index trail text: %w", err)
	}
	if total == 0 {
		return nil
	}
	// A store upgraded with many recorded exchanges spends a while here before it serves: say so, and how far.
	s.log.Info("indexing the text of trail index entries recorded before the text index changed; the server starts when this is done", "entries", total)
	start, lastLog, done := time.Now(), time.Now(), 0
	for {
		var entries []TrailEntry
		ids := map[entryKey]int64{}
		rows, err := s.conn().query(ctx, `SELECT id, session_id, seq, method, host, path, query, request_text, response_text
			FROM trail_index WHERE NOT terms_indexed ORDER BY id LIMIT 512`)
		if err != nil {
			return fmt.Errorf("index trail text: %w", err)
		}
		for rows.Next() {
			var e TrailEntry
			var id int64
			if err := rows.Scan(&id, &e.SessionID, &e.Seq, &e.Method, &e.Host, &e.Path, &e.Query, storedText{&e.RequestText}, storedText{&e.ResponseText}); err != nil {
				rows.Close()
				return fmt.Errorf("index trail text: %w", err)
			}
			ids[entryKey{e.SessionID, e.Seq}] = id
			entries = append(entries, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("index trail text: %w", err)
		}
		if len(entries) == 0 {
			s.log.Info("indexed the text of trail index entries recorded before the text index changed", "entries", done,
				"seconds", time.Since(start).Round(time.Millisecond).Seconds())
			return nil
		}
		idList := make([]any, 0, len(ids))
		for _, id := range ids {
			idList = append(idList, id)
		}
		err = s.inTx(ctx, func(c conn) error {
			texts := storedTexts(entries) // as IndexExchanges stored them
			if err := insertTerms(ctx, c, entries, ids, func(i int) [3]string { return texts[i] }); err != nil {
				return err
			}
			_, err := c.exec(ctx, `UPDATE trail_index SET terms_indexed = TRUE WHERE id IN (?`+strings.Repeat(",?", len(idList)-1)+`)`, idList...)
			return err
		})
		if err != nil {
			return fmt.Errorf("index trail text: %w", err)
		}
		done += len(entries)
		if time.Since(lastLog) >= 10*time.Second {
			lastLog = time.Now()
			s.log.Info("indexing the text of older trail index entries", "done", done, "of", total)
		}
	}
}
