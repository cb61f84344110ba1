package serviceapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

type roleInput struct {
	Name        *string  `json:"name"`
	Comment     *string  `json:"comment"`
	Permissions []string `json:"permissions"`
	ID          string   `json:"id"`
	Created     string   `json:"created"`
	Author      string   `json:"author"`
	Updated     string   `json:"updated"`
	UpdatedBy   string   `json:"updated_by"`
}

func (in *roleInput) apply(role *model.Role) error {
	if in.Name != nil {
		role.Name = strings.TrimSpace(*in.Name)
	}
	if role.Name == "" || len(role.Name) > 128 {
		return badRequest("name", "name is required and must be at most 128 bytes")
	}
	if in.Comment != nil {
		role.Comment = *in.Comment
	}
	if in.Permissions != nil {
		for i, p := range in.Permissions {
			if !auth.ValidPermission(p) {
				return badRequest(fieldIndex("permissions", i), "unknown permission "+p)
			}
		}
		role.Permissions = dedupeStrings(in.Permissions)
	}
	return nil
}

func (a *API) listRoles(w http.ResponseWriter, r *http.Request) error {
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	roles, total, err := a.Store.ListRoles(r.Context(), opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(roles, total))
	return nil
}

func (a *API) createRole(w http.ResponseWriter, r *http.Request) error {
	var in roleInput
	if err := decode(r, &in); err != nil {
		return err
	}
	role := &model.Role{Permissions: []string{}}
	if err := in.apply(role); err != nil {
		return err
	}
	if err := a.Store.CreateRole(r.Context(), role, principal(r.Context()).Name); err != nil {
		return err
	}
	a.audit(r, "create", "role", role.ID, nil, role)
	writeJSON(w, http.StatusCreated, created{ID: role.ID})
	return nil
}

func (a *API) getRole(w http.ResponseWriter, r *http.Request) error {
	role, err := a.Store.Role(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, role)
	return nil
}

func (a *API) updateRole(w http.ResponseWriter, r *http.Request) error {
	role, err := a.Store.Role(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	before := *role
	var in roleInput
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := in.apply(role); err != nil {
		return err
	}
	if err := a.Store.UpdateRole(r.Context(), role, principal(r.Context()).Name); err != nil {
		return err
	}
	a.audit(r, "update", "role", role.ID, &before, role)
	writeJSON(w, http.StatusOK, role)
	return nil
}

func (a *API) deleteRole(w http.ResponseWriter, r *http.Request) error {
	role, err := a.Store.Role(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := a.Store.DeleteRole(r.Context(), role.ID); err != nil {
		return err
	}
	a.audit(r, "delete", "role", role.ID, role, nil)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (a *API) roleMembers(w http.ResponseWriter, r *http.Request) error {
	members, err := a.Store.RoleMembers(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(members, len(members)))
	return nil
}

type userRole struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Explicit bool   `json:"explicit"`
}

func (a *API) getUserRoles(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := a.Store.User(r.Context(), id); err != nil {
		return err
	}
	roles, err := a.Store.UserRoles(r.Context(), id)
	if err != nil {
		return err
	}
	out := make([]userRole, 0, len(roles))
	for _, role := range roles {
		out = append(out, userRole{ID: role.ID, Name: role.Name, Explicit: true})
	}
	writeJSON(w, http.StatusOK, newList(out, len(out)))
	return nil
}

// setUserRoles is PUT /role-store/api/v1/users/{id}/roles with [{"id"}]: it replaces the explicit grants.
func (a *API) setUserRoles(w http.ResponseWriter, r *http.Request) error {
	var in []model.Ref
	if err := decode(r, &in); err != nil {
		return err
	}
	id := r.PathValue("id")
	before, err := a.Store.UserRoles(r.Context(), id)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(in))
	for i, ref := range in {
		if _, err := a.Store.Role(r.Context(), ref.ID); errors.Is(err, store.ErrNotExist) {
			return badRequest(fieldIndex("", i)+".id", "role "+ref.ID+" does not exist")
		} else if err != nil {
			return err
		}
		ids = append(ids, ref.ID)
	}
	if err := a.Store.SetUserRoles(r.Context(), id, ids); err != nil {
		return err
	}
	after, err := a.Store.UserRoles(r.Context(), id)
	if err != nil {
		return err
	}
	a.audit(r, "set-roles", "user", id, map[string]any{"roles": roleNames(before)}, map[string]any{"roles": roleNames(after)})
	w.WriteHeader(http.StatusOK)
	return nil
}

func roleNames(roles []*model.Role) []string {
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		out = append(out, r.Name)
	}
	return out
}

func dedupeStrings(in []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
