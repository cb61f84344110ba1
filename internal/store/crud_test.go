package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestUserCRUD(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		s := e.S
		u := mustUser(t, s, "alice")
		if u.ID == "" || u.Created.IsZero() || u.Source != "local" || u.Author != "tester" {
			t.Fatalf("create did not fill bookkeeping: %+v", u)
		}
		got, err := s.User(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(u, got); diff != "" {
			t.Errorf("read back (-want +got):\n%s", diff)
		}
		byName, err := s.UserByName(ctx, "alice")
		if err != nil || byName.ID != u.ID {
			t.Errorf("UserByName = %v, %v", byName, err)
		}

		u.Email, u.FullName, u.Enabled = "new@example.com", "New Name", false
		if err := s.UpdateUser(ctx, u, "editor"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetPassword(ctx, u.ID, "$argon2id$other", "editor"); err != nil {
			t.Fatal(err)
		}
		got, _ = s.User(ctx, u.ID)
		if got.Email != "new@example.com" || got.FullName != "New Name" || got.Enabled || got.UpdatedBy != "editor" || got.PasswordHash != "$argon2id$other" {
			t.Errorf("after update: %+v", got)
		}

		if err := s.CreateUser(ctx, &model.User{Username: "alice", Enabled: true}, "x"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("duplicate username: %v, want ErrConflict", err)
		}
		bob := mustUser(t, s, "bob")
		bob.Username = "alice"
		if err := s.UpdateUser(ctx, bob, "x"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("rename onto existing username: %v, want ErrConflict", err)
		}

		if n, err := s.CountUsers(ctx); err != nil || n != 2 {
			t.Errorf("CountUsers = %d, %v; want 2", n, err)
		}
		if err := s.DeleteUser(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		missing := []struct {
			name string
			err  error
		}{
			{"get", func() error { _, err := s.User(ctx, u.ID); return err }()},
			{"get by name", func() error { _, err := s.UserByName(ctx, "alice"); return err }()},
			{"update", s.UpdateUser(ctx, &model.User{ID: u.ID, Username: "zed"}, "x")},
			{"set password", s.SetPassword(ctx, u.ID, "h", "x")},
			{"delete", s.DeleteUser(ctx, u.ID)},
		}
		for _, m := range missing {
			if !errors.Is(m.err, store.ErrNotExist) {
				t.Errorf("%s of deleted user: %v, want ErrNotExist", m.name, m.err)
			}
		}
	})
}

func TestRoleCRUDAndGrants(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		s := e.S
		r := mustRole(t, s, "devs", "users-view", "api-targets-view")
		got, err := s.Role(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(r, got); diff != "" {
			t.Errorf("read back (-want +got):\n%s", diff)
		}
		empty := mustRole(t, s, "empty")
		if got, _ := s.Role(ctx, empty.ID); got.Permissions == nil || len(got.Permissions) != 0 {
			t.Errorf("role without permissions reads back as %#v, want empty list", got.Permissions)
		}
		if err := s.CreateRole(ctx, &model.Role{Name: "devs"}, "x"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("duplicate role: %v, want ErrConflict", err)
		}
		r.Permissions, r.Comment = []string{"roles-view"}, "changed"
		if err := s.UpdateRole(ctx, r, "editor"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Role(ctx, r.ID); !cmp.Equal(got.Permissions, []string{"roles-view"}) || got.Comment != "changed" {
			t.Errorf("after update: %+v", got)
		}

		u := mustUser(t, s, "alice")
		if err := s.SetUserRoles(ctx, u.ID, []string{r.ID, empty.ID, r.ID}); err != nil {
			t.Fatal(err)
		}
		roles, err := s.UserRoles(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"devs", "empty"}, names(roles)); diff != "" {
			t.Errorf("user roles (-want +got):\n%s", diff)
		}
		members, err := s.RoleMembers(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]store.RoleMember{{ID: u.ID, Name: "alice", Kind: "user", Explicit: true}}, members); diff != "" {
			t.Errorf("members (-want +got):\n%s", diff)
		}
		if _, err := s.RoleMembers(ctx, "no-such-role"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("members of unknown role: %v, want ErrNotExist", err)
		}

		// Deleting a role removes its grants instead of leaving dangling rows.
		if err := s.DeleteRole(ctx, empty.ID); err != nil {
			t.Fatal(err)
		}
		roles, _ = s.UserRoles(ctx, u.ID)
		if diff := cmp.Diff([]string{"devs"}, names(roles)); diff != "" {
			t.Errorf("user roles after role delete (-want +got):\n%s", diff)
		}
		for name, err := range map[string]error{
			"get":    func() error { _, err := s.Role(ctx, empty.ID); return err }(),
			"update": s.UpdateRole(ctx, &model.Role{ID: empty.ID, Name: "x"}, "x"),
			"delete": s.DeleteRole(ctx, empty.ID),
		} {
			if !errors.Is(err, store.ErrNotExist) {
				t.Errorf("%s of deleted role: %v, want ErrNotExist", name, err)
			}
		}
	})
}

