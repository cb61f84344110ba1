package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/google/uuid"
)

const roleColumns = `id, name, comment, permissions, created, author, updated, updated_by`

func scanRole(row interface{ Scan(...any) error }) (*model.Role, error) {
	var r model.Role
	var perms string
	var created, updated int64
	if err := row.Scan(&r.ID, &r.Name, &r.Comment, &perms, &created, &r.Author, &updated, &r.UpdatedBy); err != nil {
		return nil, mapErr(err)
	}
	if err := json.Unmarshal([]byte(perms), &r.Permissions); err != nil {
		return nil, fmt.Errorf("role %s permissions: %w", r.ID, err)
	}
	r.Created, r.Updated = fromMicros(created), fromMicros(updated)
	return &r, nil
}

// CreateRole stores r, assigning its id and times.
func (s *Store) CreateRole(ctx context.Context, r *model.Role, actor string) error {
	r.ID = uuid.NewString()
	now := s.now()
	r.Created, r.Updated, r.Author, r.UpdatedBy = now, now, actor, actor
	perms, _ := json.Marshal(nonNil(r.Permissions))
	_, err := s.conn().exec(ctx, `INSERT INTO roles (`+roleColumns+`) VALUES (?,?,?,?,?,?,?,?)`,
		r.ID, r.Name, r.Comment, string(perms), micros(now), actor, micros(now), actor)
	if err != nil {
		return fmt.Errorf("create role: %w", err)
	}
	return nil
}

