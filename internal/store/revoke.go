package store

import (
	"context"
	"fmt"
	"slices"
)

// Ending management sessions. A user's access tokens, refresh tokens and configuration-API login sessions all
// end when the user's password changes, the user is disabled, or the user loses a role (explicitly, through a
// membership rule, by the role's deletion, or by the role losing a permission). The store does it inside the
// transaction that made the change, so no API path (either dialect, a directory sync, a login that re-evaluates
// rules) can forget it. Each kind of session is also checked against users.tokens_after when it is used, so a
// session that somehow survived the deletes still ends.

// endUserSessions moves the users' token cutoff to now and deletes their refresh tokens and login sessions.
func (s *Store) endUserSessions(ctx context.Context, c conn, userIDs []string) error {
	now := micros(s.now())
	for _, id := range dedupe(userIDs) {
		if _, err := c.exec(ctx, `UPDATE users SET tokens_after = ? WHERE id = ?`, now, id); err != nil {
			return fmt.Errorf("end sessions of %s: %w", id, err)
		}
		if _, err := c.exec(ctx, `DELETE FROM refresh_tokens WHERE principal_kind = ? AND principal_id = ?`, "user", id); err != nil {
			return fmt.Errorf("end sessions of %s: %w", id, err)
		}
		if _, err := c.exec(ctx, `DELETE FROM config_sessions WHERE principal_kind = ? AND principal_id = ?`, "user", id); err != nil {
			return fmt.Errorf("end sessions of %s: %w", id, err)
		}
	}
	return nil
}

// userGrants is every (user, role) a user holds, explicitly or through a rule.
func userGrants(ctx context.Context, c conn) (map[string][]string, error) {
	rows, err := c.query(ctx, `SELECT user_id, role_id FROM user_roles UNION SELECT user_id, role_id FROM user_rule_roles
		UNION SELECT user_id, role_id FROM user_workflow_roles`)
	if err != nil {
		return nil, fmt.Errorf("user grants: %w", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var u, r string
		if err := rows.Scan(&u, &r); err != nil {
			return nil, mapErr(err)
		}
		out[u] = append(out[u], r)
	}
	return out, mapErr(rows.Err())
}

// endSessionsOnRoleLoss runs fn inside c's transaction and ends the sessions of every user who held a role
// before fn and does not after it.
func (s *Store) endSessionsOnRoleLoss(ctx context.Context, c conn, fn func() error) error {
	before, err := userGrants(ctx, c)
	if err != nil {
		return err
	}
	if err := fn(); err != nil {
		return err
	}
	after, err := userGrants(ctx, c)
	if err != nil {
		return err
	}
	var lost []string
	for u, roles := range before {
		for _, r := range roles {
			if !slices.Contains(after[u], r) {
				lost = append(lost, u)
				break
			}
		}
	}
	return s.endUserSessions(ctx, c, lost)
}

// roleHolders is every user holding the role, explicitly or through a rule.
func roleHolders(ctx context.Context, c conn, roleID string) ([]string, error) {
	rows, err := c.query(ctx, `SELECT user_id FROM user_roles WHERE role_id = ? UNION SELECT user_id FROM user_rule_roles WHERE role_id = ?
		UNION SELECT user_id FROM user_workflow_roles WHERE role_id = ?`, roleID, roleID, roleID)
	if err != nil {
		return nil, fmt.Errorf("holders of %s: %w", roleID, err)
	}
	return scanStrings(rows)
}

// SourceUserIDs lists the users a directory source provided.
func (s *Store) SourceUserIDs(ctx context.Context, sourceID string) ([]string, error) {
	rows, err := s.conn().query(ctx, `SELECT id FROM users WHERE source = ?`, sourceID)
	if err != nil {
		return nil, fmt.Errorf("users of source %s: %w", sourceID, err)
	}
	return scanStrings(rows)
}