// TestSetUserRolesAtomic pins that a bad role id fails the whole replacement: the user keeps exactly the grants it
// had, not a half-applied list.
func TestSetUserRolesAtomic(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		s := e.S
		a, b := mustRole(t, s, "a"), mustRole(t, s, "b")
		u := mustUser(t, s, "alice")
		if err := s.SetUserRoles(ctx, u.ID, []string{a.ID}); err != nil {
			t.Fatal(err)
		}
		err := s.SetUserRoles(ctx, u.ID, []string{b.ID, "no-such-role"})
		if !errors.Is(err, store.ErrReference) {
			t.Fatalf("grant of unknown role: %v, want ErrReference", err)
		}
		roles, _ := s.UserRoles(ctx, u.ID)
		if diff := cmp.Diff([]string{"a"}, names(roles)); diff != "" {
			t.Errorf("grants changed by a failed replacement (-want +got):\n%s", diff)
		}
		if err := s.SetUserRoles(ctx, "no-such-user", []string{a.ID}); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("roles of unknown user: %v, want ErrNotExist", err)
		}
		if err := s.SetUserRoles(ctx, u.ID, nil); err != nil {
			t.Fatal(err)
		}
		if roles, _ := s.UserRoles(ctx, u.ID); len(roles) != 0 {
			t.Errorf("empty replacement left %v", names(roles))
		}
	})
}

func TestAPIClientCRUD(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		s := e.S
		r1, r2 := mustRole(t, s, "r1"), mustRole(t, s, "r2")
		c := &model.APIClient{Name: "ci", Roles: []model.Ref{{ID: r1.ID}}, Secret: "client-secret-1",
			OAuthClientID: "oauth-id-1", OAuthClientSecret: "oauth-secret-1"}
		if err := s.CreateAPIClient(ctx, c, "tester"); err != nil {
			t.Fatal(err)
		}
		got, err := s.APIClient(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := *c
		want.Roles = []model.Ref{{ID: r1.ID, Name: "r1"}}
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("read back (-want +got):\n%s", diff)
		}
		for name, find := range map[string]func() (*model.APIClient, error){
			"by secret":   func() (*model.APIClient, error) { return s.APIClientBySecret(ctx, "client-secret-1") },
			"by oauth id": func() (*model.APIClient, error) { return s.APIClientByOAuthID(ctx, "oauth-id-1") },
		} {
			if got, err := find(); err != nil || got.ID != c.ID || got.OAuthClientSecret != "oauth-secret-1" {
				t.Errorf("%s: %+v, %v", name, got, err)
			}
		}
		if _, err := s.APIClientBySecret(ctx, "client-secret-2"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("unknown secret: %v, want ErrNotExist", err)
		}

		dup := &model.APIClient{Name: "ci", Secret: "s2", OAuthClientID: "o2", OAuthClientSecret: "os2"}
		if err := s.CreateAPIClient(ctx, dup, "x"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("duplicate name: %v, want ErrConflict", err)
		}
		bad := &model.APIClient{Name: "bad", Roles: []model.Ref{{ID: "no-such-role"}}, Secret: "s3", OAuthClientID: "o3", OAuthClientSecret: "os3"}
		if err := s.CreateAPIClient(ctx, bad, "x"); !errors.Is(err, store.ErrReference) {
			t.Errorf("unknown role: %v, want ErrReference", err)
		}
		if _, err := s.APIClientByOAuthID(ctx, "o3"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("failed create left a client behind: %v", err)
		}

		c.Name, c.Roles = "ci-renamed", []model.Ref{{ID: r2.ID}}
		if err := s.UpdateAPIClient(ctx, c, "editor"); err != nil {
			t.Fatal(err)
		}
		got, _ = s.APIClient(ctx, c.ID)
		if got.Name != "ci-renamed" || !cmp.Equal(got.Roles, []model.Ref{{ID: r2.ID, Name: "r2"}}) || got.Secret != "client-secret-1" {
			t.Errorf("after update: %+v", got)
		}
		c.Roles = []model.Ref{{ID: r1.ID}, {ID: "no-such-role"}}
		if err := s.UpdateAPIClient(ctx, c, "editor"); !errors.Is(err, store.ErrReference) {
			t.Errorf("update with unknown role: %v, want ErrReference", err)
		}
		if got, _ := s.APIClient(ctx, c.ID); got.Name != "ci-renamed" || len(got.Roles) != 1 || got.Roles[0].ID != r2.ID {
			t.Errorf("failed update changed the client: %+v", got)
		}
		list, total, err := s.ListAPIClients(ctx, store.ListOptions{})
		if err != nil || total != 1 || len(list) != 1 || list[0].Roles[0].Name != "r2" {
			t.Errorf("list = %+v, %d, %v", list, total, err)
		}
		if err := s.DeleteAPIClient(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.APIClient(ctx, c.ID); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("get deleted: %v", err)
		}
		if err := s.DeleteAPIClient(ctx, c.ID); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("delete twice: %v", err)
		}
		if m, _ := s.RoleMembers(ctx, r2.ID); len(m) != 0 {
			t.Errorf("deleted client still a member: %v", m)
		}
	})
}

