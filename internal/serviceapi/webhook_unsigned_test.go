package serviceapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/notify"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestWebhookNeedsSecret pins unsigned notifications: a webhook could be saved without a signing secret (or have
// it removed with ""), and its deliveries then went out unsigned, so a receiver could not tell Gatehouse's
// approval events from forged ones. Every webhook now needs a secret: a write that would leave one without is
// refused naming the webhook's secret field and stores nothing; a secret left out still stays with its URL.
func TestWebhookNeedsSecret(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	const N = "/settings/api/v1/settings/notifications"
	const secret = "hook-Secret-4711-abcdefgh"
	hookA, hookB := "https://hooks.example.test/a", "https://hooks.example.test/b"
	stored := func() []notify.Webhook {
		s, err := notify.Stored(gh.Server.Store())(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return s.Webhooks
	}
	gh.JSON("PUT", N, adm, map[string]any{"webhooks": []map[string]any{{"url": hookA, "secret": secret}}}, http.StatusOK, nil)

	for _, c := range []struct {
		name     string
		hooks    []map[string]any
		property string
	}{
		{"new webhook without a secret", []map[string]any{{"url": hookB}}, "webhooks[0].secret"},
		{"second webhook without a secret", []map[string]any{{"url": hookA}, {"url": hookB, "events": []string{"approved"}}}, "webhooks[1].secret"},
		{"secret removed", []map[string]any{{"url": hookA, "secret": ""}}, "webhooks[0].secret"},
		{"secret null", []map[string]any{{"url": hookB, "secret": nil}}, "webhooks[0].secret"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, b := gh.Do("PUT", N, adm, map[string]any{"webhooks": c.hooks})
			var e apiError
			json.Unmarshal(b, &e)
			if status != http.StatusBadRequest || e.Property != c.property {
				t.Errorf("status %d property %q, want 400 naming %s: %s", status, e.Property, c.property, b)
			}
			if w := stored(); len(w) != 1 || w[0].URL != hookA || w[0].Secret != secret {
				t.Errorf("a refused write changed the webhooks: %+v", w)
			}
		})
	}
	// Left out, the stored secret stays with its URL; a new webhook brings its own.
	gh.JSON("PUT", N, adm, map[string]any{"webhooks": []map[string]any{{"url": hookB, "secret": secret + "-b"}, {"url": hookA}}}, http.StatusOK, nil)
	for _, w := range stored() {
		if w.Secret == "" {
			t.Errorf("webhook %s stored without a secret", w.URL)
		}
	}
	// No webhooks at all is fine.
	gh.JSON("PUT", N, adm, map[string]any{"webhooks": []any{}}, http.StatusOK, nil)
}
