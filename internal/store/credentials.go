package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/google/uuid"
)

const credentialColumns = `id, user_id, target_id, name, comment, not_before, not_after, source_address, enabled, secret_sealed, last_used, created, author, updated, updated_by`

func (s *Store) scanCredential(row interface{ Scan(...any) error }) (*model.ProxyCredential, error) {
	var c model.ProxyCredential
	var src, sealed string
	var nb, na, created, updated int64
	var lastUsed sql.NullInt64
	if err := row.Scan(&c.ID, &c.UserID, &c.TargetID, &c.Name, &c.Comment, &nb, &na, &src, &c.Enabled, &sealed,
		&lastUsed, &created, &c.Author, &updated, &c.UpdatedBy); err != nil {
		return nil, mapErr(err)
	}
	if err := json.Unmarshal([]byte(src), &c.SourceAddress); err != nil {
		return nil, fmt.Errorf("credential %s source_address: %w", c.ID, err)
	}
	secret, err := s.unseal(sealed, "credential:"+c.ID+":secret")
	if err != nil {
		return nil, err
	}
	c.Secret = secret
	c.NotBefore, c.NotAfter = fromMicros(nb), fromMicros(na)
	c.Created, c.Updated = fromMicros(created), fromMicros(updated)
	if lastUsed.Valid {
		t := fromMicros(lastUsed.Int64)
		c.LastUsed = &t
	}
	return &c, nil
}

// CreateCredential stores c; c.Secret must be set (the caller generates it) and is sealed and indexed here.
func (s *Store) CreateCredential(ctx context.Context, c *model.ProxyCredential, actor string) error {
	c.ID = uuid.NewString()
	now := s.now()
	c.Created, c.Updated, c.Author, c.UpdatedBy = now, now, actor, actor
	c.NotBefore, c.NotAfter = c.NotBefore.UTC().Truncate(time.Microsecond), c.NotAfter.UTC().Truncate(time.Microsecond)
	sealed, err := s.seal(c.Secret, "credential:"+c.ID+":secret")
	if err != nil {
		return err
	}
	src, _ := json.Marshal(nonNil(c.SourceAddress))
	_, err = s.conn().exec(ctx, `INSERT INTO proxy_credentials (id, user_id, target_id, name, comment, not_before, not_after, source_address, enabled, secret_sealed, secret_index, created, author, updated, updated_by)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`, c.ID, c.UserID, c.TargetID, c.Name, c.Comment, micros(c.NotBefore),
		micros(c.NotAfter), string(src), c.Enabled, sealed, s.SecretIndex(IndexProxySecret, c.Secret),
		micros(now), actor, micros(now), actor)
	if err != nil {
		return fmt.Errorf("create credential: %w", err)
	}
	return nil
}

