package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/google/uuid"
)

// LocalSourceID is the id of the built-in local user store; local users carry it as their source.
const LocalSourceID = "local"

// Source is a stored user source. The store keeps its settings as opaque JSON (the directory package owns their
// shape) and seals Secrets on the way in, so a bind password is never written in clear.
type Source struct {
	ID      string
	Name    string
	Type    string
	Enabled bool
	TTL     int64 // seconds between syncs
	// Config is the source's non-secret settings as JSON.
	Config json.RawMessage
	// Secrets are the write-only settings in clear, by field name; in memory only.
	Secrets    map[string]string
	StatusCode string
	StatusText string
	LastSync   time.Time
	model.Meta
}

const sourceColumns = `id, name, type, enabled, ttl, config, secrets_sealed, status_code, status_text, last_sync, created, author, updated, updated_by`

// sourceAAD binds a source's sealed secrets to its id, so they cannot be moved to another source's row.
func sourceAAD(id string) string { return "source-secrets:" + id }

func (s *Store) scanSource(row interface{ Scan(...any) error }) (*Source, error) {
	var src Source
	var config, sealed string
	var lastSync, created, updated int64
	err := row.Scan(&src.ID, &src.Name, &src.Type, &src.Enabled, &src.TTL, &config, &sealed, &src.StatusCode,
		&src.StatusText, &lastSync, &created, &src.Author, &updated, &src.UpdatedBy)
	if err != nil {
		return nil, mapErr(err)
	}
	src.Config = json.RawMessage(config)
	src.LastSync, src.Created, src.Updated = fromMicros(lastSync), fromMicros(created), fromMicros(updated)
	src.Secrets = map[string]string{}
	if sealed != "" {
		plain, err := s.unseal(sealed, sourceAAD(src.ID))
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", src.ID, err)
		}
		if err := json.Unmarshal([]byte(plain), &src.Secrets); err != nil {
			return nil, fmt.Errorf("source %s secrets: %w", src.ID, err)
		}
	}
	return &src, nil
}

func (s *Store) sealSourceSecrets(src *Source) (string, error) {
	if len(src.Secrets) == 0 {
		return "", nil
	}
	b, err := json.Marshal(src.Secrets)
	if err != nil {
		return "", err
	}
	return s.seal(string(b), sourceAAD(src.ID))
}

// EnsureLocalSource creates the built-in LOCAL source if it is missing. It is idempotent and safe to run on every
// node at once.
func (s *Store) EnsureLocalSource(ctx context.Context) error {
	now := micros(s.now())
	_, err := s.conn().exec(ctx, `INSERT INTO sources (`+sourceColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT DO NOTHING`,
		LocalSourceID, "Local users", "LOCAL", true, 0, `{"connection":{"type":"LOCAL"}}`, "", "OK",
		"Built-in local user store", 0, now, "system", now, "system")
	if err != nil {
		return fmt.Errorf("ensure local source: %w", err)
	}
	return nil
}

// CreateSource stores src, assigning its id (unless set) and times.
func (s *Store) CreateSource(ctx context.Context, src *Source, actor string) error {
	if src.ID == "" {
		src.ID = uuid.NewString()
	}
	now := s.now()
	src.Created, src.Updated, src.Author, src.UpdatedBy = now, now, actor, actor
	sealed, err := s.sealSourceSecrets(src)
	if err != nil {
		return fmt.Errorf("create source: %w", err)
	}
	_, err = s.conn().exec(ctx, `INSERT INTO sources (`+sourceColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		src.ID, src.Name, src.Type, src.Enabled, src.TTL, string(src.Config), sealed, src.StatusCode, src.StatusText,
		micros(src.LastSync), micros(now), actor, micros(now), actor)
	if err != nil {
		return fmt.Errorf("create source: %w", err)
	}
	return nil
}

// Source returns the source with id.
func (s *Store) Source(ctx context.Context, id string) (*Source, error) {
	if id == LocalSourceID {
		if err := s.EnsureLocalSource(ctx); err != nil {
			return nil, err
		}
	}
	src, err := s.scanSource(s.conn().queryRow(ctx, `SELECT `+sourceColumns+` FROM sources WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("get source %s: %w", id, err)
	}
	return src, nil
}

// ListSources returns every source, the LOCAL one first, then by name.
func (s *Store) ListSources(ctx context.Context) ([]*Source, error) {
	if err := s.EnsureLocalSource(ctx); err != nil {
		return nil, err
	}
	rows, err := s.conn().query(ctx, `SELECT `+sourceColumns+` FROM sources ORDER BY CASE WHEN id = ? THEN 0 ELSE 1 END, name, id`, LocalSourceID)
	if err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	defer rows.Close()
	out := []*Source{}
	for rows.Next() {
		src, err := s.scanSource(rows)
		if err != nil {
			return nil, fmt.Errorf("list sources: %w", err)
		}
		out = append(out, src)
	}
	return out, mapErr(rows.Err())
}

// UpdateSource replaces the source's settings and secrets. Status fields are left alone; see SetSourceStatus.
func (s *Store) UpdateSource(ctx context.Context, src *Source, actor string) error {
	now := s.now()
	sealed, err := s.sealSourceSecrets(src)
	if err != nil {
		return fmt.Errorf("update source %s: %w", src.ID, err)
	}
	res, err := s.conn().exec(ctx, `UPDATE sources SET name = ?, type = ?, enabled = ?, ttl = ?, config = ?, secrets_sealed = ?,
		updated = ?, updated_by = ? WHERE id = ?`,
		src.Name, src.Type, src.Enabled, src.TTL, string(src.Config), sealed, micros(now), actor, src.ID)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("update source %s: %w", src.ID, err)
	}
	src.Updated, src.UpdatedBy = now, actor
	return nil
}

// SetSourceStatus records the outcome of a sync.
func (s *Store) SetSourceStatus(ctx context.Context, id, code, text string, at time.Time) error {
	res, err := s.conn().exec(ctx, `UPDATE sources SET status_code = ?, status_text = ?, last_sync = ? WHERE id = ?`,
		code, text, micros(at), id)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("set status of source %s: %w", id, err)
	}
	return nil
}

// DeleteSource removes the source, the users it provided (with their grants and proxy credentials) and the role
// rules that name it, atomically.
func (s *Store) DeleteSource(ctx context.Context, id string) error {
	return s.inTx(ctx, func(c conn) error {
		if _, err := c.exec(ctx, `DELETE FROM users WHERE source = ?`, id); err != nil {
			return fmt.Errorf("delete source %s users: %w", id, err)
		}
		if _, err := c.exec(ctx, `DELETE FROM role_rules WHERE source_id = ?`, id); err != nil {
			return fmt.Errorf("delete source %s rules: %w", id, err)
		}
		res, err := c.exec(ctx, `DELETE FROM sources WHERE id = ?`, id)
		if err := affectedOne(res, err); err != nil {
			return fmt.Errorf("delete source %s: %w", id, err)
		}
		return s.recomputeRuleGrants(ctx, c)
	})
}

// SourceUserCounts returns how many users each source provides, by source id; a source with none is absent.
func (s *Store) SourceUserCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.conn().query(ctx, `SELECT source, COUNT(*) FROM users GROUP BY source`)
	if err != nil {
		return nil, fmt.Errorf("count users by source: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("count users by source: %w", err)
		}
		out[id] = n
	}
	return out, rows.Err()
}
