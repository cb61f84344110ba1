package serviceapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
	"github.com/google/go-cmp/cmp"
)

type auditEvent struct {
	ID            int64          `json:"id"`
	Time          time.Time      `json:"time"`
	Actor         string         `json:"actor"`
	ActorID       string         `json:"actor_id"`
	Action        string         `json:"action"`
	ObjectType    string         `json:"object_type"`
	ObjectID      string         `json:"object_id"`
	SourceAddress string         `json:"source_address"`
	Outcome       string         `json:"outcome"`
	Diff          map[string]any `json:"diff"`
}

type auditList struct {
	Count int          `json:"count"`
	Items []auditEvent `json:"items"`
}

func events(t *testing.T, gh *testserver.Instance, token string, q url.Values) auditList {
	t.Helper()
	var l auditList
	gh.JSON("GET", auditPath+"?"+q.Encode(), token, nil, http.StatusOK, &l)
	return l
}

// TestAuditTrail makes one change of every kind and checks that each left an event with actor, action, object,
// source address and a diff without secrets.
func TestAuditTrail(t *testing.T) {
	forEachDB(t, func(t *testing.T, gh *testserver.Instance) {
		adm := gh.AdminToken()
		var me struct {
			ID string `json:"id"`
		}
		gh.JSON("GET", "/auth/api/v1/users/current", adm, nil, http.StatusOK, &me)
		const (
			userPW        = "Audit-user-pass-1"
			userPW2       = "Audit-user-pass-2"
			targetSecret  = "audit-target-SECRET"
			targetSecret2 = "audit-target-SECRET-2"
		)
		role := gh.Create(rolesPath, adm, map[string]any{"name": "auditors", "comment": "before", "permissions": []string{auth.AuditView, auth.APIProxyCredentialsOwn}})
		gh.JSON("PUT", rolesPath+"/"+role, adm, map[string]any{"comment": "after"}, http.StatusOK, nil)
		user := gh.Create(usersPath, adm, map[string]any{"username": "ivan", "password": userPW})
		gh.JSON("PUT", usersPath+"/"+user, adm, map[string]any{"email": "ivan@example.com"}, http.StatusOK, nil)
		gh.JSON("PUT", usersPath+"/"+user+"/password", adm, map[string]any{"password": userPW2}, http.StatusOK, nil)
		gh.JSON("PUT", "/role-store/api/v1/users/"+user+"/roles", adm, []map[string]string{{"id": role}}, http.StatusOK, nil)
		client := gh.Create(clientsPath, adm, map[string]any{"name": "audit-bot"})
		var cv apiClientView
		gh.JSON("GET", clientsPath+"/"+client, adm, nil, http.StatusOK, &cv)
		gh.JSON("PUT", clientsPath+"/"+client, adm, map[string]any{"name": "audit-bot-2"}, http.StatusOK, nil)
		body := targetBody("audited", role)
		body["target_credential"] = map[string]any{"type": "token", "bearer_token": targetSecret}
		target := gh.Create(targetsPath, adm, body)
		gh.JSON("PUT", targetsPath+"/"+target, adm, map[string]any{"comment": "c2", "target_credential": map[string]any{"type": "token", "bearer_token": targetSecret2}}, http.StatusOK, nil)
		cred := gh.Create(userCreds(user), adm, map[string]any{"name": "audit-cred", "target": map[string]string{"id": target}})
		gh.JSON("POST", userCreds(user)+"/"+cred+"/rotate", adm, nil, http.StatusOK, nil)
		ivan := gh.Token("ivan", userPW2)
		_, secret := gh.Do("GET", ownCreds+"/"+cred+"/secret", ivan, nil) // only the owner reads it
		gh.JSON("PUT", userCreds(user)+"/"+cred, adm, map[string]any{"comment": "narrowed"}, http.StatusOK, nil)
		gh.JSON("PUT", proxyPath+"/settings", adm, map[string]any{"session_cooldown": 42}, http.StatusOK, nil)
		if status := tokenStatus(t, gh, "ivan", "wrong-password"); status != http.StatusUnauthorized {
			t.Fatalf("bad login: %d", status)
		}
		gh.JSON("DELETE", userCreds(user)+"/"+cred, adm, nil, http.StatusOK, nil)
		gh.JSON("DELETE", targetsPath+"/"+target, adm, nil, http.StatusOK, nil)
		gh.JSON("DELETE", clientsPath+"/"+client, adm, nil, http.StatusOK, nil)
		gh.JSON("DELETE", rolesPath+"/"+role, adm, nil, http.StatusOK, nil)
		gh.JSON("DELETE", usersPath+"/"+user, adm, nil, http.StatusOK, nil)
		_ = ivan

		all := mustGet(t, gh, auditPath+"?limit=1000", adm)
		for name, s := range map[string]string{"user password": userPW, "new user password": userPW2, "target secret": targetSecret,
			"rotated target secret": targetSecret2, "credential secret": string(secret), "api client secret": cv.Secret,
			"oauth client secret": cv.OAuthClientSecret, "wrong password": "wrong-password"} {
			if s == "" || strings.Contains(string(all), s) {
				t.Errorf("the audit log contains the %s (or it is empty)", name)
			}
		}

		for _, c := range []struct {
			objectType, objectID string
			actions              []string // newest first
		}{
			{"role", role, []string{"delete", "update", "create"}},
			{"user", user, []string{"delete", "set-roles", "set-password", "update", "create"}},
			{"api-client", client, []string{"delete", "update", "create"}},
			{"api-target", target, []string{"delete", "update", "create"}},
			{"api-proxy-credential", cred, []string{"delete", "update", "read-secret", "rotate-secret", "create"}},
			{"settings", "", []string{"update"}},
		} {
			t.Run(c.objectType, func(t *testing.T) {
				q := url.Values{"object_type": {c.objectType}}
				if c.objectID != "" {
					q.Set("object_id", c.objectID)
				}
				l := events(t, gh, adm, q)
				var got []string
				for _, e := range l.Items {
					got = append(got, e.Action)
					actor, actorID := "admin", me.ID
					if e.Action == "read-secret" {
						actor, actorID = "ivan", user
					}
					if e.Actor != actor || e.ActorID != actorID || e.SourceAddress != "127.0.0.1" || e.Outcome != "success" ||
						e.Time.IsZero() || e.ObjectType != c.objectType || (c.objectID != "" && e.ObjectID != c.objectID) {
						t.Errorf("event %+v", e)
					}
				}
				if l.Count != len(c.actions) || !cmp.Equal(got, c.actions) {
					t.Errorf("actions %v (count %d), want %v", got, l.Count, c.actions)
				}
			})
		}

		// Diffs: an update records only what changed.
		l := events(t, gh, adm, url.Values{"object_id": {role}, "action": {"update"}})
		if len(l.Items) != 1 || !cmp.Equal(l.Items[0].Diff, map[string]any{"comment": map[string]any{"old": "before", "new": "after"}}) {
			t.Errorf("role update diff: %+v", l.Items)
		}
		l = events(t, gh, adm, url.Values{"object_type": {"settings"}})
		if len(l.Items) != 1 || !cmp.Equal(l.Items[0].Diff, map[string]any{"session_cooldown": map[string]any{"old": 300.0, "new": 42.0}}) {
			t.Errorf("settings diff: %+v", l.Items)
		}
		l = events(t, gh, adm, url.Values{"object_id": {target}, "action": {"update"}})
		if len(l.Items) != 1 || l.Items[0].Diff["comment"] == nil {
			t.Errorf("target update diff: %+v", l.Items)
		}
		l = events(t, gh, adm, url.Values{"object_id": {user}, "action": {"create"}})
		if len(l.Items) != 1 || l.Items[0].Diff["username"] == nil {
			t.Errorf("user create diff: %+v", l.Items)
		}

		// Logins: success and failure, with the name tried.
		l = events(t, gh, adm, url.Values{"action": {"login"}, "actor": {"ivan"}})
		var outcomes []string
		for _, e := range l.Items {
			outcomes = append(outcomes, e.Outcome)
			if e.SourceAddress != "127.0.0.1" || e.ObjectType == "" {
				t.Errorf("login event %+v", e)
			}
		}
		if !cmp.Equal(outcomes, []string{"failure", "success"}) {
			t.Errorf("ivan's logins: %v", outcomes)
		}
	})
}