func TestTargetCRUD(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		s := e.S
		r := mustRole(t, s, "ops")
		tg := newTarget("kube", r)
		tg.Credential = model.TargetCredential{Type: "basicauth", BasicAuthUsername: "svc", BasicAuthPassword: "pw-123"}
		if err := s.CreateTarget(ctx, tg, "tester"); err != nil {
			t.Fatal(err)
		}
		got, err := s.Target(ctx, tg.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tg, got); diff != "" {
			t.Errorf("read back (-want +got):\n%s", diff)
		}
		if got.Version != 1 {
			t.Errorf("version = %d, want 1", got.Version)
		}
		if err := s.CreateTarget(ctx, newTarget("kube"), "x"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("duplicate name: %v, want ErrConflict", err)
		}
		badRole := newTarget("other")
		badRole.Roles = []model.Ref{{ID: "no-such-role"}}
		if err := s.CreateTarget(ctx, badRole, "x"); !errors.Is(err, store.ErrReference) {
			t.Errorf("unknown role: %v, want ErrReference", err)
		}

		tg.Credential = model.TargetCredential{Type: "header", HeaderName: "X-Key", HeaderValue: "hv-1"}
		tg.Tags = []string{"dev"}
		if err := s.UpdateTarget(ctx, tg, "editor"); err != nil {
			t.Fatal(err)
		}
		got, _ = s.Target(ctx, tg.ID)
		if got.Version != 2 || got.Credential.HeaderValue != "hv-1" || got.Credential.BasicAuthPassword != "" || got.UpdatedBy != "editor" {
			t.Errorf("after update: version %d, credential %+v", got.Version, got.Credential)
		}
		if err := s.UpdateTarget(ctx, &model.Target{ID: "no-such-target", Name: "n"}, "x"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("update unknown: %v, want ErrNotExist", err)
		}

		mustTarget(t, s, "alpha")
		all, err := s.AllTargets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 2 || all[0].Name != "alpha" || all[1].Name != "kube" || !cmp.Equal(all[1].Roles, []model.Ref{{ID: r.ID, Name: "ops"}}) {
			t.Errorf("AllTargets = %+v", all)
		}
		tags, err := s.TargetTags(ctx)
		if diff := cmp.Diff([]string{"dev", "k8s", "prod"}, tags); err != nil || diff != "" {
			t.Errorf("tags (-want +got):\n%s (err %v)", diff, err)
		}

		// Deleting a target takes its credentials with it.
		u := mustUser(t, s, "alice")
		c := mustCredential(t, s, u, tg, "laptop", "ghp_secret_for_cascade")
		if err := s.DeleteTarget(ctx, tg.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Credential(ctx, c.ID); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("credential of deleted target: %v, want ErrNotExist", err)
		}
		if err := s.DeleteTarget(ctx, tg.ID); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("delete twice: %v", err)
		}
	})
}

