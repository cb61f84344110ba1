package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// SetLegalHold puts a session under a legal hold (hold true) or releases it; reason says why. Retention never
// deletes a held session, its trail or its index entries.
func (s *Store) SetLegalHold(ctx context.Context, id string, hold bool, reason string) error {
	if !hold {
		reason = ""
	}
	res, err := s.conn().exec(ctx, `UPDATE api_sessions SET legal_hold = ?, legal_hold_reason = ? WHERE id = ?`, hold, reason, id)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("legal hold on session %s: %w", id, err)
	}
	return nil
}

// ExpiredSession is a closed session that retention may delete.
type ExpiredSession struct {
	ID               string
	ConnectionPolicy string
	Disconnected     time.Time
	AuditEnabled     bool
}

// RetentionGroup selects the sessions one retention rule applies to: those admitted by one of Policies, or, when
// Policies is empty, those admitted by none of Except (sessions of deleted policies and of none included).
type RetentionGroup struct {
	Policies []string
	Except   []string
}

// ExpiredSessions lists up to limit closed sessions of group, not under a legal hold, that ended before cutoff,
// oldest first. Open sessions are never listed, whatever their age.
func (s *Store) ExpiredSessions(ctx context.Context, group RetentionGroup, cutoff time.Time, limit int) ([]ExpiredSession, error) {
	q := `SELECT id, connection_policy, disconnected, audit_enabled FROM api_sessions
		WHERE status <> ? AND legal_hold = ? AND disconnected > 0 AND disconnected < ?`
	args := []any{SessionConnected, false, micros(cutoff)}
	switch {
	case len(group.Policies) > 0:
		q += ` AND connection_policy IN (?` + strings.Repeat(",?", len(group.Policies)-1) + `)`
		args = append(args, anys(group.Policies)...)
	case len(group.Except) > 0:
		q += ` AND connection_policy NOT IN (?` + strings.Repeat(",?", len(group.Except)-1) + `)`
		args = append(args, anys(group.Except)...)
	}
	rows, err := s.conn().query(ctx, q+` ORDER BY disconnected LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list expired sessions: %w", err)
	}
	defer rows.Close()
	var out []ExpiredSession
	for rows.Next() {
		var e ExpiredSession
		var disc int64
		if err := rows.Scan(&e.ID, &e.ConnectionPolicy, &disc, &e.AuditEnabled); err != nil {
			return nil, mapErr(err)
		}
		e.Disconnected = fromMicros(disc)
		out = append(out, e)
	}
	return out, mapErr(rows.Err())
}

// DeleteSessions removes the given sessions, their index entries and their trails' database copies in one transaction, except any that a legal
// hold was put on meanwhile; it returns the ids it deleted. The caller deletes the trail files of those; a tombstone
// per session (DeletedTrailsAmong) tells the other nodes of a cluster to delete their local copies.
func (s *Store) DeleteSessions(ctx context.Context, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var deleted []string
	now := s.now()
	err := s.inTx(ctx, func(c conn) error {
		for _, id := range ids {
			res, err := c.exec(ctx, `DELETE FROM api_sessions WHERE id = ? AND legal_hold = ? AND status <> ?`, id, false, SessionConnected)
			if err != nil {
				return fmt.Errorf("delete session %s: %w", id, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			if _, err := c.exec(ctx, `DELETE FROM trail_index WHERE session_id = ?`, id); err != nil {
				return fmt.Errorf("delete trail index of %s: %w", id, err)
			}
			// The database copy of the trail (kept for a cluster) goes with its session, or it stays readable.
			if _, err := c.exec(ctx, `DELETE FROM trail_chunks WHERE session_id = ?`, id); err != nil {
				return fmt.Errorf("delete stored trail of %s: %w", id, err)
			}
			// Other nodes may hold a local copy of the trail: the tombstone tells them to delete it.
			if _, err := c.exec(ctx, `INSERT INTO deleted_trails (session_id, deleted) VALUES (?, ?) ON CONFLICT (session_id) DO NOTHING`,
				id, micros(now)); err != nil {
				return fmt.Errorf("record deletion of %s: %w", id, err)
			}
			deleted = append(deleted, id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return deleted, nil
}

// deletedBatch bounds the ids of one DeletedTrailsAmong query.
const deletedBatch = 500

// DeletedTrailsAmong returns those of ids whose sessions retention deleted (their tombstones are still kept), for
// a node deleting its local copies of their trails.
func (s *Store) DeletedTrailsAmong(ctx context.Context, ids []string) ([]string, error) {
	var out []string
	for start := 0; start < len(ids); start += deletedBatch {
		batch := ids[start:min(start+deletedBatch, len(ids))]
		rows, err := s.conn().query(ctx, `SELECT session_id FROM deleted_trails WHERE session_id IN (?`+strings.Repeat(",?", len(batch)-1)+`)`,
			anys(batch)...)
		if err != nil {
			return nil, fmt.Errorf("list deleted trails: %w", err)
		}
		found, err := scanStrings(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	return out, nil
}

// ForgetDeletedTrails drops the tombstones of sessions deleted before before: a node that was away longer keeps
// its local copies of those trails until removed by hand.
func (s *Store) ForgetDeletedTrails(ctx context.Context, before time.Time) error {
	if _, err := s.conn().exec(ctx, `DELETE FROM deleted_trails WHERE deleted < ?`, micros(before)); err != nil {
		return fmt.Errorf("forget deleted trails: %w", err)
	}
	return nil
}
