package serviceapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestOwnerCannotLiftAdminRestrictions: with only api-proxy-credentials-own, an owner could send
// {"enabled":true,"source_address":[]} and undo what an administrator had set on their credential. Now each
// field may only narrow; a refusal names the field and changes nothing stored; the administrator still can.
func TestOwnerCannotLiftAdminRestrictions(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	s := newCredSetup(t, gh)
	cred := gh.Create(userCreds(s.alice), s.adm, map[string]any{"name": "laptop", "target": map[string]string{"id": s.target}})
	var stored credView
	gh.JSON("PUT", userCreds(s.alice)+"/"+cred, s.adm, map[string]any{"enabled": false, "source_address": []string{"127.0.0.0/24"}}, http.StatusOK, &stored)
	own := ownCreds + "/" + cred
	for _, tt := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"re-enable", map[string]any{"enabled": true}, "enabled"},
		{"re-enable and drop limits", map[string]any{"enabled": true, "source_address": []string{}}, "enabled"},
		{"drop limits", map[string]any{"source_address": []string{}}, "source_address"},
		{"widen to everything", map[string]any{"source_address": []string{"0.0.0.0/0"}}, "source_address[0]"},
		{"widen the prefix", map[string]any{"source_address": []string{"127.0.0.0/8"}}, "source_address[0]"},
		{"add an outside address", map[string]any{"source_address": []string{"127.0.0.9", "10.1.2.3"}}, "source_address[1]"},
		{"extend not_after", map[string]any{"not_after": stored.NotAfter.Add(time.Minute).Format(time.RFC3339)}, "not_after"},
		{"move not_before earlier", map[string]any{"not_before": stored.NotBefore.Add(-time.Hour).Format(time.RFC3339)}, "not_before"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, b := gh.Do("PUT", own, s.aliceTok, tt.body)
			var e struct {
				Property string `json:"property"`
			}
			json.Unmarshal(b, &e)
			if status < 400 || status > 499 || e.Property != tt.field {
				t.Fatalf("status %d property %q, want 4xx naming %s: %s", status, e.Property, tt.field, b)
			}
			var now credView
			gh.JSON("GET", own, s.aliceTok, nil, http.StatusOK, &now)
			if now.Enabled || !slices.Equal(now.SourceAddress, []string{"127.0.0.0/24"}) || !now.NotAfter.Equal(stored.NotAfter) || !now.NotBefore.Equal(stored.NotBefore) {
				t.Fatalf("a refused change was stored: %+v", now)
			}
		})
	}
	// Narrowing is the owner's to do.
	var got credView
	gh.JSON("PUT", own, s.aliceTok, map[string]any{"name": "renamed", "source_address": []string{"127.0.0.7"},
		"not_after": stored.NotAfter.Add(-time.Minute).Format(time.RFC3339)}, http.StatusOK, &got)
	if got.Name != "renamed" || !slices.Equal(got.SourceAddress, []string{"127.0.0.7"}) || got.Enabled {
		t.Fatalf("narrowing: %+v", got)
	}
	// An owner's own narrowing is a ceiling too: 127.0.0.7 cannot grow back to the /24.
	if status, b := gh.Do("PUT", own, s.aliceTok, map[string]any{"source_address": []string{"127.0.0.0/24"}}); status != http.StatusForbidden {
		t.Fatalf("widening back: %d %s", status, b)
	}
	// The administrator can lift what it set.
	gh.JSON("PUT", userCreds(s.alice)+"/"+cred, s.adm, map[string]any{"enabled": true, "source_address": []string{}}, http.StatusOK, &got)
	if !got.Enabled || len(got.SourceAddress) != 0 {
		t.Fatalf("admin lifting: %+v", got)
	}
	// And on an unrestricted, enabled credential the owner may add limits and disable.
	gh.JSON("PUT", own, s.aliceTok, map[string]any{"source_address": []string{"127.0.0.1"}, "enabled": false}, http.StatusOK, &got)
	if got.Enabled || !slices.Equal(got.SourceAddress, []string{"127.0.0.1"}) {
		t.Fatalf("owner narrowing an open credential: %+v", got)
	}
}
