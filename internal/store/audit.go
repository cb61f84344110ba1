package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
)

// AppendAudit stores one audit event, setting its ID, and then hands it to OnAudit. The caller masks secrets in the
// diff before calling.
func (s *Store) AppendAudit(ctx context.Context, e *model.AuditEvent) error {
	if err := appendAudit(ctx, s.conn(), e, s.now()); err != nil {
		return err
	}
	s.notifyAudit(e)
	return nil
}

// notifyAudit passes a stored event to OnAudit, if set.
func (s *Store) notifyAudit(e *model.AuditEvent) {
	if s.OnAudit != nil {
		s.OnAudit(*e)
	}
}

// AuditFilter selects audit events; zero fields match everything.
type AuditFilter struct {
	From, To   time.Time
	Actor      string
	ObjectType string
	ObjectID   string
	Action     string
	// ActorID matches the acting principal's id; Keyword is a substring of the actor, action, object type or id.
	ActorID string
	Keyword string
}

// ListAudit returns a page of audit events, newest first, and the total count matching f.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter, opts ListOptions) ([]*model.AuditEvent, int, error) {
	where, args := ` WHERE 1=1`, []any{}
	add := func(cond string, v any) { where += ` AND ` + cond; args = append(args, v) }
	if !f.From.IsZero() {
		add(`time >= ?`, micros(f.From))
	}
	if !f.To.IsZero() {
		add(`time <= ?`, micros(f.To))
	}
	if f.Actor != "" {
		add(`actor = ?`, f.Actor)
	}
	if f.ObjectType != "" {
		add(`object_type = ?`, f.ObjectType)
	}
	if f.ObjectID != "" {
		add(`object_id = ?`, f.ObjectID)
	}
	if f.Action != "" {
		add(`action = ?`, f.Action)
	}
	if f.ActorID != "" {
		add(`actor_id = ?`, f.ActorID)
	}
	if f.Keyword != "" {
		k := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(f.Keyword) + "%"
		where += ` AND (actor LIKE ? ESCAPE '\' OR action LIKE ? ESCAPE '\' OR object_type LIKE ? ESCAPE '\' OR object_id LIKE ? ESCAPE '\')`
		args = append(args, k, k, k, k)
	}
	if opts.SortDir == "" {
		opts.SortDir = "desc"
	}
	tail, err := opts.clause(map[string]string{"time": "time"}, "time")
	if err != nil {
		return nil, 0, err
	}
	var total int
	if err := s.conn().queryRow(ctx, `SELECT COUNT(*) FROM audit_events`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count audit: %w", err)
	}
	rows, err := s.conn().query(ctx, `SELECT id, time, actor, actor_id, action, object_type, object_id, source_address, outcome, diff, request_id FROM audit_events`+where+tail, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	out := []*model.AuditEvent{}
	for rows.Next() {
		var e model.AuditEvent
		var t int64
		var diff string
		if err := rows.Scan(&e.ID, &t, &e.Actor, &e.ActorID, &e.Action, &e.ObjectType, &e.ObjectID, &e.SourceAddress, &e.Outcome, &diff, &e.RequestID); err != nil {
			return nil, 0, mapErr(err)
		}
		e.Time = fromMicros(t)
		if diff != "" {
			if err := json.Unmarshal([]byte(diff), &e.Diff); err != nil {
				return nil, 0, fmt.Errorf("audit %d diff: %w", e.ID, err)
			}
		}
		out = append(out, &e)
	}
	return out, total, mapErr(rows.Err())
}