func TestCredentialCRUD(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		s := e.S
		u, v := mustUser(t, s, "alice"), mustUser(t, s, "bob")
		tg := mustTarget(t, s, "kube")
		c := mustCredential(t, s, u, tg, "laptop", "ghp_alice_laptop")
		got, err := s.Credential(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(c, got); diff != "" {
			t.Errorf("read back (-want +got):\n%s", diff)
		}
		if got.LastUsed != nil {
			t.Errorf("new credential has last_used %v", got.LastUsed)
		}
		if err := s.CreateCredential(ctx, &model.ProxyCredential{UserID: u.ID, TargetID: tg.ID, Name: "laptop", Secret: "ghp_other",
			SourceAddress: []string{}}, "x"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("duplicate name for one user: %v, want ErrConflict", err)
		}
		mustCredential(t, s, v, tg, "laptop", "ghp_bob_laptop") // the same name for another user is fine
		for name, c := range map[string]*model.ProxyCredential{
			"unknown target": {UserID: u.ID, TargetID: "no-such-target", Name: "x", Secret: "ghp_x1"},
			"unknown user":   {UserID: "no-such-user", TargetID: tg.ID, Name: "x", Secret: "ghp_x2"},
		} {
			if err := s.CreateCredential(ctx, c, "x"); !errors.Is(err, store.ErrReference) {
				t.Errorf("%s: %v, want ErrReference", name, err)
			}
		}

		list, total, err := s.ListCredentials(ctx, u.ID, store.ListOptions{})
		if err != nil || total != 1 || len(list) != 1 || list[0].ID != c.ID {
			t.Errorf("list of alice = %v, %d, %v", list, total, err)
		}
		if _, total, _ := s.ListCredentials(ctx, "", store.ListOptions{}); total != 2 {
			t.Errorf("list of everyone: %d, want 2", total)
		}

		c.Name, c.Enabled, c.SourceAddress = "desk", false, []string{"192.0.2.1"}
		c.NotAfter = c.NotAfter.Add(-time.Minute)
		if err := s.UpdateCredential(ctx, c, "editor"); err != nil {
			t.Fatal(err)
		}
		got, _ = s.Credential(ctx, c.ID)
		if diff := cmp.Diff(c, got); diff != "" {
			t.Errorf("after update (-want +got):\n%s", diff)
		}

		// Deleting the user takes its credentials with it.
		if err := s.DeleteUser(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Credential(ctx, c.ID); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("credential of deleted user: %v", err)
		}
		if err := s.DeleteCredential(ctx, c.ID); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("delete of gone credential: %v", err)
		}
	})
}

func TestTouchCredentials(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		s := e.S
		u, tg := mustUser(t, s, "alice"), mustTarget(t, s, "kube")
		a := mustCredential(t, s, u, tg, "a", "ghp_a")
		b := mustCredential(t, s, u, tg, "b", "ghp_b")
		at := time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)
		if err := s.TouchCredentials(ctx, map[string]time.Time{a.ID: at, "no-such-credential": at}); err != nil {
			t.Fatal(err)
		}
		if err := s.TouchCredentials(ctx, nil); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Credential(ctx, a.ID)
		if got.LastUsed == nil || !got.LastUsed.Equal(at) {
			t.Errorf("last_used = %v, want %v", got.LastUsed, at)
		}
		if got, _ := s.Credential(ctx, b.ID); got.LastUsed != nil {
			t.Errorf("untouched credential has last_used %v", got.LastUsed)
		}
	})
}

