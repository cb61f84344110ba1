package auth

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestUpgradeEveryPermission(t *testing.T) {
	older := generations[0]
	cases := []struct {
		name  string
		perms []string
		want  []string
	}{
		{"superuser of the first release", older, generations[1]},
		{"already current", AllPermissions, nil},
		{"current but one", slices.DeleteFunc(slices.Clone(AllPermissions), func(p string) bool { return p == WorkflowsManage }), []string{WorkflowsManage}},
		{"narrowed on purpose", older[1:], nil},
		{"no permissions", nil, nil},
		{"one new permission only", []string{WorkflowsView}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if diff := cmp.Diff(c.want, UpgradeEveryPermission(c.perms)); diff != "" {
				t.Errorf("added (-want +got):\n%s", diff)
			}
		})
	}
	// Every generation together is AllPermissions, so a permission added to one list and not the other fails here.
	var all []string
	for _, g := range generations {
		all = append(all, g...)
	}
	if diff := cmp.Diff(AllPermissions, all); diff != "" {
		t.Errorf("generations are not AllPermissions (-all +generations):\n%s", diff)
	}
}
