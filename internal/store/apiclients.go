package store

import (
	"context"
	"fmt"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/google/uuid"
)

// apiClientColumns is what reads return, the token cut-off (which only endAPIClientSessions sets) last.
const apiClientColumns = `id, name, secret_sealed, oauth_client_id, oauth_client_secret_sealed, created, author, updated, updated_by, tokens_after`

func (s *Store) scanAPIClient(row interface{ Scan(...any) error }) (*model.APIClient, error) {
	var c model.APIClient
	var secret, oauthSecret string
	var created, updated, tokensAfter int64
	if err := row.Scan(&c.ID, &c.Name, &secret, &c.OAuthClientID, &oauthSecret, &created, &c.Author, &updated, &c.UpdatedBy, &tokensAfter); err != nil {
		return nil, mapErr(err)
	}
	var err error
	if c.Secret, err = s.unseal(secret, "api-client:"+c.ID+":secret"); err != nil {
		return nil, err
	}
	if c.OAuthClientSecret, err = s.unseal(oauthSecret, "api-client:"+c.ID+":oauth_client_secret"); err != nil {
		return nil, err
	}
	c.Created, c.Updated, c.TokensAfter = fromMicros(created), fromMicros(updated), fromMicros(tokensAfter)
	return &c, nil
}

// CreateAPIClient stores c with its roles. c.Secret, c.OAuthClientID and c.OAuthClientSecret must be set.
func (s *Store) CreateAPIClient(ctx context.Context, c *model.APIClient, actor string) error {
	c.ID = uuid.NewString()
	now := s.now()
	c.Created, c.Updated, c.Author, c.UpdatedBy = now, now, actor, actor
	secret, err := s.seal(c.Secret, "api-client:"+c.ID+":secret")
	if err != nil {
		return err
	}
	oauthSecret, err := s.seal(c.OAuthClientSecret, "api-client:"+c.ID+":oauth_client_secret")
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(q conn) error {
		_, err := q.exec(ctx, `INSERT INTO api_clients (id, name, secret_sealed, secret_index, oauth_client_id, oauth_client_secret_sealed, created, author, updated, updated_by)
			VALUES (?,?,?,?,?,?,?,?,?,?)`, c.ID, c.Name, secret, s.SecretIndex(IndexAPIClientSecret, c.Secret),
			c.OAuthClientID, oauthSecret, micros(now), actor, micros(now), actor)
		if err != nil {
			return fmt.Errorf("create api client: %w", err)
		}
		return setGrants(ctx, q, "api_client_roles", "client_id", c.ID, refIDs(c.Roles))
	})
}