// Credential returns the credential with id.
func (s *Store) Credential(ctx context.Context, id string) (*model.ProxyCredential, error) {
	c, err := s.scanCredential(s.conn().queryRow(ctx, `SELECT `+credentialColumns+` FROM proxy_credentials WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("get credential %s: %w", id, err)
	}
	return c, nil
}

// CredentialBySecret finds a credential through the keyed-hash index of its secret.
func (s *Store) CredentialBySecret(ctx context.Context, secret string) (*model.ProxyCredential, error) {
	c, err := s.scanCredential(s.conn().queryRow(ctx, `SELECT `+credentialColumns+` FROM proxy_credentials WHERE secret_index = ?`,
		s.SecretIndex(IndexProxySecret, secret)))
	if err != nil {
		return nil, fmt.Errorf("find credential: %w", err)
	}
	return c, nil
}

var credentialSortKeys = map[string]string{"name": "name", "created": "created", "not_after": "not_after", "not_before": "not_before"}

// ListCredentials returns a page of the user's credentials (all users' when userID is empty).
func (s *Store) ListCredentials(ctx context.Context, userID string, opts ListOptions) ([]*model.ProxyCredential, int, error) {
	tail, err := opts.clause(credentialSortKeys, "name")
	if err != nil {
		return nil, 0, err
	}
	where, args := ` WHERE 1=1`, []any{}
	if userID != "" {
		where += ` AND user_id = ?`
		args = append(args, userID)
	}
	if opts.Filter != "" {
		where += ` AND LOWER(name) LIKE ? ESCAPE '\'`
		args = append(args, likePattern(opts.Filter))
	}
	var total int
	if err := s.conn().queryRow(ctx, `SELECT COUNT(*) FROM proxy_credentials`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count credentials: %w", err)
	}
	rows, err := s.conn().query(ctx, `SELECT `+credentialColumns+` FROM proxy_credentials`+where+tail, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("list credentials: %w", err)
	}
	defer rows.Close()
	var out []*model.ProxyCredential
	for rows.Next() {
		c, err := s.scanCredential(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, c)
	}
	return out, total, mapErr(rows.Err())
}

// AllCredentials returns every credential, secrets opened, for the proxy's in-memory policy snapshot.
func (s *Store) AllCredentials(ctx context.Context) ([]*model.ProxyCredential, error) {
	rows, err := s.conn().query(ctx, `SELECT `+credentialColumns+` FROM proxy_credentials`)
	if err != nil {
		return nil, fmt.Errorf("list credentials: %w", err)
	}
	defer rows.Close()
	var out []*model.ProxyCredential
	for rows.Next() {
		c, err := s.scanCredential(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, mapErr(rows.Err())
}

// UpdateCredential replaces the credential's mutable fields (never its secret, user or target).
func (s *Store) UpdateCredential(ctx context.Context, c *model.ProxyCredential, actor string) error {
	now := s.now()
	src, _ := json.Marshal(nonNil(c.SourceAddress))
	res, err := s.conn().exec(ctx, `UPDATE proxy_credentials SET name = ?, comment = ?, not_before = ?, not_after = ?, source_address = ?, enabled = ?, updated = ?, updated_by = ? WHERE id = ?`,
		c.Name, c.Comment, micros(c.NotBefore), micros(c.NotAfter), string(src), c.Enabled, micros(now), actor, c.ID)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("update credential %s: %w", c.ID, err)
	}
	c.Updated, c.UpdatedBy = now, actor
	return nil
}

// RotateCredentialSecret replaces the credential's secret (sealed and indexed like a new one); the old secret
// stops authenticating at once.
func (s *Store) RotateCredentialSecret(ctx context.Context, id, secret, actor string) error {
	sealed, err := s.seal(secret, "credential:"+id+":secret")
	if err != nil {
		return fmt.Errorf("rotate credential %s: %w", id, err)
	}
	res, err := s.conn().exec(ctx, `UPDATE proxy_credentials SET secret_sealed = ?, secret_index = ?, updated = ?, updated_by = ? WHERE id = ?`,
		sealed, s.SecretIndex(IndexProxySecret, secret), micros(s.now()), actor, id)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("rotate credential %s: %w", id, err)
	}
	return nil
}

// DeleteCredential removes the credential.
func (s *Store) DeleteCredential(ctx context.Context, id string) error {
	res, err := s.conn().exec(ctx, `DELETE FROM proxy_credentials WHERE id = ?`, id)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("delete credential %s: %w", id, err)
	}
	return nil
}

// TouchCredentials records last use of many credentials in one transaction; the proxy batches these so the hot
// path never writes to the database.
func (s *Store) TouchCredentials(ctx context.Context, used map[string]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	return s.inTx(ctx, func(q conn) error {
		for id, t := range used {
			if _, err := q.exec(ctx, `UPDATE proxy_credentials SET last_used = ? WHERE id = ?`, micros(t), id); err != nil {
				return fmt.Errorf("touch credential %s: %w", id, err)
			}
		}
		return nil
	})
}

// PolicyCredential is what the proxy's policy snapshot keeps of a credential: everything but the secret itself,
// which is found through its keyed hash.
type PolicyCredential struct {
	ID, Name, UserID, TargetID string
	NotBefore, NotAfter        time.Time
	SourceAddress              []string
	Enabled                    bool
	SecretIndex                string
}

// PolicyCredentials returns every credential without opening any secret.
func (s *Store) PolicyCredentials(ctx context.Context) ([]PolicyCredential, error) {
	rows, err := s.conn().query(ctx, `SELECT id, name, user_id, target_id, not_before, not_after, source_address, enabled, secret_index FROM proxy_credentials`)
	if err != nil {
		return nil, fmt.Errorf("policy credentials: %w", err)
	}
	defer rows.Close()
	var out []PolicyCredential
	for rows.Next() {
		var c PolicyCredential
		var nb, na int64
		var src string
		if err := rows.Scan(&c.ID, &c.Name, &c.UserID, &c.TargetID, &nb, &na, &src, &c.Enabled, &c.SecretIndex); err != nil {
			return nil, mapErr(err)
		}
		if err := json.Unmarshal([]byte(src), &c.SourceAddress); err != nil {
			return nil, fmt.Errorf("credential %s source_address: %w", c.ID, err)
		}
		c.NotBefore, c.NotAfter = fromMicros(nb), fromMicros(na)
		out = append(out, c)
	}
	return out, mapErr(rows.Err())
}
