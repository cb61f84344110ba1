package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TestRuleRoleLossEndsSessions: a role lost through a membership rule (the rule removed, or the directory no
// longer giving the tag) ends the user's refresh tokens and configuration-API sessions and moves the token
// cutoff, like an explicit role loss; a user who keeps its roles keeps its sessions.
func TestRuleRoleLossEndsSessions(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		s := e.S
		src := &store.Source{Name: "corp", Type: "LDAP", Enabled: true, Config: json.RawMessage(`{}`)}
		if err := s.CreateSource(ctx, src, "test"); err != nil {
			t.Fatal(err)
		}
		role := mustRole(t, s, "ops", "audit-view")
		rule := []store.RoleRule{{RoleID: role.ID, Tag: "ops"}}
		if err := s.SetRoleRules(ctx, role.ID, rule); err != nil {
			t.Fatal(err)
		}
		dir := func(name string, tags ...string) string {
			u, err := s.UpsertDirectoryUser(ctx, src.ID, store.DirectoryUser{ExternalID: "cn=" + name, Username: name, Tags: tags})
			if err != nil {
				t.Fatal(err)
			}
			return u.ID
		}
		open := func(uid, tag string) {
			if err := s.CreateConfigSession(ctx, time.Now(), "sess-"+tag, store.ConfigSession{PrincipalKind: "user", PrincipalID: uid, Name: tag, Method: "password"}); err != nil {
				t.Fatal(err)
			}
			if err := s.SaveRefreshToken(ctx, "rt-"+tag, store.RefreshToken{PrincipalKind: "user", PrincipalID: uid, Expires: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
		ended := func(uid, tag string) bool {
			_, _, errS := s.TouchConfigSession(ctx, time.Now(), "sess-"+tag, time.Hour)
			_, errR := s.ConsumeRefreshToken(ctx, "rt-"+tag)
			u, err := s.User(ctx, uid)
			if err != nil {
				t.Fatal(err)
			}
			gone := errors.Is(errS, store.ErrNotExist) && errors.Is(errR, store.ErrNotExist)
			if gone != !u.TokensAfter.IsZero() {
				t.Errorf("%s: sessions gone %v but token cutoff %v", tag, gone, u.TokensAfter)
			}
			return gone
		}

		ann, bob := dir("ann", "ops"), dir("bob", "ops")
		open(ann, "ann1")
		open(bob, "bob1")
		dir("ann") // the directory no longer gives ann the tag
		if !ended(ann, "ann1") {
			t.Error("ann kept her sessions after losing the role through the directory")
		}
		if ended(bob, "bob1") {
			t.Error("bob's sessions ended though he kept his role")
		}
		open(bob, "bob2")
		if err := s.SetRoleRules(ctx, role.ID, nil); err != nil {
			t.Fatal(err)
		}
		if !ended(bob, "bob2") {
			t.Error("bob kept his sessions after the rule granting his role was removed")
		}
	})
}
