package store

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
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
func (s *Store) IndexExchanges(ctx context.Context, entries []TrailEntry) error {
	if len(entries) == 0 {
		return nil
	}
	return s.inTx(ctx, func(c conn) error {
		for i := range entries {
			e := &entries[i]
			if _, err := c.exec(ctx, `INSERT INTO trail_index (session_id, seq, request_id, started, duration_ms, user_id, user_name,
				target_id, target_name, client_address, method, scheme, host, path, query, status, decision, proto, websocket,
				request_line, request_text, response_text) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
				ON CONFLICT (session_id, seq) DO NOTHING`,
				e.SessionID, e.Seq, e.RequestID, micros(e.Started), e.DurationMS, e.UserID, e.UserName, e.TargetID, e.TargetName,
				e.ClientAddress, e.Method, e.Scheme, e.Host, e.Path, e.Query, e.Status, e.Decision, e.Proto, e.WebSocket,
				indexText(e.RequestLine()), indexText(e.RequestText), indexText(e.ResponseText)); err != nil {
				return fmt.Errorf("index exchange %s/%d: %w", e.SessionID, e.Seq, err)
			}
		}
		return nil
	})
}

// indexText makes text storable in both engines: valid UTF-8 without NUL (PostgreSQL refuses NUL in text).
func indexText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, " ")
	}
	return strings.ReplaceAll(s, "\x00", " ")
}

const trailColumns = `session_id, seq, request_id, started, duration_ms, user_id, user_name, target_id, target_name, client_address,
	method, scheme, host, path, query, status, decision, proto, websocket, request_text, response_text`

// SearchTrails returns a page of index entries matching q, newest first unless q.Ascending, and how many match.
func (s *Store) SearchTrails(ctx context.Context, q TrailQuery) ([]TrailEntry, int, error) {
	where, args := s.trailWhere(q)
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	if limit > MaxLimit {
		limit = MaxLimit
	}
	if q.Offset < 0 {
		return nil, 0, fmt.Errorf("%w: offset must not be negative", ErrBadQuery)
	}
	dir := "DESC"
	if q.Ascending {
		dir = "ASC"
	}
	var total int
	if err := s.conn().queryRow(ctx, `SELECT COUNT(*) FROM trail_index`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count trail index: %w", mapErr(err))
	}
	rows, err := s.conn().query(ctx, `SELECT `+trailColumns+` FROM trail_index`+where+
		fmt.Sprintf(` ORDER BY started %s, id %s LIMIT %d OFFSET %d`, dir, dir, limit, q.Offset), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("search trail index: %w", err)
	}
	defer rows.Close()
	out := []TrailEntry{}
	for rows.Next() {
		var e TrailEntry
		var started int64
		if err := rows.Scan(&e.SessionID, &e.Seq, &e.RequestID, &started, &e.DurationMS, &e.UserID, &e.UserName, &e.TargetID,
			&e.TargetName, &e.ClientAddress, &e.Method, &e.Scheme, &e.Host, &e.Path, &e.Query, &e.Status, &e.Decision, &e.Proto,
			&e.WebSocket, &e.RequestText, &e.ResponseText); err != nil {
			return nil, 0, mapErr(err)
		}
		e.Started = fromMicros(started)
		out = append(out, e)
	}
	return out, total, mapErr(rows.Err())
}

// trailWhere renders q as a WHERE clause. Text conditions use the engine's trigram index: FTS5 MATCH in SQLite
// (for needles of three characters or more; shorter ones scan with LIKE), ILIKE over pg_trgm in PostgreSQL.
func (s *Store) trailWhere(q TrailQuery) (string, []any) {
	var conds []string
	var args []any
	eq := func(col, v string) {
		if v != "" {
			conds = append(conds, col+` = ?`)
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
		conds = append(conds, `seq >= ?`)
		args = append(args, q.SeqFrom)
	}
	if q.SeqTo > 0 {
		conds = append(conds, `seq <= ?`)
		args = append(args, q.SeqTo)
	}
	if q.PathPrefix != "" {
		p := strings.TrimSuffix(q.PathPrefix, "/")
		conds = append(conds, `(path = ? OR path LIKE ? ESCAPE '\')`)
		args = append(args, p, likeEscape(p)+"/%")
	}
	if q.Status != 0 {
		conds = append(conds, `status = ?`)
		args = append(args, q.Status)
	}
	if q.Decision != "" {
		conds = append(conds, `decision LIKE ? ESCAPE '\'`)
		args = append(args, likeEscape(q.Decision)+"%")
	}
	if !q.From.IsZero() {
		conds = append(conds, `started >= ?`)
		args = append(args, micros(q.From))
	}
	if !q.To.IsZero() {
		conds = append(conds, `started <= ?`)
		args = append(args, micros(q.To))
	}
	for _, t := range []struct {
		text string
		cols []string
	}{
		{q.Keywords, []string{"request_line", "request_text", "response_text"}},
		{q.RequestText, []string{"request_text"}},
		{q.ResponseText, []string{"response_text"}},
	} {
		if t.text == "" {
			continue
		}
		c, a := s.textCond(t.text, t.cols)
		conds = append(conds, c)
		args = append(args, a...)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

func (s *Store) textCond(text string, cols []string) (string, []any) {
	pat := "%" + likeEscape(text) + "%"
	if s.pg || utf8.RuneCountInString(text) < 3 {
		var ors []string
		var args []any
		for _, c := range cols {
			op := "LIKE" // SQLite's LIKE is case-insensitive for ASCII
			if s.pg {
				op = "ILIKE"
			}
			ors = append(ors, c+` `+op+` ? ESCAPE '\'`)
			args = append(args, pat)
		}
		return "(" + strings.Join(ors, " OR ") + ")", args
	}
	// An FTS5 phrase is a quoted string with quotes doubled; with the trigram tokenizer it matches any row whose
	// column contains the text, case-insensitively.
	match := "{" + strings.Join(cols, " ") + "} : \"" + strings.ReplaceAll(text, `"`, `""`) + "\""
	return `id IN (SELECT rowid FROM trail_index_text WHERE trail_index_text MATCH ?)`, []any{match}
}

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
