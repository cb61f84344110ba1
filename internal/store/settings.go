package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gatehouse-dev/gatehouse/internal/model"
)

// Settings returns the proxy settings, or the defaults when none were saved.
func (s *Store) Settings(ctx context.Context) (model.Settings, error) {
	set := model.DefaultSettings()
	var v string
	err := mapErr(s.conn().queryRow(ctx, `SELECT value FROM settings WHERE name = 'api-proxy'`).Scan(&v))
	if errors.Is(err, ErrNotExist) {
		return set, nil
	}
	if err != nil {
		return set, fmt.Errorf("get settings: %w", err)
	}
	// Decoding over the defaults means a setting added in a later version gets its default.
	if err := json.Unmarshal([]byte(v), &set); err != nil {
		return set, fmt.Errorf("decode settings: %w", err)
	}
	return set, nil
}

// SaveSettings replaces the proxy settings.
func (s *Store) SaveSettings(ctx context.Context, set model.Settings) error {
	b, err := json.Marshal(set)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(q conn) error {
		if _, err := q.exec(ctx, `DELETE FROM settings WHERE name = 'api-proxy'`); err != nil {
			return fmt.Errorf("save settings: %w", err)
		}
		if _, err := q.exec(ctx, `INSERT INTO settings (name, value) VALUES ('api-proxy', ?)`, string(b)); err != nil {
			return fmt.Errorf("save settings: %w", err)
		}
		return nil
	})
}
