package serviceapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/notify"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestWebhookSecretWriteOnly: a webhook's signing secret is taken on a write, never shown (secret_set says it is
// there), sealed at rest, kept by URL when a write leaves it out, and refused by name when short or removed
// (TestWebhookNeedsSecret has the rest of that rule).
func TestWebhookSecretWriteOnly(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	const N = "/settings/api/v1/settings/notifications"
	const secret, secretB = "hook-Secret-4711-abcdefgh", "hook-Secret-b-0123456789"
	hookA, hookB := "https://hooks.example.test/a", "https://hooks.example.test/b"
	put := func(hooks []map[string]any) (int, string) {
		st, body := gh.Do("PUT", N, adm, map[string]any{"webhooks": hooks})
		return st, string(body)
	}
	stored := func() []notify.Webhook {
		s, err := notify.Stored(gh.Server.Store())(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return s.Webhooks
	}
	type view struct {
		Webhooks []struct {
			URL       string `json:"url"`
			SecretSet bool   `json:"secret_set"`
		} `json:"webhooks"`
	}
	read := func() (view, string) {
		var v view
		st, body := gh.Do("GET", N, adm, nil)
		if st != http.StatusOK || json.Unmarshal(body, &v) != nil {
			t.Fatalf("GET: %d %s", st, body)
		}
		return v, string(body)
	}

	st, body := put([]map[string]any{{"url": hookA, "secret": secret}, {"url": hookB, "secret": secretB}})
	if st != http.StatusOK || strings.Contains(body, secret) {
		t.Fatalf("PUT with a secret: %d %s", st, body)
	}
	v, body := read()
	if strings.Contains(body, secret) || strings.Contains(body, secretB) || len(v.Webhooks) != 2 || !v.Webhooks[0].SecretSet || !v.Webhooks[1].SecretSet {
		t.Fatalf("GET shows %s", body)
	}
	if w := stored(); w[0].Secret != secret || w[1].Secret != secretB {
		t.Fatalf("stored secrets %q %q", w[0].Secret, w[1].Secret)
	}
	leakCheck(t, gh.Cfg.DataDir, secret)
	if st, body := gh.Do("GET", "/audit/api/v1/events?limit=100", adm, nil); st != http.StatusOK || strings.Contains(string(body), secret) ||
		!strings.Contains(string(body), "notification-settings") {
		t.Errorf("audit log: %d, holds the secret or lacks the change: %.300s", st, body)
	}

	// Reordered and rewritten without secrets, the secret stays with its URL.
	if st, body := put([]map[string]any{{"url": hookB, "events": []string{"approved"}}, {"url": hookA}}); st != http.StatusOK {
		t.Fatalf("PUT without secrets: %d %s", st, body)
	}
	if w := stored(); w[0].Secret != secretB || w[1].URL != hookA || w[1].Secret != secret {
		t.Fatalf("after a write without secrets: %+v", w)
	}
	// A short secret is refused by name and changes nothing.
	st, body = put([]map[string]any{{"url": hookA, "secret": "short"}})
	if st != http.StatusBadRequest || !strings.Contains(body, `"property":"webhooks[0].secret"`) {
		t.Fatalf("short secret: %d %s", st, body)
	}
	if w := stored(); len(w) != 2 || w[1].Secret != secret {
		t.Fatalf("a refused write changed the settings: %+v", w)
	}
	// "" would leave the webhook unsigned: refused by name too.
	st, body = put([]map[string]any{{"url": hookA, "secret": ""}})
	if st != http.StatusBadRequest || !strings.Contains(body, `"property":"webhooks[0].secret"`) {
		t.Fatalf("removing the secret: %d %s", st, body)
	}
	if v, _ := read(); len(v.Webhooks) != 2 || !v.Webhooks[0].SecretSet || !v.Webhooks[1].SecretSet {
		t.Fatalf("a refused write changed the settings: %+v", v)
	}
}
