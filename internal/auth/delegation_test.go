package auth

import (
	"errors"
	"slices"
	"testing"
)

// TestCheckHolds: the delegation rule refuses whatever the actor does not hold, naming each missing permission,
// and counts what a held permission implies (a -manage holds its -view), but never the other way round.
func TestCheckHolds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		actor   []string
		lists   [][]string
		missing []string // nil: allowed
	}{
		{"nothing asked", nil, nil, nil},
		{"holds it", []string{UsersManage}, [][]string{{UsersManage}}, nil},
		{"manage holds view", []string{UsersManage}, [][]string{{UsersView}}, nil},
		{"view does not hold manage", []string{UsersView}, [][]string{{UsersManage}}, []string{UsersManage}},
		{"one of two lists", []string{UsersManage}, [][]string{{UsersManage}, {RolesManage}}, []string{RolesManage, RolesView}}, // a -manage asked for asks its -view too
		{"nothing held", nil, [][]string{{AuditView, RolesView}}, []string{AuditView, RolesView}},
		{"all of them", AllPermissions, [][]string{AllPermissions}, nil},
		{"all but one", slices.DeleteFunc(slices.Clone(AllPermissions), func(p string) bool { return p == SettingsManage }),
			[][]string{AllPermissions}, []string{SettingsManage}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckHolds(NewPermissionSet(tc.actor), tc.lists...)
			if tc.missing == nil {
				if err != nil {
					t.Fatalf("CheckHolds = %v, want nil", err)
				}
				return
			}
			var nh *NotHeldError
			if !errors.As(err, &nh) || !slices.Equal(nh.Missing, tc.missing) {
				t.Fatalf("CheckHolds = %v, want missing %v", err, tc.missing)
			}
		})
	}
}