// Role returns the role with id.
func (s *Store) Role(ctx context.Context, id string) (*model.Role, error) {
	r, err := scanRole(s.conn().queryRow(ctx, `SELECT `+roleColumns+` FROM roles WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("get role %s: %w", id, err)
	}
	return r, nil
}

var roleSortKeys = map[string]string{"name": "name", "created": "created", "updated": "updated"}

// ListRoles returns a page of roles and the total count matching opts.Filter.
func (s *Store) ListRoles(ctx context.Context, opts ListOptions) ([]*model.Role, int, error) {
	tail, err := opts.clause(roleSortKeys, "name")
	if err != nil {
		return nil, 0, err
	}
	where, args := "", []any{}
	if opts.Filter != "" {
		p := likePattern(opts.Filter)
		where, args = ` WHERE LOWER(name) LIKE ? ESCAPE '\' OR LOWER(comment) LIKE ? ESCAPE '\'`, []any{p, p}
	}
	c := s.conn()
	var total int
	if err := c.queryRow(ctx, `SELECT COUNT(*) FROM roles`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count roles: %w", err)
	}
	rows, err := c.query(ctx, `SELECT `+roleColumns+` FROM roles`+where+tail, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("list roles: %w", err)
	}
	defer rows.Close()
	var out []*model.Role
	for rows.Next() {
		r, err := scanRole(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("list roles: %w", err)
		}
		out = append(out, r)
	}
	return out, total, mapErr(rows.Err())
}

// UpdateRole replaces the role's name, comment and permissions.
func (s *Store) UpdateRole(ctx context.Context, r *model.Role, actor string) error {
	now := s.now()
	perms, _ := json.Marshal(nonNil(r.Permissions))
	err := s.inTx(ctx, func(c conn) error {
		old, err := scanRole(c.queryRow(ctx, `SELECT `+roleColumns+` FROM roles WHERE id = ?`, r.ID))
		if err != nil {
			return err
		}
		res, err := c.exec(ctx, `UPDATE roles SET name = ?, comment = ?, permissions = ?, updated = ?, updated_by = ? WHERE id = ?`,
			r.Name, r.Comment, string(perms), micros(now), actor, r.ID)
		if err := affectedOne(res, err); err != nil {
			return err
		}
		// A role that loses a permission is a role loss for its holders.
		for _, p := range old.Permissions {
			if !slices.Contains(r.Permissions, p) {
				holders, err := roleHolders(ctx, c, r.ID)
				if err != nil {
					return err
				}
				if err := s.endUserSessions(ctx, c, holders); err != nil {
					return err
				}
				rows, err := c.query(ctx, `SELECT client_id FROM api_client_roles WHERE role_id = ?`, r.ID)
				if err != nil {
					return fmt.Errorf("api clients of %s: %w", r.ID, err)
				}
				clients, err := scanStrings(rows)
				if err != nil {
					return err
				}
				return s.endAPIClientSessions(ctx, c, clients)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update role %s: %w", r.ID, err)
	}
	r.Updated, r.UpdatedBy = now, actor
	return nil
}

// DeleteRole removes the role and every grant of it.
func (s *Store) DeleteRole(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(c conn) error {
		return s.endSessionsOnRoleLoss(ctx, c, func() error {
			res, err := c.exec(ctx, `DELETE FROM roles WHERE id = ?`, id)
			return affectedOne(res, err)
		})
	})
	if err != nil {
		return fmt.Errorf("delete role %s: %w", id, err)
	}
	return nil
}

// UserRoles returns the roles a user holds: granted explicitly or through a role rule.
func (s *Store) UserRoles(ctx context.Context, userID string) ([]*model.Role, error) {
	return s.rolesVia(ctx, `SELECT r.id, r.name, r.comment, r.permissions, r.created, r.author, r.updated, r.updated_by
		FROM roles r WHERE r.id IN (SELECT role_id FROM user_roles WHERE user_id = ?
		UNION SELECT role_id FROM user_rule_roles WHERE user_id = ?
		UNION SELECT role_id FROM user_workflow_roles WHERE user_id = ?) ORDER BY r.name`, userID, userID, userID)
}

// APIClientRoles returns the roles granted to an API client.
func (s *Store) APIClientRoles(ctx context.Context, clientID string) ([]*model.Role, error) {
	return s.rolesVia(ctx, `SELECT r.id, r.name, r.comment, r.permissions, r.created, r.author, r.updated, r.updated_by
		FROM roles r JOIN api_client_roles cr ON cr.role_id = r.id WHERE cr.client_id = ? ORDER BY r.name`, clientID)
}

func (s *Store) rolesVia(ctx context.Context, q, id string, more ...any) ([]*model.Role, error) {
	rows, err := s.conn().query(ctx, q, append([]any{id}, more...)...)
	if err != nil {
		return nil, fmt.Errorf("roles of %s: %w", id, err)
	}
	defer rows.Close()
	out := []*model.Role{}
	for rows.Next() {
		r, err := scanRole(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, mapErr(rows.Err())
}

// SetUserRoles replaces the user's explicit role grants with roleIDs, atomically. An unknown role id gives
// ErrReference and changes nothing.
func (s *Store) SetUserRoles(ctx context.Context, userID string, roleIDs []string) error {
	return s.inTx(ctx, func(c conn) error {
		return s.endSessionsOnRoleLoss(ctx, c, func() error { return setUserRoles(ctx, c, userID, roleIDs) })
	})
}

func setUserRoles(ctx context.Context, c conn, userID string, roleIDs []string) error {
	var one int
	if err := c.queryRow(ctx, `SELECT 1 FROM users WHERE id = ?`, userID).Scan(&one); err != nil {
		return fmt.Errorf("set roles of %s: %w", userID, mapErr(err))
	}
	if _, err := c.exec(ctx, `DELETE FROM user_roles WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("set roles of %s: %w", userID, err)
	}
	for _, id := range dedupe(roleIDs) {
		if _, err := c.exec(ctx, `INSERT INTO user_roles (user_id, role_id) VALUES (?, ?)`, userID, id); err != nil {
			return fmt.Errorf("set roles of %s: role %s: %w", userID, id, err)
		}
	}
	return nil
}

// RoleMember is a principal that holds a role.
type RoleMember struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Kind     string `json:"type"` // "user" or "api-client"
	Explicit bool   `json:"explicit"`
}

// RoleMembers lists the users and API clients that hold the role.
func (s *Store) RoleMembers(ctx context.Context, roleID string) ([]RoleMember, error) {
	if _, err := s.Role(ctx, roleID); err != nil {
		return nil, err
	}
	rows, err := s.conn().query(ctx, `SELECT u.id, u.username, 'user' FROM users u JOIN user_roles ur ON ur.user_id = u.id WHERE ur.role_id = ?
		UNION ALL SELECT c.id, c.name, 'api-client' FROM api_clients c JOIN api_client_roles cr ON cr.client_id = c.id WHERE cr.role_id = ?
		ORDER BY 2`, roleID, roleID)
	if err != nil {
		return nil, fmt.Errorf("members of %s: %w", roleID, err)
	}
	defer rows.Close()
	out := []RoleMember{}
	for rows.Next() {
		m := RoleMember{Explicit: true}
		if err := rows.Scan(&m.ID, &m.Name, &m.Kind); err != nil {
			return nil, mapErr(err)
		}
		out = append(out, m)
	}
	return out, mapErr(rows.Err())
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func dedupe(ids []string) []string {
	seen := map[string]bool{}
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// RoleNames maps every role id to its name, for the proxy's policy snapshot (channel policies name roles).
func (s *Store) RoleNames(ctx context.Context) (map[string]string, error) {
	rows, err := s.conn().query(ctx, `SELECT id, name FROM roles`)
	if err != nil {
		return nil, fmt.Errorf("role names: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, mapErr(err)
		}
		out[id] = name
	}
	return out, mapErr(rows.Err())
}
