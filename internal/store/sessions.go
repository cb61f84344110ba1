package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Session statuses.
const (
	SessionConnected    = "CONNECTED"
	SessionDisconnected = "DISCONNECTED"
	SessionTerminated   = "TERMINATED"
	SessionUnauthorized = "UNAUTHORIZED"
)

// APISession is one API session of the proxy as stored.
type APISession struct {
	ID                string    `json:"id"`
	Key               string    `json:"-"`
	UserID            string    `json:"-"`
	UserName          string    `json:"-"`
	TargetID          string    `json:"-"`
	TargetName        string    `json:"-"`
	CredentialID      string    `json:"-"`
	CredentialName    string    `json:"-"`
	ClientAddress     string    `json:"client_address"`
	Status            string    `json:"status"`
	TerminationReason string    `json:"termination_reason"`
	Connected         time.Time `json:"connected"`
	Disconnected      time.Time `json:"-"`
	LastActivity      time.Time `json:"last_activity"`
	Requests          int64     `json:"requests"`
	BytesIn           int64     `json:"bytes_in"`
	BytesOut          int64     `json:"bytes_out"`
	AuditEnabled      bool      `json:"audit_enabled"`
	TrailHead         string    `json:"-"`
	TrailRecords      int64     `json:"-"`
	// NodeID is the node serving the session; only it holds the session's in-flight requests and open trail.
	NodeID string `json:"-"`
	// ConnectionPolicy is the key of the configuration API connection policy that admitted the session, "" if none.
	ConnectionPolicy string `json:"-"`
	// LegalHold keeps the session, its trail and its index entries from retention; LegalHoldReason says why.
	LegalHold       bool   `json:"-"`
	LegalHoldReason string `json:"-"`
}

const sessionColumns = `id, session_key, user_id, user_name, target_id, target_name, credential_id, credential_name, client_address, status, termination_reason, connected, disconnected, last_activity, requests, bytes_in, bytes_out, audit_enabled, trail_head, trail_records, node_id, connection_policy, legal_hold, legal_hold_reason`

func scanSession(row interface{ Scan(...any) error }) (*APISession, error) {
	var s APISession
	var connected, disconnected, last int64
	if err := row.Scan(&s.ID, &s.Key, &s.UserID, &s.UserName, &s.TargetID, &s.TargetName, &s.CredentialID, &s.CredentialName,
		&s.ClientAddress, &s.Status, &s.TerminationReason, &connected, &disconnected, &last, &s.Requests, &s.BytesIn,
		&s.BytesOut, &s.AuditEnabled, &s.TrailHead, &s.TrailRecords, &s.NodeID, &s.ConnectionPolicy, &s.LegalHold, &s.LegalHoldReason); err != nil {
		return nil, mapErr(err)
	}
	s.Connected, s.Disconnected, s.LastActivity = fromMicros(connected), fromMicros(disconnected), fromMicros(last)
	return &s, nil
}

// InsertSession stores a newly opened session.
func (s *Store) InsertSession(ctx context.Context, a *APISession) error {
	_, err := s.conn().exec(ctx, `INSERT INTO api_sessions (`+sessionColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		a.ID, a.Key, a.UserID, a.UserName, a.TargetID, a.TargetName, a.CredentialID, a.CredentialName, a.ClientAddress,
		a.Status, a.TerminationReason, micros(a.Connected), micros(a.Disconnected), micros(a.LastActivity), a.Requests,
		a.BytesIn, a.BytesOut, a.AuditEnabled, a.TrailHead, a.TrailRecords, a.NodeID, a.ConnectionPolicy, a.LegalHold, a.LegalHoldReason)
	if err != nil {
		return fmt.Errorf("insert session: %w", err)
	}
	return nil
}

// SessionActivity is a batched counter update.
type SessionActivity struct {
	ID                          string
	LastActivity                time.Time
	Requests, BytesIn, BytesOut int64
}

// UpdateSessionActivity writes many sessions' counters in one transaction.
func (s *Store) UpdateSessionActivity(ctx context.Context, batch []SessionActivity) error {
	if len(batch) == 0 {
		return nil
	}
	return s.inTx(ctx, func(q conn) error {
		for _, a := range batch {
			if _, err := q.exec(ctx, `UPDATE api_sessions SET last_activity = ?, requests = ?, bytes_in = ?, bytes_out = ? WHERE id = ?`,
				micros(a.LastActivity), a.Requests, a.BytesIn, a.BytesOut, a.ID); err != nil {
				return fmt.Errorf("update session %s: %w", a.ID, err)
			}
		}
		return nil
	})
}

