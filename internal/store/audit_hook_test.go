package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/google/go-cmp/cmp"
)

// TestOnAudit: the hook gets every stored event with its id, including the one a configuration commit stores in
// its transaction, and nothing for a commit that rolled back.
func TestOnAudit(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		var got []model.AuditEvent
		e.S.OnAudit = func(ev model.AuditEvent) { got = append(got, ev) }
		if err := e.S.AppendAudit(ctx, &model.AuditEvent{Actor: "admin", Action: "create", ObjectType: "user", ObjectID: "u1", Outcome: "success"}); err != nil {
			t.Fatal(err)
		}
		now := e.S.Now()
		if err := e.S.OpenConfigTransaction(ctx, now, "h1", "admin"); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("injected")
		err := e.S.CommitConfig(ctx, store.ConfigCommit{HolderIndex: "h1", Changes: []store.ConfigChange{{Type: "x", Key: "k", Body: []byte(`{}`)}},
			Audit:       &model.AuditEvent{Actor: "admin", Action: "commit", ObjectType: "configuration", ObjectID: "rolled-back", Outcome: "success"},
			BeforeWrite: func(int) error { return boom }})
		if !errors.Is(err, boom) {
			t.Fatalf("failing commit: %v", err)
		}
		if err := e.S.CommitConfig(ctx, store.ConfigCommit{HolderIndex: "h1",
			Audit: &model.AuditEvent{Actor: "admin", Action: "commit", ObjectType: "configuration", ObjectID: "t1", Outcome: "success"}}); err != nil {
			t.Fatal(err)
		}
		stored, _, err := e.S.ListAudit(ctx, store.AuditFilter{}, store.ListOptions{SortDir: "asc"})
		if err != nil {
			t.Fatal(err)
		}
		var want []model.AuditEvent
		for _, s := range stored {
			want = append(want, *s)
		}
		if len(want) != 2 || want[0].ID == 0 || want[1].ObjectID != "t1" {
			t.Fatalf("stored %+v", want)
		}
		// The hook sees the event before a round trip through the database, so compare what both carry.
		type key struct {
			ID                               int64
			Action, ObjectType, ObjectID, Ac string
		}
		keys := func(evs []model.AuditEvent) (out []key) {
			for _, ev := range evs {
				out = append(out, key{ev.ID, ev.Action, ev.ObjectType, ev.ObjectID, ev.Actor})
			}
			return out
		}
		if diff := cmp.Diff(keys(want), keys(got)); diff != "" {
			t.Errorf("OnAudit saw (-stored +hook):\n%s", diff)
		}
	})
}
