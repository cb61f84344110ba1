package serviceapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestOwnerCannotRecreateAwayAdminRestrictions pins the way around owner limits (TestOwnerCannotLiftAdminRestrictions):
// an owner with only api-proxy-credentials-own could delete the credential an administrator had disabled,
// address-limited and cut short, and create a new one for the same target with none of it, or simply create a
// second one. A credential the owner creates for that target now gets the administrator's limits; a request for
// more is refused naming the field; the administrator can still lift them.
func TestOwnerCannotRecreateAwayAdminRestrictions(t *testing.T) {
	forEachDB(t, func(t *testing.T, gh *testserver.Instance) {
		ctx := context.Background()
		s := newCredSetup(t, gh)
		cred := gh.Create(userCreds(s.alice), s.adm, map[string]any{"name": "laptop", "target": map[string]string{"id": s.target}})
		ceiling := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Second)
		var restricted credView
		gh.JSON("PUT", userCreds(s.alice)+"/"+cred, s.adm, map[string]any{"enabled": false, "source_address": []string{"127.0.0.0/24"},
			"not_after": ceiling.Format(time.RFC3339)}, http.StatusOK, &restricted)

		create := func(body map[string]any) (int, []byte) {
			body["target"] = map[string]string{"id": s.target}
			return gh.Do("POST", ownCreds, s.aliceTok, body)
		}
		checkLimited := func(t *testing.T, id string, sources []string) {
			t.Helper()
			var got credView
			gh.JSON("GET", ownCreds+"/"+id, s.aliceTok, nil, http.StatusOK, &got)
			if got.Enabled || !slices.Equal(got.SourceAddress, sources) || got.NotAfter.After(ceiling) {
				t.Errorf("owner's new credential escapes the administrator's limits: %+v", got)
			}
		}
		// A second credential beside the restricted one, then delete-and-recreate.
		status, b := create(map[string]any{"name": "second"})
		if status != http.StatusCreated {
			t.Fatalf("owner create: %d %s", status, b)
		}
		var made struct {
			ID       string   `json:"id"`
			Warnings []string `json:"warnings"`
		}
		json.Unmarshal(b, &made)
		checkLimited(t, made.ID, []string{"127.0.0.0/24"})
		if len(made.Warnings) == 0 {
			t.Errorf("the answer does not say the administrator's limits were applied: %s", b)
		}
		gh.JSON("DELETE", ownCreds+"/"+made.ID, s.aliceTok, nil, http.StatusOK, nil)
		gh.JSON("DELETE", ownCreds+"/"+cred, s.aliceTok, nil, http.StatusOK, nil)
		status, b = create(map[string]any{"name": "recreated"})
		if status != http.StatusCreated {
			t.Fatalf("owner recreate: %d %s", status, b)
		}
		json.Unmarshal(b, &made)
		checkLimited(t, made.ID, []string{"127.0.0.0/24"})

		// Asking for more than the administrator left is refused, naming the field, and nothing is created.
		list := func() int {
			var l struct {
				Count int `json:"count"`
			}
			gh.JSON("GET", ownCreds, s.aliceTok, nil, http.StatusOK, &l)
			return l.Count
		}
		n := list()
		for _, c := range []struct {
			name  string
			body  map[string]any
			field string
		}{
			{"enabled", map[string]any{"enabled": true}, "enabled"},
			{"every address", map[string]any{"source_address": []string{}}, "source_address"},
			{"wider prefix", map[string]any{"source_address": []string{"127.0.0.0/8"}}, "source_address[0]"},
			{"outside address", map[string]any{"source_address": []string{"127.0.0.9", "10.0.0.1"}}, "source_address[1]"},
			{"longer validity", map[string]any{"not_after": ceiling.Add(time.Hour).Format(time.RFC3339)}, "not_after"},
		} {
			t.Run(c.name, func(t *testing.T) {
				c.body["name"] = "wider-" + c.name
				status, b := create(c.body)
				var e apiError
				json.Unmarshal(b, &e)
				if status != http.StatusForbidden || e.Property != c.field {
					t.Errorf("status %d property %q, want 403 naming %s: %s", status, e.Property, c.field, b)
				}
			})
		}
		if list() != n {
			t.Errorf("a refused create stored a credential")
		}
		// Narrower is the owner's to choose.
		status, b = create(map[string]any{"name": "narrow", "source_address": []string{"127.0.0.7"}, "not_after": ceiling.Add(-time.Hour).Format(time.RFC3339)})
		if status != http.StatusCreated {
			t.Fatalf("narrower create: %d %s", status, b)
		}
		json.Unmarshal(b, &made)
		checkLimited(t, made.ID, []string{"127.0.0.7"})

		// The limits are the user's for this target only: another target they may use is untouched.
		roles, err := gh.Server.Store().UserRoles(ctx, s.alice)
		if err != nil || len(roles) == 0 {
			t.Fatalf("alice's roles: %v", err)
		}
		third := gh.Create(targetsPath, s.adm, targetBody("third", roles[0].ID))
		status, b = gh.Do("POST", ownCreds, s.aliceTok, map[string]any{"name": "elsewhere", "target": map[string]string{"id": third}, "enabled": true})
		if status != http.StatusCreated {
			t.Fatalf("create for another target: %d %s", status, b)
		}

		// An administrator lifts them by re-enabling and opening a credential of the user's for the target.
		gh.JSON("PUT", userCreds(s.alice)+"/"+made.ID, s.adm, map[string]any{"enabled": true, "source_address": []string{}}, http.StatusOK, nil)
		status, b = create(map[string]any{"name": "open", "enabled": true})
		if status != http.StatusCreated {
			t.Fatalf("create after the administrator lifted the limits: %d %s", status, b)
		}
	})
}
