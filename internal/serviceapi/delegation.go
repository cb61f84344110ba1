package serviceapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Every write or secret read that can hand out permissions goes through mustHold, which applies auth's delegation
// rule (auth.CheckHolds) to the caller. The helpers below only gather the permissions an object carries.

// mustHold refuses with 403 naming property unless the caller holds every permission of lists.
func (a *API) mustHold(r *http.Request, property string, lists ...[]string) error {
	err := auth.CheckHolds(principal(r.Context()).Permissions, lists...)
	var nh *auth.NotHeldError
	if errors.As(err, &nh) {
		details := make([]errorDetail, 0, len(nh.Missing))
		for _, perm := range nh.Missing {
			details = append(details, errorDetail{Code: "NOT_HELD", Message: "the caller does not hold the " + perm + " permission", Property: perm})
		}
		return &Error{Status: http.StatusForbidden, Code: "FORBIDDEN", Message: nh.Error(), Property: property, Details: details}
	}
	return err
}

func rolesPermissions(roles []*model.Role) []string {
	var out []string
	for _, r := range roles {
		out = append(out, r.Permissions...)
	}
	return out
}

// userPermissions is what a user holds now, explicitly and through membership rules.
func (a *API) userPermissions(ctx context.Context, id string) ([]string, error) {
	roles, err := a.Store.UserRoles(ctx, id)
	if err != nil {
		return nil, err
	}
	return rolesPermissions(roles), nil
}

// refsPermissions is what holding the referenced roles gives; unknown roles give nothing (callers validate).
func (a *API) refsPermissions(ctx context.Context, refs []model.Ref) ([]string, error) {
	var out []string
	for _, ref := range refs {
		role, err := a.Store.Role(ctx, ref.ID)
		if err != nil {
			continue
		}
		out = append(out, role.Permissions...)
	}
	return out, nil
}

// sourceReach is what writing a directory source can give: whoever defines the server a source asks decides
// who its users are (and can log in as any of them) and what it says about them (groups, tags). So it is what
// the source's users hold, and the roles with a membership rule bound to the source or to a tag from any source.
func (a *API) sourceReach(ctx context.Context, sourceID string) ([]string, error) {
	rules, err := a.Store.RoleRules(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []string
	// Local users log in with their own password whatever the LOCAL source says.
	if sourceID != "" && sourceID != store.LocalSourceID {
		users, err := a.Store.SourceUserIDs(ctx, sourceID)
		if err != nil {
			return nil, err
		}
		for _, id := range users {
			perms, err := a.userPermissions(ctx, id)
			if err != nil {
				return nil, err
			}
			out = append(out, perms...)
		}
	}
	seen := map[string]bool{}
	for _, rule := range rules {
		if seen[rule.RoleID] || (rule.SourceID != "" && rule.SourceID != sourceID) {
			continue
		}
		seen[rule.RoleID] = true
		role, err := a.Store.Role(ctx, rule.RoleID)
		if err != nil {
			return nil, err
		}
		out = append(out, role.Permissions...)
	}
	return out, nil
}
