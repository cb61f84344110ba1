package store

import (
	"context"
	"fmt"
	"math/bits"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// TrailEntry is one recorded exchange in the trail index. Texts are redacted, as in the trail.
type TrailEntry struct {
	SessionID     string
	Seq           int64
	RequestID     string
	Started       time.Time
	DurationMS    float64
	UserID        string
	UserName      string
	TargetID      string
	TargetName    string
	ClientAddress string
	Method        string
	Scheme        string
	Host          string
	Path          string
	Query         string
	Status        int
	Decision      string
	Proto         string
	WebSocket     bool
	RequestText   string
	ResponseText  string
}

// RequestLine is what a keyword search sees besides the bodies: "METHOD host path?query".
func (e *TrailEntry) RequestLine() string {
	line := e.Method + " " + e.Host + e.Path
	if e.Query != "" {
		line += "?" + e.Query
	}
	return line
}

// TrailQuery selects index entries; zero fields match everything. Text matches are case-insensitive substrings.
type TrailQuery struct {
	SessionID     string
	UserID        string
	UserName      string
	TargetID      string
	TargetName    string
	ClientAddress string
	Method        string // exact, upper case
	Scheme        string
	Host          string
	PathPrefix    string // "/apis/apps" matches "/apis/apps" and "/apis/apps/v1/..."
	Status        int
	// SeqFrom and SeqTo bound the exchange sequence numbers within sessions, inclusive; 0 is open.
	SeqFrom, SeqTo int64
	Decision       string // prefix: "denied" matches every denial
	From, To       time.Time
	// Keywords is searched in the request line and both bodies; RequestText and ResponseText in one body only.
	Keywords, RequestText, ResponseText string
	Offset, Limit                       int
	// Ascending lists oldest first; the default is newest first.
	Ascending bool
}

// IndexExchanges adds entries to the trail index in one transaction. An entry already indexed (same session and
// sequence number) is left as it is, so a retried batch does not fail.
//
// The entries go in as multi-row INSERTs rather than one statement each: inside a transaction SQLite opens a
// statement savepoint for every statement that writes through a trigger, and FTS5 flushes its pending terms to a
// new segment at every savepoint, so one row per statement wrote one segment per exchange (and merged them again
// later), which was most of the index's cost.
func (s *Store) IndexExchanges(ctx context.Context, entries []TrailEntry) error {
	if len(entries) == 0 {
		return nil
	}
	return s.inTx(ctx, func(c conn) error {
		// SQLite: every row first, then every text index document in one statement. FTS5 writes its pending terms
		// to a new segment at each statement savepoint once it is part of the transaction, so a row INSERT after
		// a text index INSERT would cut the batch's segment in two (and double the merging later).
		var ids map[entryKey]int64
		if !s.pg {
			ids = make(map[entryKey]int64, len(entries))
		}
		all, texts := entries, storedTexts(entries)
		for from := 0; len(entries) > 0; {
			n := min(len(entries), indexRowsPerStatement)
			if !s.pg {
				n = 1 << (bits.Len(uint(min(n, sqliteRowsPerStatement))) - 1) // a power of two: few statement texts, each prepared once
				if from > 0 {
					// The index is background work: between statements, let the requests waiting for a processor
					// run rather than wait out a whole batch (about 20 us a row) behind it.
					runtime.Gosched()
				}
			}
			if err := s.indexRows(ctx, c, entries[:n], texts[from:from+n], ids); err != nil {
				return fmt.Errorf("index %d exchanges from %s/%d: %w", n, entries[0].SessionID, entries[0].Seq, err)
			}
			entries, from = entries[n:], from+n
		}
		if s.pg {
			return nil
		}
		return insertTerms(ctx, c, all, ids, func(i int) [3]string { return texts[i] })
	})
}

// indexRows inserts one statement's worth of entries; on SQLite it records the new rows' ids in ids.
func (s *Store) indexRows(ctx context.Context, c conn, entries []TrailEntry, texts [][3]string, ids map[entryKey]int64) error {
	if s.pg {
		_, err := c.exec(ctx, indexInsert(len(entries), true), indexArgs(entries, texts, false)...)
		return err
	}
	st, err := s.prepared(ctx, c, indexInsert(len(entries), false)+" RETURNING id, session_id, seq")
	if err != nil {
		return err
	}
	defer st.Close()
	rows, err := st.QueryContext(ctx, indexArgs(entries, texts, true)...)
	if err != nil {
		return mapErr(err)
	}
	for rows.Next() {
		var id int64
		var k entryKey
		if err := rows.Scan(&id, &k.session, &k.seq); err != nil {
			rows.Close()
			return err
		}
		ids[k] = id
	}
	rows.Close()
	return rows.Err()
}

// indexColumns are the columns IndexExchanges writes, in the order of indexArgs.
const indexColumns = `session_id, seq, request_id, started, duration_ms, user_id, user_name, target_id, target_name,
	client_address, method, scheme, host, path, query, status, decision, proto, websocket, request_line, request_text,
	response_text`

const indexColumnCount = 22

// indexRowsPerStatement keeps a statement's parameters (22 per row) well below both engines' limits (SQLite's
// 32,766, PostgreSQL's 65,535).
const indexRowsPerStatement = 128

// sqliteRowsPerStatement is smaller: a statement runs in one go, holding a processor for its rows.
const sqliteRowsPerStatement = 32

// indexInserts caches the statement text for each row count and engine.
var indexInserts sync.Map // indexInsertKey -> string

type indexInsertKey struct {
	rows int
	pg   bool
}

// indexInsert is the INSERT of rows entries. On SQLite the rows are marked as having their text index document,
// which IndexExchanges adds in the same transaction.
func indexInsert(rows int, pg bool) string {
	key := indexInsertKey{rows, pg}
	if q, ok := indexInserts.Load(key); ok {
		return q.(string)
	}
	cols, row := indexColumns, "(?"+strings.Repeat(",?", indexColumnCount-1)+")"
	if !pg {
		cols, row = cols+", terms_indexed", row[:len(row)-1]+",TRUE)"
	}
	q := "INSERT INTO trail_index (" + cols + ") VALUES " + row + strings.Repeat(","+row, rows-1) +
		" ON CONFLICT (session_id, seq) DO NOTHING"
	indexInserts.Store(key, q)
	return q
}

// storedTexts are the request line and bodies of each entry as the index stores them (indexText).
func storedTexts(entries []TrailEntry) [][3]string {
	texts := make([][3]string, len(entries))
	for i := range entries {
		e := &entries[i]
		texts[i] = [3]string{indexText(e.RequestLine()), indexText(e.RequestText), indexText(e.ResponseText)}
	}
	return texts
}

// indexArgs are the arguments of entries' rows, in the order of indexColumns; texts are their storedTexts, the
// bodies packed (packText) if pack.
func indexArgs(entries []TrailEntry, texts [][3]string, pack bool) []any {
	body := func(s string) any { return s }
	if pack {
		body = packText
	}
	args := make([]any, 0, len(entries)*indexColumnCount)
	var prev []any // the previous row's arguments
	// same reuses the previous row's boxed value of a column that repeats (the session's user, target and
	// address, the method, host, ...): boxing a string allocates, and a batch is mostly one session's exchanges.
	same := func(col int, v, was string) any {
		if prev != nil && v == was {
			return prev[col]
		}
		return v
	}
	for i := range entries {
		e := &entries[i]
		p := e
		if i > 0 {
			p = &entries[i-1]
		}
		row := len(args)
		args = append(args, same(0, e.SessionID, p.SessionID), e.Seq, e.RequestID, micros(e.Started), e.DurationMS,
			same(5, e.UserID, p.UserID), same(6, e.UserName, p.UserName), same(7, e.TargetID, p.TargetID),
			same(8, e.TargetName, p.TargetName), same(9, e.ClientAddress, p.ClientAddress), same(10, e.Method, p.Method),
			same(11, e.Scheme, p.Scheme), same(12, e.Host, p.Host), e.Path, e.Query, e.Status, same(16, e.Decision, p.Decision),
			same(17, e.Proto, p.Proto), e.WebSocket, texts[i][0], body(texts[i][1]), body(texts[i][2]))
		prev = args[row:]
	}
	return args
}

// indexText makes text storable in both engines: valid UTF-8 without NUL (PostgreSQL refuses NUL in text).
func indexText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, " ")
	}
	return strings.ReplaceAll(s, "\x00", " ")
}

