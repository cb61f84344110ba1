package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestCredentialOwnerLimits(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		s := e.S
		u := mustUser(t, s, "alice")
		tg, other := mustTarget(t, s, "kube"), mustTarget(t, s, "vault")
		if _, err := s.CredentialOwnerLimits(ctx, u.ID, tg.ID); !errors.Is(err, store.ErrNotExist) {
			t.Fatalf("none recorded: %v, want ErrNotExist", err)
		}
		nb := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
		want := store.OwnerLimits{Enabled: false, NotBefore: nb, NotAfter: nb.Add(time.Hour), SourceAddress: []string{"127.0.0.0/24"}}
		for _, l := range []store.OwnerLimits{{Enabled: true, NotBefore: nb, NotAfter: nb, SourceAddress: nil}, want} {
			if err := s.SetCredentialOwnerLimits(ctx, u.ID, tg.ID, l, "admin"); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.CredentialOwnerLimits(ctx, u.ID, tg.ID)
		if err != nil {
			t.Fatal(err)
		}
		want.SetBy = "admin"
		if d := cmp.Diff(want, got, cmpopts.IgnoreFields(store.OwnerLimits{}, "Updated")); d != "" || got.Updated.IsZero() {
			t.Errorf("read back, the second set replacing the first (-want +got):\n%s", d)
		}
		if _, err := s.CredentialOwnerLimits(ctx, u.ID, other.ID); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("limits leak to another target: %v", err)
		}
		if err := s.DeleteCredentialOwnerLimits(ctx, u.ID, tg.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteCredentialOwnerLimits(ctx, u.ID, tg.ID); err != nil {
			t.Errorf("lifting twice: %v", err)
		}
		if _, err := s.CredentialOwnerLimits(ctx, u.ID, tg.ID); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("after lifting: %v", err)
		}
		// The limits go with their user or target.
		if err := s.SetCredentialOwnerLimits(ctx, u.ID, other.ID, want, "admin"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteTarget(ctx, other.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CredentialOwnerLimits(ctx, u.ID, other.ID); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("limits outlive their target: %v", err)
		}
		if err := s.SetCredentialOwnerLimits(ctx, "no-such-user", tg.ID, want, "admin"); !errors.Is(err, store.ErrReference) {
			t.Errorf("limits of an unknown user: %v, want ErrReference", err)
		}
	})
}
