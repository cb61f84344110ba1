package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// CooldownCredential is the cool-down subject of a credential. Cool-downs bind a credential, a user, or (for
// unauthenticated sessions, which have neither) a session key.
func CooldownCredential(id string) string { return "credential:" + id }

// CooldownUser is the cool-down subject of a user.
func CooldownUser(id string) string { return "user:" + id }

// SetCooldown makes every subject cool down until the given time, keeping a later end already stored.
func (s *Store) SetCooldown(ctx context.Context, until time.Time, subjects ...string) error {
	return s.inTx(ctx, func(q conn) error {
		for _, sub := range subjects {
			if _, err := q.exec(ctx, `INSERT INTO cooldowns (subject, until_micro) VALUES (?, ?) ON CONFLICT (subject) DO UPDATE SET until_micro = CASE WHEN excluded.until_micro > cooldowns.until_micro THEN excluded.until_micro ELSE cooldowns.until_micro END`,
				sub, micros(until)); err != nil {
				return fmt.Errorf("set cool-down %s: %w", sub, err)
			}
		}
		return nil
	})
}

// Cooldowns returns the cool-downs still running at now, by subject.
func (s *Store) Cooldowns(ctx context.Context, now time.Time) (map[string]time.Time, error) {
	rows, err := s.conn().query(ctx, `SELECT subject, until_micro FROM cooldowns WHERE until_micro > ?`, micros(now))
	if err != nil {
		return nil, fmt.Errorf("list cool-downs: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var sub string
		var until int64
		if err := rows.Scan(&sub, &until); err != nil {
			return nil, mapErr(err)
		}
		out[sub] = fromMicros(until)
	}
	return out, mapErr(rows.Err())
}

// CooldownsOf returns the running cool-downs at now among subjects, by subject.
func (s *Store) CooldownsOf(ctx context.Context, now time.Time, subjects ...string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if len(subjects) == 0 {
		return out, nil
	}
	args := []any{micros(now)}
	for _, sub := range subjects {
		args = append(args, sub)
	}
	rows, err := s.conn().query(ctx, `SELECT subject, until_micro FROM cooldowns WHERE until_micro > ? AND subject IN (?`+
		strings.Repeat(",?", len(subjects)-1)+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("get cool-downs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var sub string
		var until int64
		if err := rows.Scan(&sub, &until); err != nil {
			return nil, mapErr(err)
		}
		out[sub] = fromMicros(until)
	}
	return out, mapErr(rows.Err())
}

// DeleteExpiredCooldowns forgets cool-downs that ended before now.
func (s *Store) DeleteExpiredCooldowns(ctx context.Context, now time.Time) error {
	if _, err := s.conn().exec(ctx, `DELETE FROM cooldowns WHERE until_micro <= ?`, micros(now)); err != nil {
		return fmt.Errorf("delete expired cool-downs: %w", err)
	}
	return nil
}
