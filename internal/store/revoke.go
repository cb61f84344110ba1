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
// session that somehow survived the deletes still ends. An API client's end the same way when it loses a role
// (api_clients.tokens_after) or is deleted.

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

// endAPIClientSessions does for API clients what endUserSessions does for users: their access tokens issued
// before now, their refresh tokens and their login sessions end.
func (s *Store) endAPIClientSessions(ctx context.Context, c conn, clientIDs []string) error {
	now := micros(s.now())
	for _, id := range dedupe(clientIDs) {
		if _, err := c.exec(ctx, `UPDATE api_clients SET tokens_after = ? WHERE id = ?`, now, id); err != nil {
			return fmt.Errorf("end sessions of api client %s: %w", id, err)
		}
		for _, table := range []string{"refresh_tokens", "config_sessions"} {
			if _, err := c.exec(ctx, `DELETE FROM `+table+` WHERE principal_kind = ? AND principal_id = ?`, "api-client", id); err != nil {
				return fmt.Errorf("end sessions of api client %s: %w", id, err)
			}
		}
	}
	return nil
}

// clientGrants is every (API client, role) granted.
func clientGrants(ctx context.Context, c conn) (map[string][]string, error) {
	rows, err := c.query(ctx, `SELECT client_id, role_id FROM api_client_roles`)
	if err != nil {
		return nil, fmt.Errorf("api client grants: %w", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var id, r string
		if err := rows.Scan(&id, &r); err != nil {
			return nil, mapErr(err)
		}
		out[id] = append(out[id], r)
	}
	return out, mapErr(rows.Err())
}

// lostGrants lists the principals that held a role in before and do not in after.
func lostGrants(before, after map[string][]string) []string {
	var lost []string
	for p, roles := range before {
		for _, r := range roles {
			if !slices.Contains(after[p], r) {
				lost = append(lost, p)
				break
			}
		}
	}
	return lost
}

// endSessionsOnRoleLoss runs fn inside c's transaction and ends the sessions of every user and API client that
// held a role before fn and does not after it.
func (s *Store) endSessionsOnRoleLoss(ctx context.Context, c conn, fn func() error) error {
	usersBefore, err := userGrants(ctx, c)
	if err != nil {
		return err
	}
	clientsBefore, err := clientGrants(ctx, c)
	if err != nil {
		return err
	}
	if err := fn(); err != nil {
		return err
	}
	usersAfter, err := userGrants(ctx, c)
	if err != nil {
		return err
	}
	clientsAfter, err := clientGrants(ctx, c)
	if err != nil {
		return err
	}
	if err := s.endUserSessions(ctx, c, lostGrants(usersBefore, usersAfter)); err != nil {
		return err
	}
	return s.endAPIClientSessions(ctx, c, lostGrants(clientsBefore, clientsAfter))
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
