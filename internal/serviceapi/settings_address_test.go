package serviceapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestPublicAddressesNeedSuperuser pins the steering of users' traffic by a delegated administrator: with
// settings-manage alone, a principal could set public_addresses, the proxy address every user's client is told
// to use (GET .../conf, the CLI, the console's snippets), to a host it controls and collect users' proxy secrets
// and requests there. Changing it now needs every permission; other settings stay settings-manage's, and a
// settings document sent back unchanged still saves.
func TestPublicAddressesNeedSuperuser(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	e := &delegationEnv{t: t, gh: gh, adm: gh.AdminToken()}
	ctx := context.Background()
	uid := gh.Create(usersPath, e.adm, map[string]any{"username": "settings-admin", "password": "Settings-pass-12"})
	gh.JSON("PUT", "/role-store/api/v1/users/"+uid+"/roles", e.adm, []map[string]string{{"id": e.role(auth.SettingsManage)}}, http.StatusOK, nil)
	tok := gh.Token("settings-admin", "Settings-pass-12")
	const trusted = "gatehouse.example.com:20080"

	for _, path := range []string{proxyPath + "/settings", "/settings/api/v1/settings/api-proxy"} {
		t.Run(path, func(t *testing.T) {
			gh.JSON("PUT", path, e.adm, map[string]any{"public_addresses": []string{trusted}}, http.StatusOK, nil)
			for _, body := range []map[string]any{
				{"public_addresses": []string{"collector.attacker.test:20080"}},
				{"public_addresses": []string{"collector.attacker.test:20080", trusted}},
				{"public_addresses": []string{}, "session_cooldown": 60},
			} {
				before, err := gh.Server.Store().Settings(ctx)
				if err != nil {
					t.Fatal(err)
				}
				status, b := gh.Do("PUT", path, tok, body)
				var ae apiError
				json.Unmarshal(b, &ae)
				if status != http.StatusForbidden || ae.Property != "public_addresses" || !strings.Contains(ae.ErrorMessage, "public_addresses") {
					t.Errorf("settings-manage changing public_addresses %v: status %d property %q, want 403 naming public_addresses: %s", body["public_addresses"], status, ae.Property, b)
				}
				after, err := gh.Server.Store().Settings(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(after.PublicAddresses, before.PublicAddresses) || after.SessionCooldown != before.SessionCooldown {
					t.Errorf("a refused PUT stored settings: %+v", after)
				}
			}
			// The rest is still settings-manage's, with the whole document sent back as fetched too.
			var doc map[string]any
			gh.JSON("GET", path, tok, nil, http.StatusOK, &doc)
			doc["session_cooldown"] = 90
			gh.JSON("PUT", path, tok, doc, http.StatusOK, nil)
			gh.JSON("PUT", path, tok, map[string]any{"idle_session_timeout": 600, "public_addresses": []string{trusted}}, http.StatusOK, nil)
			if got, _ := gh.Server.Store().Settings(ctx); got.SessionCooldown != 90 || got.IdleSessionTimeout != 600 || !slices.Equal(got.PublicAddresses, []string{trusted}) {
				t.Errorf("settings after settings-manage's allowed PUTs: %+v", got)
			}
			// A superuser may move it.
			gh.JSON("PUT", path, e.adm, map[string]any{"public_addresses": []string{"gw.example.com:20080"}}, http.StatusOK, nil)
			gh.JSON("PUT", path, e.adm, map[string]any{"public_addresses": []string{}}, http.StatusOK, nil)
		})
	}
}