func TestSettingsDefaultsAndRoundTrip(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		s := e.S
		got, err := s.Settings(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(model.DefaultSettings(), got); diff != "" {
			t.Errorf("defaults (-want +got):\n%s", diff)
		}
		set := model.DefaultSettings()
		set.IdleSessionTimeout, set.PublicAddresses = 123, []string{"proxy.example.com:20080"}
		set.RecordingRedactHeaders = []string{"X-Secret"}
		for range 2 { // saving twice replaces rather than duplicates
			if err := s.SaveSettings(ctx, set); err != nil {
				t.Fatal(err)
			}
		}
		got, err = s.Settings(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(set, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
		// A stored document missing a later setting gets that setting's default.
		e.exec(t, `UPDATE settings SET value = '{"idle_session_timeout": 77}' WHERE name = 'api-proxy'`)
		got, _ = s.Settings(ctx)
		want := model.DefaultSettings()
		want.IdleSessionTimeout = 77
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("partial document (-want +got):\n%s", diff)
		}
	})
}

func TestAuditFilters(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		s := e.S
		base := time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)
		events := []*model.AuditEvent{
			{Time: base, Actor: "admin", Action: "create", ObjectType: "user", ObjectID: "u1", Outcome: "success",
				Diff: map[string]any{"username": map[string]any{"new": "alice"}}},
			{Time: base.Add(time.Minute), Actor: "admin", Action: "update", ObjectType: "user", ObjectID: "u1", Outcome: "success"},
			{Time: base.Add(2 * time.Minute), Actor: "bob", Action: "create", ObjectType: "role", ObjectID: "r1", Outcome: "success"},
			{Time: base.Add(3 * time.Minute), Actor: "mallory", Action: "login", ObjectType: "session", Outcome: "failure", SourceAddress: "192.0.2.9"},
		}
		for _, ev := range events {
			if err := s.AppendAudit(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		ids := func(list []*model.AuditEvent) []string {
			out := []string{}
			for _, ev := range list {
				out = append(out, ev.Actor+"/"+ev.Action+"/"+ev.ObjectType)
			}
			return out
		}
		tests := []struct {
			name string
			f    store.AuditFilter
			opts store.ListOptions
			want []string
		}{
			{"all newest first", store.AuditFilter{}, store.ListOptions{}, []string{"mallory/login/session", "bob/create/role", "admin/update/user", "admin/create/user"}},
			{"oldest first", store.AuditFilter{}, store.ListOptions{SortDir: "asc", Limit: 2}, []string{"admin/create/user", "admin/update/user"}},
			{"actor", store.AuditFilter{Actor: "admin"}, store.ListOptions{}, []string{"admin/update/user", "admin/create/user"}},
			{"object type", store.AuditFilter{ObjectType: "role"}, store.ListOptions{}, []string{"bob/create/role"}},
			{"object id", store.AuditFilter{ObjectID: "u1", Action: "update"}, store.ListOptions{}, []string{"admin/update/user"}},
			{"time window", store.AuditFilter{From: base.Add(time.Minute), To: base.Add(2 * time.Minute)}, store.ListOptions{}, []string{"bob/create/role", "admin/update/user"}},
			{"nothing", store.AuditFilter{Actor: "nobody"}, store.ListOptions{}, []string{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, total, err := s.ListAudit(ctx, tt.f, tt.opts)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
				if tt.opts.Limit == 0 && total != len(tt.want) {
					t.Errorf("count = %d, want %d", total, len(tt.want))
				}
			})
		}
		got, _, _ := s.ListAudit(ctx, store.AuditFilter{ObjectID: "u1", Action: "create"}, store.ListOptions{})
		want := *events[0]
		if diff := cmp.Diff([]*model.AuditEvent{&want}, got, cmpopts.IgnoreFields(model.AuditEvent{}, "ID")); diff != "" {
			t.Errorf("full event round trip (-want +got):\n%s", diff)
		}
	})
}

// TestOpenTwice pins that migrations are idempotent: opening an existing database applies nothing new and keeps
// the data.
func TestOpenTwice(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		u := mustUser(t, e.S, "alice")
		e.S.Close()
		for range 2 {
			s := e.reopen(t)
			got, err := s.User(ctx, u.ID)
			if err != nil || got.Username != "alice" {
				t.Fatalf("after reopen: %v, %v", got, err)
			}
		}
		var n int
		if err := e.Raw.QueryRow(`SELECT COUNT(*) FROM users`).Scan(&n); err != nil || n != 1 {
			t.Errorf("users after reopening: %d, %v", n, err)
		}
	})
}

func names(roles []*model.Role) []string {
	out := []string{}
	for _, r := range roles {
		out = append(out, r.Name)
	}
	return out
}
