package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/google/uuid"
)

const userColumns = `id, username, email, full_name, enabled, source, password_hash, created, author, updated, updated_by`

// userSelect is what reads return: the insertable columns and the token cut-off, which only RevokeUserTokens sets.
const userSelect = userColumns + `, tokens_after`

func scanUser(row interface{ Scan(...any) error }) (*model.User, error) {
	var u model.User
	var created, updated, tokensAfter int64
	err := row.Scan(&u.ID, &u.Username, &u.Email, &u.FullName, &u.Enabled, &u.Source, &u.PasswordHash,
		&created, &u.Author, &updated, &u.UpdatedBy, &tokensAfter)
	if err != nil {
		return nil, mapErr(err)
	}
	u.Created, u.Updated, u.TokensAfter = fromMicros(created), fromMicros(updated), fromMicros(tokensAfter)
	return &u, nil
}

// CreateUser stores u, assigning its id and times. u.PasswordHash must already be a hash.
func (s *Store) CreateUser(ctx context.Context, u *model.User, actor string) error {
	u.ID = uuid.NewString()
	now := s.now()
	u.Created, u.Updated, u.Author, u.UpdatedBy = now, now, actor, actor
	if u.Source == "" {
		u.Source = "local"
	}
	_, err := s.conn().exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
		u.ID, u.Username, u.Email, u.FullName, u.Enabled, u.Source, u.PasswordHash,
		micros(now), actor, micros(now), actor)
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	return nil
}

// User returns the user with id.
func (s *Store) User(ctx context.Context, id string) (*model.User, error) {
	u, err := scanUser(s.conn().queryRow(ctx, `SELECT `+userSelect+` FROM users WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("get user %s: %w", id, err)
	}
	return u, nil
}

// UserByName returns the user whose username is name.
func (s *Store) UserByName(ctx context.Context, name string) (*model.User, error) {
	u, err := scanUser(s.conn().queryRow(ctx, `SELECT `+userSelect+` FROM users WHERE username = ?`, name))
	if err != nil {
		return nil, fmt.Errorf("get user by name: %w", err)
	}
	return u, nil
}

var userSortKeys = map[string]string{
	"username": "username", "email": "email", "full_name": "full_name", "created": "created", "updated": "updated",
}

// ListUsers returns a page of users and the total count matching opts.Filter.
func (s *Store) ListUsers(ctx context.Context, opts ListOptions) ([]*model.User, int, error) {
	tail, err := opts.clause(userSortKeys, "username")
	if err != nil {
		return nil, 0, err
	}
	where, args := "", []any{}
	if opts.Filter != "" {
		p := likePattern(opts.Filter)
		where = ` WHERE LOWER(username) LIKE ? ESCAPE '\' OR LOWER(email) LIKE ? ESCAPE '\' OR LOWER(full_name) LIKE ? ESCAPE '\'`
		args = []any{p, p, p}
	}
	c := s.conn()
	var total int
	if err := c.queryRow(ctx, `SELECT COUNT(*) FROM users`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count users: %w", err)
	}
	rows, err := c.query(ctx, `SELECT `+userSelect+` FROM users`+where+tail, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []*model.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("list users: %w", err)
		}
		out = append(out, u)
	}
	return out, total, mapErr(rows.Err())
}

// UpdateUser replaces the user's profile fields (not its password, see SetPassword).
func (s *Store) UpdateUser(ctx context.Context, u *model.User, actor string) error {
	now := s.now()
	err := s.inTx(ctx, func(c conn) error {
		var wasEnabled bool
		if err := c.queryRow(ctx, `SELECT enabled FROM users WHERE id = ?`, u.ID).Scan(&wasEnabled); err != nil {
			return mapErr(err)
		}
		res, err := c.exec(ctx, `UPDATE users SET username = ?, email = ?, full_name = ?, enabled = ?, updated = ?, updated_by = ? WHERE id = ?`,
			u.Username, u.Email, u.FullName, u.Enabled, micros(now), actor, u.ID)
		if err := affectedOne(res, err); err != nil {
			return err
		}
		if wasEnabled && !u.Enabled {
			return s.endUserSessions(ctx, c, []string{u.ID})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update user %s: %w", u.ID, err)
	}
	u.Updated, u.UpdatedBy = now, actor
	return nil
}

// SetPassword replaces the user's password hash and ends every management session the old one opened.
func (s *Store) SetPassword(ctx context.Context, id, hash, actor string) error {
	err := s.inTx(ctx, func(c conn) error {
		res, err := c.exec(ctx, `UPDATE users SET password_hash = ?, updated = ?, updated_by = ? WHERE id = ?`,
			hash, micros(s.now()), actor, id)
		if err := affectedOne(res, err); err != nil {
			return err
		}
		return s.endUserSessions(ctx, c, []string{id})
	})
	if err != nil {
		return fmt.Errorf("set password of %s: %w", id, err)
	}
	return nil
}

// DeleteUser removes the user, its role grants and its proxy credentials.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	res, err := s.conn().exec(ctx, `DELETE FROM users WHERE id = ?`, id)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("delete user %s: %w", id, err)
	}
	return nil
}

// CountUsers returns how many users exist.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.conn().queryRow(ctx, `SELECT COUNT(*) FROM users`).Scan(&n)
	return n, mapErr(err)
}

// affectedOne turns "no row changed" into ErrNotExist.
func affectedOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotExist
	}
	return nil
}

// PolicyUser is what the proxy's policy snapshot keeps of a user.
type PolicyUser struct {
	ID, Username string
	Enabled      bool
	RoleIDs      []string
}

// PolicyUsers returns every user with the ids of the roles it holds, explicitly or through a role rule.
func (s *Store) PolicyUsers(ctx context.Context) ([]*PolicyUser, error) {
	c := s.conn()
	rows, err := c.query(ctx, `SELECT id, username, enabled FROM users`)
	if err != nil {
		return nil, fmt.Errorf("policy users: %w", err)
	}
	byID := map[string]*PolicyUser{}
	var out []*PolicyUser
	for rows.Next() {
		u := &PolicyUser{}
		if err := rows.Scan(&u.ID, &u.Username, &u.Enabled); err != nil {
			rows.Close()
			return nil, mapErr(err)
		}
		byID[u.ID] = u
		out = append(out, u)
	}
	rows.Close()
	// A role held both explicitly and through a rule counts once; the gate only asks whether it is held.
	grants, err := c.query(ctx, `SELECT user_id, role_id FROM user_roles UNION SELECT user_id, role_id FROM user_rule_roles
		UNION SELECT user_id, role_id FROM user_workflow_roles`)
	if err != nil {
		return nil, fmt.Errorf("policy users: %w", err)
	}
	defer grants.Close()
	for grants.Next() {
		var uid, rid string
		if err := grants.Scan(&uid, &rid); err != nil {
			return nil, mapErr(err)
		}
		if u := byID[uid]; u != nil {
			u.RoleIDs = append(u.RoleIDs, rid)
		}
	}
	return out, mapErr(grants.Err())
}

// RevokeUserTokens ends every management session of the user: access tokens issued before now, refresh tokens
// and configuration-API logins.
func (s *Store) RevokeUserTokens(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(c conn) error {
		var one int
		if err := c.queryRow(ctx, `SELECT 1 FROM users WHERE id = ?`, id).Scan(&one); err != nil {
			return mapErr(err)
		}
		return s.endUserSessions(ctx, c, []string{id})
	})
	if err != nil {
		return fmt.Errorf("revoke tokens of %s: %w", id, err)
	}
	return nil
}
