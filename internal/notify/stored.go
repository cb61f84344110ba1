package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

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
		secrets, err := st.WebhookSecrets(ctx)
		if err != nil {
			return Settings{}, err
		}
		for i := range s.Webhooks {
			if i < len(secrets) {
				s.Webhooks[i].Secret = secrets[i]
			}
		}
		return withDefaults(s), nil
	}
}

// Save validates s and stores it; the SMTP password and the webhook secrets are sealed at rest. A nil password
// keeps the stored one. secrets go with s.Webhooks by position: a non-nil one replaces the webhook's secret (""
// removes it), a nil or missing one keeps the stored secret of the webhook with the same URL, if any.
func Save(ctx context.Context, st *store.Store, s Settings, password *string, secrets []*string, actor string) error {
	s = withDefaults(s)
	s.Webhooks = slices.Clone(s.Webhooks)
	old, err := Stored(st)(ctx)
	if err != nil {
		return err
	}
	for i := range s.Webhooks {
		if i < len(secrets) && secrets[i] != nil {
			s.Webhooks[i].Secret = *secrets[i]
			continue
		}
		s.Webhooks[i].Secret = ""
		for _, o := range old.Webhooks {
			if o.URL == s.Webhooks[i].URL && o.Secret != "" {
				s.Webhooks[i].Secret = o.Secret
				break
			}
		}
	}
	check := s
	if password != nil {
		check.SMTP.Password = *password
	} else {
		check.SMTP.Password = old.SMTP.Password
	}
	if err := check.Check(); err != nil {
		return err
	}
	hooks := make([]string, len(s.Webhooks))
	for i, w := range s.Webhooks {
		hooks[i] = w.Secret
	}
	body, err := json.Marshal(s) // Password and Secret are json:"-": they go sealed in their own columns only
	if err != nil {
		return err
	}
	return st.SaveNotificationSettingsSecrets(ctx, string(body), password, hooks, actor)
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
