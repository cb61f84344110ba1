package server

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/storetest"
)

// TestRestartGivesTheOldSuperuserNewPermissions starts on a store whose superuser role holds every permission of
// the first release only (a data dir from before the workflow engine): the next start adds the workflow
// permissions to it, and leaves a role narrowed on purpose as it is.
func TestRestartGivesTheOldSuperuserNewPermissions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := storetest.Open(t, filepath.Join(dir, "g.db"), storetest.Keys(t))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := bootstrap(ctx, st, dir, "First-start-pass-1", io.Discard, log); err != nil {
		t.Fatal(err)
	}
	isNew := func(p string) bool {
		return slices.Contains([]string{auth.WorkflowsView, auth.WorkflowsManage, auth.WorkflowsRequests, auth.WorkflowsRequestsOnBehalf}, p)
	}
	roles, _, err := st.ListRoles(ctx, store.ListOptions{})
	if err != nil || len(roles) != 1 {
		t.Fatalf("roles after first start: %v %v", roles, err)
	}
	super := roles[0]
	super.Permissions = slices.DeleteFunc(slices.Clone(auth.AllPermissions), isNew)
	if err := st.UpdateRole(ctx, super, "test"); err != nil {
		t.Fatal(err)
	}
	narrow := &model.Role{Name: "narrow", Permissions: slices.DeleteFunc(slices.DeleteFunc(slices.Clone(auth.AllPermissions), isNew), func(p string) bool { return p == auth.UsersManage })}
	if err := st.CreateRole(ctx, narrow, "test"); err != nil {
		t.Fatal(err)
	}

	if err := bootstrap(ctx, st, dir, "", io.Discard, log); err != nil {
		t.Fatal(err)
	}
	got, err := st.Role(ctx, super.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range auth.AllPermissions {
		if !slices.Contains(got.Permissions, p) {
			t.Errorf("superuser after restart lacks %s: %v", p, got.Permissions)
		}
	}
	if got, err := st.Role(ctx, narrow.ID); err != nil || slices.ContainsFunc(got.Permissions, isNew) {
		t.Errorf("a narrowed role was widened: %v %v", got, err)
	}
}