const trailColumns = `t.session_id, t.seq, t.request_id, t.started, t.duration_ms, t.user_id, t.user_name, t.target_id,
	t.target_name, t.client_address, t.method, t.scheme, t.host, t.path, t.query, t.status, t.decision, t.proto, t.websocket,
	t.request_text, t.response_text`

// MinSearchText is the shortest text a search looks for: the trigram indexes of both engines serve needles of three
// characters or more, and a shorter one would scan every body.
const MinSearchText = 3

// MaxSearchText is the longest text a search looks for, in bytes: SQLite refuses LIKE patterns beyond 50,000 bytes,
// and no one searches a recorded body for more than a few lines of it.
const MaxSearchText = 10000

// MaxTrailCount bounds the match count a search computes: counting every match of a common word among millions of
// exchanges would cost more than the search itself, and "at least 10,000" is what a person needs to know.
const MaxTrailCount = 10000

// SearchTrails returns a page of index entries matching q, newest first unless q.Ascending, and how many match up
// to MaxTrailCount (exact reports that the count is not capped). Text searches on SQLite order by the order of
// indexing, which is the order exchanges were recorded in, so that the text index drives them.
func (s *Store) SearchTrails(ctx context.Context, q TrailQuery) (entries []TrailEntry, count int, exact bool, err error) {
	for _, t := range []string{q.Keywords, q.RequestText, q.ResponseText} {
		if t != "" && utf8.RuneCountInString(t) < MinSearchText {
			return nil, 0, false, &BadQueryError{Msg: fmt.Sprintf("text to search for needs at least %d characters", MinSearchText)}
		}
		if len(t) > MaxSearchText {
			return nil, 0, false, &BadQueryError{Msg: fmt.Sprintf("text to search for may have at most %d bytes", MaxSearchText)}
		}
	}
	sq := s.trailWhere(q)
	if s.pg {
		// An unnamed statement is planned with its parameters: a cached prepared statement would switch to a
		// generic plan after a few runs, and a generic ILIKE plan cannot tell a rare needle (trigram index) from
		// a common one (scan in time order).
		sq.args = append([]any{pgx.QueryExecModeExec}, sq.args...)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	if limit > MaxLimit {
		limit = MaxLimit
	}
	if q.Offset < 0 {
		return nil, 0, false, &BadQueryError{Param: "offset", Msg: "offset must not be negative"}
	}
	dir := "DESC"
	if q.Ascending {
		dir = "ASC"
	}
	if err := s.conn().queryRow(ctx, fmt.Sprintf(`SELECT COUNT(*) FROM (SELECT 1 FROM %s%s LIMIT %d) c`, sq.from, sq.where, MaxTrailCount+1),
		sq.args...).Scan(&count); err != nil {
		return nil, 0, false, fmt.Errorf("count trail index: %w", mapErr(err))
	}
	exact = count <= MaxTrailCount
	count = min(count, MaxTrailCount)
	order := sq.orderBy(dir)
	rows, err := s.conn().query(ctx, `SELECT `+trailColumns+` FROM `+sq.from+sq.where+
		fmt.Sprintf(` ORDER BY %s LIMIT %d OFFSET %d`, order, limit, q.Offset), sq.args...)
	if err != nil {
		return nil, 0, false, fmt.Errorf("search trail index: %w", err)
	}
	defer rows.Close()
	out := []TrailEntry{}
	for rows.Next() {
		var e TrailEntry
		var started int64
		if err := rows.Scan(&e.SessionID, &e.Seq, &e.RequestID, &started, &e.DurationMS, &e.UserID, &e.UserName, &e.TargetID,
			&e.TargetName, &e.ClientAddress, &e.Method, &e.Scheme, &e.Host, &e.Path, &e.Query, &e.Status, &e.Decision, &e.Proto,
			&e.WebSocket, storedText{&e.RequestText}, storedText{&e.ResponseText}); err != nil {
			return nil, 0, false, mapErr(err)
		}
		e.Started = fromMicros(started)
		out = append(out, e)
	}
	return out, count, exact, mapErr(rows.Err())
}

// trailSQL is a rendered query: FROM, WHERE and arguments, and whether the SQLite text index drives it.
type trailSQL struct {
	from, where string
	args        []any
	fts         bool
}

// orderBy is the ORDER BY of a search in direction dir (ASC or DESC): by time, or in the order of indexing when the
// text index drives it (the order of its blocks, then of the rows in a block).
func (sq trailSQL) orderBy(dir string) string {
	if sq.fts {
		return `f.b ` + dir + `, t.id ` + dir
	}
	return fmt.Sprintf(`t.started %s, t.id %s`, dir, dir)
}

// trailWhere renders q. Text conditions use the engine's trigram index: FTS5 MATCH in SQLite, ILIKE over pg_trgm in
// PostgreSQL.
func (s *Store) trailWhere(q TrailQuery) trailSQL {
	var conds []string
	var args []any
	eq := func(col, v string) {
		if v != "" {
			conds = append(conds, `t.`+col+` = ?`)
			args = append(args, v)
		}
	}
	eq("session_id", q.SessionID)
	eq("user_id", q.UserID)
	eq("user_name", q.UserName)
	eq("target_id", q.TargetID)
	eq("target_name", q.TargetName)
	eq("client_address", q.ClientAddress)
	eq("method", q.Method)
	eq("scheme", q.Scheme)
	eq("host", q.Host)
	if q.SeqFrom > 0 {
		conds = append(conds, `t.seq >= ?`)
		args = append(args, q.SeqFrom)
	}
	if q.SeqTo > 0 {
		conds = append(conds, `t.seq <= ?`)
		args = append(args, q.SeqTo)
	}
	if q.PathPrefix != "" {
		// Case-sensitive on both engines, as paths are; written so that an index on (method, path) serves it.
		p := strings.TrimSuffix(q.PathPrefix, "/")
		if s.pg {
			conds = append(conds, `(t.path = ? OR t.path LIKE ?)`) // backslash is PostgreSQL's default LIKE escape
			args = append(args, p, likeEscape(p)+"/%")
		} else {
			// The range [p, p+"0") ('0' follows '/') is what the index on (method, path, started) serves; the
			// second condition keeps p itself and p/... out of what the range also holds (p-x, p.x).
			conds = append(conds, `t.path >= ? AND t.path < ? AND (t.path = ? OR t.path >= ?)`)
			args = append(args, p, p+"0", p, p+"/")
		}
	}
	if q.Status != 0 {
		conds = append(conds, `t.status = ?`)
		args = append(args, q.Status)
	}
	if q.Decision != "" {
		conds = append(conds, `t.decision LIKE ? ESCAPE '\'`)
		args = append(args, likeEscape(q.Decision)+"%")
	}
	if !q.From.IsZero() {
		conds = append(conds, `t.started >= ?`)
		args = append(args, micros(q.From))
	}
	if !q.To.IsZero() {
		conds = append(conds, `t.started <= ?`)
		args = append(args, micros(q.To))
	}
	var match []string
	for _, t := range []struct {
		text string
		cols []string
	}{
		{q.Keywords, []string{"request_line", "request_text", "response_text"}},
		{q.RequestText, []string{"request_text"}},
		{q.ResponseText, []string{"response_text"}},
	} {
		switch {
		case t.text == "":
		case !s.pg:
			// The text index finds the rows holding every trigram of the needle in one of the columns (see
			// trailterms.go); the stored text then decides, case-insensitively for ASCII letters as the index folds.
			for _, w := range needleTerms(termResponse, t.text) {
				var alts []string
				for _, c := range t.cols {
					alts = append(alts, string(termColumn[c])+w[1:])
				}
				match = append(match, "("+strings.Join(alts, " OR ")+")")
			}
			var ors []string
			for _, c := range t.cols {
				// ASCII case-insensitive either way; LIKE without a copy of the text.
				if c == "request_line" {
					ors = append(ors, `t.`+c+` LIKE ? ESCAPE '\'`)
				} else {
					ors = append(ors, `(CASE WHEN typeof(t.`+c+`) = 'blob' THEN gatehouse_text_contains(t.`+c+`, ?) ELSE t.`+c+` LIKE ? ESCAPE '\' END)`)
					args = append(args, t.text)
				}
				args = append(args, "%"+likeEscape(t.text)+"%")
			}
			conds = append(conds, "("+strings.Join(ors, " OR ")+")")
		default:
			var ors []string
			for _, c := range t.cols {
				ors = append(ors, `t.`+c+` ILIKE ?`)
				args = append(args, "%"+likeEscape(t.text)+"%")
			}
			conds = append(conds, "("+strings.Join(ors, " OR ")+")")
		}
	}
	sq := trailSQL{from: "trail_index t", args: args}
	if len(match) > 0 {
		// The text index drives the search in rowid order, so a common word stops at the page instead of
		// collecting every match first.
		sq.fts = true
		sq.from = blockJoin(q.Ascending)
		sq.args = append([]any{strings.Join(match, " AND ")}, args...)
	}
	if len(conds) > 0 {
		sq.where = " WHERE " + strings.Join(conds, " AND ")
	}
	return sq
}

// termColumn is the letter of each searchable column in the SQLite text index.
var termColumn = map[string]byte{"request_line": termLine, "request_text": termRequest, "response_text": termResponse}

// likeEscape escapes LIKE's wildcards and its escape character.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// DeleteTrailIndex removes the index entries of the given sessions.
func (s *Store) DeleteTrailIndex(ctx context.Context, sessionIDs []string) error {
	if len(sessionIDs) == 0 {
		return nil
	}
	_, err := s.conn().exec(ctx, `DELETE FROM trail_index WHERE session_id IN (?`+strings.Repeat(",?", len(sessionIDs)-1)+`)`, anys(sessionIDs)...)
	if err != nil {
		return fmt.Errorf("delete trail index: %w", err)
	}
	return nil
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