func TestAuditFilters(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	_, tok, _ := newUserWithRole(t, gh, adm, "judy", auth.RolesManage)
	r1 := gh.Create(rolesPath, adm, map[string]any{"name": "one"})
	r2 := gh.Create(rolesPath, tok, map[string]any{"name": "two"})
	created := events(t, gh, adm, url.Values{"object_id": {r2}}).Items
	if len(created) != 1 {
		t.Fatalf("events of r2: %+v", created)
	}
	mark := created[0].Time
	gh.JSON("PUT", rolesPath+"/"+r1, tok, map[string]any{"comment": "later"}, http.StatusOK, nil)

	ids := func(q url.Values) []string {
		var out []string
		for _, e := range events(t, gh, adm, q).Items {
			out = append(out, e.Action+" "+e.ObjectID)
		}
		return out
	}
	for _, c := range []struct {
		name string
		q    url.Values
		want []string
	}{
		{"actor", url.Values{"actor": {"judy"}, "object_type": {"role"}}, []string{"update " + r1, "create " + r2}},
		{"object id", url.Values{"object_id": {r1}}, []string{"update " + r1, "create " + r1}},
		{"from", url.Values{"object_type": {"role"}, "from": {mark.Format(time.RFC3339Nano)}}, []string{"update " + r1, "create " + r2}},
		{"to", url.Values{"object_id": {r1}, "to": {mark.Format(time.RFC3339Nano)}}, []string{"create " + r1}},
		{"ascending", url.Values{"object_id": {r1}, "sortdir": {"asc"}}, []string{"create " + r1, "update " + r1}},
		{"paging", url.Values{"object_type": {"role"}, "actor": {"judy"}, "limit": {"1"}, "offset": {"1"}}, []string{"create " + r2}},
		{"no match", url.Values{"actor": {"nobody"}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := ids(c.q); !cmp.Equal(got, c.want) {
				t.Errorf("%v: %v, want %v", c.q, got, c.want)
			}
		})
	}
	checkBad(t, gh, "GET", auditPath+"?from=yesterday", adm, []badCase{{"bad from", nil, 400, "from"}})
	checkBad(t, gh, "GET", auditPath+"?to=2020-13-01", adm, []badCase{{"bad to", nil, 400, "to"}})
	checkListParams(t, gh, auditPath, adm)
}