// CloseSession records the end of a session with its final counters and trail seal.
func (s *Store) CloseSession(ctx context.Context, a *APISession) error {
	res, err := s.conn().exec(ctx, `UPDATE api_sessions SET status = ?, termination_reason = ?, disconnected = ?, last_activity = ?, requests = ?, bytes_in = ?, bytes_out = ?, trail_head = ?, trail_records = ? WHERE id = ?`,
		a.Status, a.TerminationReason, micros(a.Disconnected), micros(a.LastActivity), a.Requests, a.BytesIn, a.BytesOut,
		a.TrailHead, a.TrailRecords, a.ID)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("close session %s: %w", a.ID, err)
	}
	return nil
}

// MarkInterrupted closes every session still CONNECTED, for start-up after a crash, and returns their ids.
func (s *Store) MarkInterrupted(ctx context.Context, at time.Time) ([]string, error) {
	var ids []string
	err := s.inTx(ctx, func(q conn) error {
		rows, err := q.query(ctx, `SELECT id FROM api_sessions WHERE status = ?`, SessionConnected)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return mapErr(err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		_, err = q.exec(ctx, `UPDATE api_sessions SET status = ?, termination_reason = ?, disconnected = ? WHERE status = ?`,
			SessionDisconnected, "interrupted: gatehouse stopped while the session was open", micros(at), SessionConnected)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("mark interrupted sessions: %w", err)
	}
	return ids, nil
}

// Session returns one session.
func (s *Store) Session(ctx context.Context, id string) (*APISession, error) {
	a, err := scanSession(s.conn().queryRow(ctx, `SELECT `+sessionColumns+` FROM api_sessions WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("get session %s: %w", id, err)
	}
	return a, nil
}

// SessionFilter selects sessions; zero fields match all.
type SessionFilter struct {
	Status   []string
	UserID   string
	TargetID string
	Keywords string // substring of user, target, credential name or client address
	From, To time.Time
	// Policies, if not nil, keeps only sessions admitted by one of these connection policies (keys); an empty
	// non-nil list keeps none.
	Policies []string
}

var sessionSortKeys = map[string]string{"connected": "connected", "last_activity": "last_activity", "status": "status",
	"user": "user_name", "target": "target_name", "requests": "requests"}

// ListSessions returns a page of sessions, newest first by default.
func (s *Store) ListSessions(ctx context.Context, f SessionFilter, opts ListOptions) ([]*APISession, int, error) {
	where, args := ` WHERE 1=1`, []any{}
	if len(f.Status) > 0 {
		where += ` AND status IN (?` + strings.Repeat(",?", len(f.Status)-1) + `)`
		for _, st := range f.Status {
			args = append(args, st)
		}
	}
	if f.UserID != "" {
		where += ` AND user_id = ?`
		args = append(args, f.UserID)
	}
	if f.TargetID != "" {
		where += ` AND target_id = ?`
		args = append(args, f.TargetID)
	}
	if !f.From.IsZero() {
		where += ` AND connected >= ?`
		args = append(args, micros(f.From))
	}
	if !f.To.IsZero() {
		where += ` AND connected <= ?`
		args = append(args, micros(f.To))
	}
	if f.Policies != nil {
		if len(f.Policies) == 0 {
			where += ` AND 1=0`
		} else {
			where += ` AND connection_policy IN (?` + strings.Repeat(",?", len(f.Policies)-1) + `)`
			for _, k := range f.Policies {
				args = append(args, k)
			}
		}
	}
	if f.Keywords != "" {
		p := likePattern(f.Keywords)
		where += ` AND (LOWER(user_name) LIKE ? ESCAPE '\' OR LOWER(target_name) LIKE ? ESCAPE '\' OR LOWER(credential_name) LIKE ? ESCAPE '\' OR LOWER(client_address) LIKE ? ESCAPE '\')`
		args = append(args, p, p, p, p)
	}
	if opts.SortKey == "" && opts.SortDir == "" {
		opts.SortDir = "desc"
	}
	tail, err := opts.clause(sessionSortKeys, "connected")
	if err != nil {
		return nil, 0, err
	}
	var total int
	if err := s.conn().queryRow(ctx, `SELECT COUNT(*) FROM api_sessions`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count sessions: %w", err)
	}
	rows, err := s.conn().query(ctx, `SELECT `+sessionColumns+` FROM api_sessions`+where+tail, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("list sessions: %w", err)
	}
	defer rows.Close()
	out := []*APISession{}
	for rows.Next() {
		a, err := scanSession(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, a)
	}
	return out, total, mapErr(rows.Err())
}
