package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Stored returns a settings source that reads the settings saved in st (none saved: the zero Settings).
func Stored(st *store.Store) func(ctx context.Context) (Settings, error) {
	return func(ctx context.Context) (Settings, error) {
		body, pw, err := st.NotificationSettings(ctx)
		if errors.Is(err, store.ErrNotExist) {
			return withDefaults(Settings{}), nil
		}
		if err != nil {
			return Settings{}, err
		}
		var s Settings
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			return Settings{}, fmt.Errorf("notification settings: %w", err)
		}
		s.SMTP.Password = pw
		return withDefaults(s), nil
	}
}

// Save validates s and stores it; the SMTP password is sealed at rest, and a nil password keeps the stored one.
func Save(ctx context.Context, st *store.Store, s Settings, password *string, actor string) error {
	s = withDefaults(s)
	check := s
	if password != nil {
		check.SMTP.Password = *password
	} else if _, pw, err := st.NotificationSettings(ctx); err == nil {
		check.SMTP.Password = pw
	}
	if err := check.Check(); err != nil {
		return err
	}
	body, err := json.Marshal(s) // Password is json:"-": it goes sealed in its own column only
	if err != nil {
		return err
	}
	return st.SaveNotificationSettings(ctx, string(body), password, actor)
}

// withDefaults fills what a settings body may leave out: no lists are null, and the TLS mode is starttls.
func withDefaults(s Settings) Settings {
	if s.Webhooks == nil {
		s.Webhooks = []Webhook{}
	}
	if s.SMTP.To == nil {
		s.SMTP.To = []string{}
	}
	if s.SMTP.TLSMode == "" {
		s.SMTP.TLSMode = TLSStartTLS
	}
	return s
}
