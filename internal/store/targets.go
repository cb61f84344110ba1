package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/google/uuid"
)

// targetSecrets is the part of a target credential that is sealed; the rest lives in the clear body.
type targetSecrets struct {
	BearerToken       string `json:"bearer_token,omitempty"`
	BasicAuthPassword string `json:"basic_auth_password,omitempty"`
	HeaderValue       string `json:"header_value,omitempty"`
	PrivateKey        string `json:"private_key,omitempty"`
}

const targetColumns = `id, name, version, body, credential_sealed, created, author, updated, updated_by`

func (s *Store) scanTarget(row interface{ Scan(...any) error }) (*model.Target, error) {
	var t model.Target
	var id, name, body, sealed, author, updatedBy string
	var version, created, updated int64
	if err := row.Scan(&id, &name, &version, &body, &sealed, &created, &author, &updated, &updatedBy); err != nil {
		return nil, mapErr(err)
	}
	if err := json.Unmarshal([]byte(body), &t); err != nil {
		return nil, fmt.Errorf("target %s body: %w", id, err)
	}
	t.ID, t.Name, t.Version = id, name, version
	t.Created, t.Author, t.Updated, t.UpdatedBy = fromMicros(created), author, fromMicros(updated), updatedBy
	plain, err := s.unseal(sealed, "target:"+id+":credential")
	if err != nil {
		return nil, err
	}
	if plain != "" {
		var sec targetSecrets
		if err := json.Unmarshal([]byte(plain), &sec); err != nil {
			return nil, fmt.Errorf("target %s credential: %w", id, err)
		}
		t.Credential.BearerToken, t.Credential.BasicAuthPassword = sec.BearerToken, sec.BasicAuthPassword
		t.Credential.HeaderValue, t.Credential.PrivateKey = sec.HeaderValue, sec.PrivateKey
	}
	return &t, nil
}

func (s *Store) targetRow(t *model.Target) (body, sealed string, err error) {
	// Roles live in target_roles; keep them out of the body so there is one source of truth.
	clean := *t
	clean.Roles = nil
	b, err := json.Marshal(clean)
	if err != nil {
		return "", "", err
	}
	sec, _ := json.Marshal(targetSecrets{
		BearerToken: t.Credential.BearerToken, BasicAuthPassword: t.Credential.BasicAuthPassword,
		HeaderValue: t.Credential.HeaderValue, PrivateKey: t.Credential.PrivateKey,
	})
	sealed, err = s.seal(string(sec), "target:"+t.ID+":credential")
	return string(b), sealed, err
}

// CreateTarget stores t with its roles.
func (s *Store) CreateTarget(ctx context.Context, t *model.Target, actor string) error {
	t.ID = uuid.NewString()
	now := s.now()
	t.Created, t.Updated, t.Author, t.UpdatedBy, t.Version = now, now, actor, actor, 1
	body, sealed, err := s.targetRow(t)
	if err != nil {
		return fmt.Errorf("create target: %w", err)
	}
	return s.inTx(ctx, func(q conn) error {
		_, err := q.exec(ctx, `INSERT INTO targets (`+targetColumns+`) VALUES (?,?,?,?,?,?,?,?,?)`,
			t.ID, t.Name, t.Version, body, sealed, micros(now), actor, micros(now), actor)
		if err != nil {
			return fmt.Errorf("create target: %w", err)
		}
		return setGrants(ctx, q, "target_roles", "target_id", t.ID, refIDs(t.Roles))
	})
}

// Target returns the target with id, credential opened and roles filled in.
func (s *Store) Target(ctx context.Context, id string) (*model.Target, error) {
	t, err := s.scanTarget(s.conn().queryRow(ctx, `SELECT `+targetColumns+` FROM targets WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("get target %s: %w", id, err)
	}
	roles, err := s.rolesVia(ctx, `SELECT r.id, r.name, r.comment, r.permissions, r.created, r.author, r.updated, r.updated_by
		FROM roles r JOIN target_roles tr ON tr.role_id = r.id WHERE tr.target_id = ? ORDER BY r.name`, id)
	if err != nil {
		return nil, err
	}
	t.Roles = refsOf(roles)
	return t, nil
}

// UpdateTarget replaces the target. The caller merges write-only secrets it did not change before calling.
func (s *Store) UpdateTarget(ctx context.Context, t *model.Target, actor string) error {
	now := s.now()
	t.Updated, t.UpdatedBy = now, actor
	return s.inTx(ctx, func(q conn) error {
		var version int64
		if err := q.queryRow(ctx, `SELECT version FROM targets WHERE id = ?`, t.ID).Scan(&version); err != nil {
			return fmt.Errorf("update target %s: %w", t.ID, mapErr(err))
		}
		t.Version = version + 1
		body, sealed, err := s.targetRow(t)
		if err != nil {
			return fmt.Errorf("update target %s: %w", t.ID, err)
		}
		_, err = q.exec(ctx, `UPDATE targets SET name = ?, version = ?, body = ?, credential_sealed = ?, updated = ?, updated_by = ? WHERE id = ?`,
			t.Name, t.Version, body, sealed, micros(now), actor, t.ID)
		if err != nil {
			return fmt.Errorf("update target %s: %w", t.ID, err)
		}
		return setGrants(ctx, q, "target_roles", "target_id", t.ID, refIDs(t.Roles))
	})
}

// DeleteTarget removes the target and the proxy credentials issued for it.
func (s *Store) DeleteTarget(ctx context.Context, id string) error {
	res, err := s.conn().exec(ctx, `DELETE FROM targets WHERE id = ?`, id)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("delete target %s: %w", id, err)
	}
	return nil
}

// AllTargets returns every target with credentials opened and roles filled in, ordered by name. The API's list,
// search and the proxy's policy snapshot filter this in memory: target counts are in the thousands, not millions.
func (s *Store) AllTargets(ctx context.Context) ([]*model.Target, error) {
	c := s.conn()
	rows, err := c.query(ctx, `SELECT `+targetColumns+` FROM targets ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list targets: %w", err)
	}
	var out []*model.Target
	byID := map[string]*model.Target{}
	for rows.Next() {
		t, err := s.scanTarget(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		t.Roles = []model.Ref{}
		out = append(out, t)
		byID[t.ID] = t
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, mapErr(err)
	}
	grants, err := c.query(ctx, `SELECT tr.target_id, r.id, r.name FROM target_roles tr JOIN roles r ON r.id = tr.role_id ORDER BY r.name`)
	if err != nil {
		return nil, fmt.Errorf("list target roles: %w", err)
	}
	defer grants.Close()
	for grants.Next() {
		var tid string
		var ref model.Ref
		if err := grants.Scan(&tid, &ref.ID, &ref.Name); err != nil {
			return nil, mapErr(err)
		}
		if t := byID[tid]; t != nil {
			t.Roles = append(t.Roles, ref)
		}
	}
	return out, mapErr(grants.Err())
}

// TargetTags returns every distinct tag in use, sorted.
func (s *Store) TargetTags(ctx context.Context) ([]string, error) {
	all, err := s.AllTargets(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	tags := []string{}
	for _, t := range all {
		for _, tag := range t.Tags {
			if !seen[tag] {
				seen[tag] = true
				tags = append(tags, tag)
			}
		}
	}
	sort.Strings(tags)
	return tags, nil
}
