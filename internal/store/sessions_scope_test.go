package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TestSessionScopes pins that a login session is found only in the scope it was created in: the console's cookie
// values are no configuration API session ids, and the other way round.
func TestSessionScopes(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx, now := context.Background(), time.Now()
		s := e.S
		cs := store.ConfigSession{PrincipalKind: "user", PrincipalID: "u1", Name: "u1", Method: "console"}
		if err := s.CreateScopedSession(ctx, now, store.IndexConsoleSession, "shared-id", cs); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.TouchConfigSession(ctx, now, "shared-id", time.Hour); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("a console session found as a configuration API session: %v", err)
		}
		got, _, err := s.TouchScopedSession(ctx, now, store.IndexConsoleSession, "shared-id", time.Hour)
		if err != nil || got.Method != "console" {
			t.Fatalf("console session: %+v, %v", got, err)
		}
		// Deleting in the other scope leaves it; deleting in its own ends it.
		if err := s.DeleteConfigSession(ctx, "shared-id"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.TouchScopedSession(ctx, now, store.IndexConsoleSession, "shared-id", time.Hour); err != nil {
			t.Errorf("a configuration API logout ended a console session: %v", err)
		}
		if err := s.DeleteScopedSession(ctx, store.IndexConsoleSession, "shared-id"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.TouchScopedSession(ctx, now, store.IndexConsoleSession, "shared-id", time.Hour); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("after logout the console session answers %v", err)
		}
	})
}

// TestSourceUserCounts pins the per-source user count the sources API answers with.
func TestSourceUserCounts(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		for _, u := range []*model.User{{Username: "a", Source: store.LocalSourceID}, {Username: "b", Source: store.LocalSourceID}, {Username: "c", Source: "ldap-1"}} {
			if err := e.S.CreateUser(ctx, u, "test"); err != nil {
				t.Fatal(err)
			}
		}
		counts, err := e.S.SourceUserCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if counts[store.LocalSourceID] != 2 || counts["ldap-1"] != 1 || len(counts) != 2 {
			t.Errorf("counts = %v, want local 2 and ldap-1 1", counts)
		}
	})
}