// APIClient returns the API client with id, secrets opened, roles filled in.
func (s *Store) APIClient(ctx context.Context, id string) (*model.APIClient, error) {
	c, err := s.scanAPIClient(s.conn().queryRow(ctx, `SELECT `+apiClientColumns+` FROM api_clients WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("get api client %s: %w", id, err)
	}
	return c, s.fillClientRoles(ctx, c)
}

// APIClientBySecret finds an API client by its secret through the keyed-hash index; the caller still compares the
// opened secret in constant time.
func (s *Store) APIClientBySecret(ctx context.Context, secret string) (*model.APIClient, error) {
	c, err := s.scanAPIClient(s.conn().queryRow(ctx, `SELECT `+apiClientColumns+` FROM api_clients WHERE secret_index = ?`,
		s.SecretIndex(IndexAPIClientSecret, secret)))
	if err != nil {
		return nil, fmt.Errorf("find api client: %w", err)
	}
	return c, s.fillClientRoles(ctx, c)
}

func (s *Store) fillClientRoles(ctx context.Context, c *model.APIClient) error {
	roles, err := s.APIClientRoles(ctx, c.ID)
	if err != nil {
		return err
	}
	c.Roles = refsOf(roles)
	return nil
}

var apiClientSortKeys = map[string]string{"name": "name", "created": "created", "updated": "updated"}

// ListAPIClients returns a page of API clients.
func (s *Store) ListAPIClients(ctx context.Context, opts ListOptions) ([]*model.APIClient, int, error) {
	tail, err := opts.clause(apiClientSortKeys, "name")
	if err != nil {
		return nil, 0, err
	}
	where, args := "", []any{}
	if opts.Filter != "" {
		where, args = ` WHERE LOWER(name) LIKE ? ESCAPE '\'`, []any{likePattern(opts.Filter)}
	}
	var total int
	if err := s.conn().queryRow(ctx, `SELECT COUNT(*) FROM api_clients`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count api clients: %w", err)
	}
	rows, err := s.conn().query(ctx, `SELECT `+apiClientColumns+` FROM api_clients`+where+tail, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("list api clients: %w", err)
	}
	var out []*model.APIClient
	for rows.Next() {
		c, err := s.scanAPIClient(rows)
		if err != nil {
			rows.Close()
			return nil, 0, err
		}
		out = append(out, c)
	}
	rows.Close()
	for _, c := range out {
		if err := s.fillClientRoles(ctx, c); err != nil {
			return nil, 0, err
		}
	}
	return out, total, nil
}

// UpdateAPIClient replaces the client's name and roles; its credentials never change.
func (s *Store) UpdateAPIClient(ctx context.Context, c *model.APIClient, actor string) error {
	now := s.now()
	return s.inTx(ctx, func(q conn) error {
		res, err := q.exec(ctx, `UPDATE api_clients SET name = ?, updated = ?, updated_by = ? WHERE id = ?`, c.Name, micros(now), actor, c.ID)
		if err := affectedOne(res, err); err != nil {
			return fmt.Errorf("update api client %s: %w", c.ID, err)
		}
		c.Updated, c.UpdatedBy = now, actor
		return s.endSessionsOnRoleLoss(ctx, q, func() error {
			return setGrants(ctx, q, "api_client_roles", "client_id", c.ID, refIDs(c.Roles))
		})
	})
}

// DeleteAPIClient removes the client and ends its sessions (refresh tokens, login sessions) with it.
func (s *Store) DeleteAPIClient(ctx context.Context, id string) error {
	return s.inTx(ctx, func(q conn) error {
		res, err := q.exec(ctx, `DELETE FROM api_clients WHERE id = ?`, id)
		if err := affectedOne(res, err); err != nil {
			return fmt.Errorf("delete api client %s: %w", id, err)
		}
		return s.endAPIClientSessions(ctx, q, []string{id})
	})
}

// setGrants replaces the role rows of one principal or target in a join table. table and col are constants.
func setGrants(ctx context.Context, q conn, table, col, id string, roleIDs []string) error {
	if _, err := q.exec(ctx, `DELETE FROM `+table+` WHERE `+col+` = ?`, id); err != nil {
		return fmt.Errorf("set roles: %w", err)
	}
	for _, r := range dedupe(roleIDs) {
		if _, err := q.exec(ctx, `INSERT INTO `+table+` (`+col+`, role_id) VALUES (?, ?)`, id, r); err != nil {
			return fmt.Errorf("set roles: role %s: %w", r, err)
		}
	}
	return nil
}

func refIDs(refs []model.Ref) []string {
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, r.ID)
	}
	return out
}

func refsOf(roles []*model.Role) []model.Ref {
	out := make([]model.Ref, 0, len(roles))
	for _, r := range roles {
		out = append(out, model.Ref{ID: r.ID, Name: r.Name})
	}
	return out
}

// APIClientByOAuthID returns the API client whose OAuth client id is oauthID.
func (s *Store) APIClientByOAuthID(ctx context.Context, oauthID string) (*model.APIClient, error) {
	c, err := s.scanAPIClient(s.conn().queryRow(ctx, `SELECT `+apiClientColumns+` FROM api_clients WHERE oauth_client_id = ?`, oauthID))
	if err != nil {
		return nil, fmt.Errorf("find api client by oauth id: %w", err)
	}
	return c, s.fillClientRoles(ctx, c)
}
