package console

import (
	"net/http"
	"net/url"
	"slices"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
)

// The users pages: a filtered, paginated list with a create form, an edit page (details, enabled, explicit roles)
// and a confirmed delete. Every write is the service API's, so its validation and delegation rules apply.

const userRolesAPI = "/role-store/api/v1/users"

type user struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Email    string `json:"email"`
	FullName string `json:"full_name"`
	Enabled  bool   `json:"enabled"`
	Source   string `json:"source"`
}

type usersPage struct {
	listPage
	Users list[user]
}

func (c *Console) users(w http.ResponseWriter, r *http.Request, s *session) error {
	notice := ""
	if r.URL.Query().Get("deleted") == "1" {
		notice = "User deleted."
	}
	return c.renderUsers(w, r, s, http.StatusOK, nil, nil, notice)
}

func (c *Console) renderUsers(w http.ResponseWriter, r *http.Request, s *session, status int, form url.Values, ae *apiError, notice string) error {
	p := &usersPage{}
	if err := c.call(r.Context(), r, s, "GET", listQuery(r, usersAPI, "username"), nil, &p.Users); err != nil {
		return err
	}
	p.listPage = readList(r, "/admin/users", p.Users.Count, len(p.Users.Items))
	p.Manage, p.Form = s.principal.Permissions.Has(auth.UsersManage), form
	v := &view{Title: "Users", Active: "/admin/users", Data: p, Notice: notice}
	setFormError(v, ae)
	c.render(w, r, s, status, "users", v)
	return nil
}

func setFormError(v *view, ae *apiError) {
	if ae == nil {
		return
	}
	v.Error = "Not saved: " + ae.Message
	if ae.Property != "" {
		v.Errors = map[string]string{formField(ae.Property, nil): ae.Message}
	}
}

func (c *Console) createUser(w http.ResponseWriter, r *http.Request, s *session) error {
	f := r.PostForm
	body := map[string]any{"username": f.Get("username"), "password": f.Get("password")}
	for _, k := range []string{"email", "full_name"} {
		if f.Get(k) != "" {
			body[k] = f.Get(k)
		}
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := c.call(r.Context(), r, s, "POST", usersAPI, body, &out); err != nil {
		if ae, ok := formErr(err); ok {
			f.Del("password")
			return c.renderUsers(w, r, s, ae.Status, f, ae, "")
		}
		return err
	}
	http.Redirect(w, r, "/admin/users/"+url.PathEscape(out.ID)+"?saved=created", http.StatusSeeOther)
	return nil
}

// userRole is one of a user's roles as the role store shows it: explicit grants can be edited here, implicit ones
// come from a source's rules.
type userRole struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Explicit bool   `json:"explicit"`
}

type userFormPage struct {
	User user
	// Roles are all roles, to pick from; RolesListed is false when the signed-in user may not list them.
	Roles       []role
	RolesListed bool
	// RolesEditable is true when the signed-in user may change role grants.
	RolesEditable bool
	Explicit      []string
	Implicit      []string
	Manage        bool
	Self          bool
}

func (c *Console) loadUserForm(r *http.Request, s *session, id string) (*userFormPage, error) {
	p := &userFormPage{Manage: s.principal.Permissions.Has(auth.UsersManage), Self: s.principal.ID == id}
	if err := c.call(r.Context(), r, s, "GET", usersAPI+"/"+url.PathEscape(id), nil, &p.User); err != nil {
		return nil, err
	}
	if !s.principal.Permissions.Has(auth.RolesView) {
		return p, nil
	}
	var held list[userRole]
	if err := c.call(r.Context(), r, s, "GET", userRolesAPI+"/"+url.PathEscape(id)+"/roles", nil, &held); err != nil {
		return nil, err
	}
	for _, h := range held.Items {
		if h.Explicit {
			p.Explicit = append(p.Explicit, h.ID)
		} else {
			p.Implicit = append(p.Implicit, h.ID)
		}
	}
	var all list[role]
	if err := c.call(r.Context(), r, s, "GET", rolesAPI+"?limit=1000&sortkey=name", nil, &all); err != nil {
		return nil, err
	}
	p.Roles, p.RolesListed = all.Items, true
	p.RolesEditable = s.principal.Permissions.Has(auth.RolesManage)
	return p, nil
}

func (c *Console) editUser(w http.ResponseWriter, r *http.Request, s *session) error {
	p, err := c.loadUserForm(r, s, r.PathValue("id"))
	if err != nil {
		return err
	}
	notice := map[string]string{"1": "Saved.", "created": "User created; choose its roles."}[r.URL.Query().Get("saved")]
	c.render(w, r, s, http.StatusOK, "user_form", &view{Title: "User " + p.User.Username, Active: "/admin/users", Data: p, Notice: notice})
	return nil
}

// updateUser saves the details, then the explicit roles if they changed: two API calls, each with its own checks.
// A refusal of either is shown on the form with what was entered.
func (c *Console) updateUser(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	p, err := c.loadUserForm(r, s, id)
	if err != nil {
		return err
	}
	f := r.PostForm
	body := map[string]any{"username": f.Get("username"), "email": f.Get("email"), "full_name": f.Get("full_name"),
		"enabled": f.Get("enabled") == "on"}
	again := func(ae *apiError) error {
		if p.Manage { // without it the details were shown, not sent
			p.User.Username, p.User.Email, p.User.FullName, p.User.Enabled = f.Get("username"), f.Get("email"), f.Get("full_name"), f.Get("enabled") == "on"
		}
		if f.Get("roles_listed") == "1" {
			p.Explicit = f["roles"]
		}
		v := &view{Title: "User " + p.User.Username, Active: "/admin/users", Data: p}
		setFormError(v, ae)
		c.render(w, r, s, ae.Status, "user_form", v)
		return nil
	}
	if p.Manage {
		if err := c.call(r.Context(), r, s, "PUT", usersAPI+"/"+url.PathEscape(id), body, nil); err != nil {
			if ae, ok := formErr(err); ok {
				return again(ae)
			}
			return err
		}
	}
	if f.Get("roles_listed") == "1" && p.RolesEditable {
		want := nonNil(f["roles"])
		if !sameSet(want, p.Explicit) {
			refs := make([]map[string]string, 0, len(want))
			for _, rid := range want {
				refs = append(refs, map[string]string{"id": rid})
			}
			if err := c.call(r.Context(), r, s, "PUT", userRolesAPI+"/"+url.PathEscape(id)+"/roles", refs, nil); err != nil {
				if ae, ok := formErr(err); ok {
					// The API names the list element or the whole grant; either way it belongs to the roles field.
					ae.Property = "roles"
					ae.Message = "Details saved, roles not: " + ae.Message
					return again(ae)
				}
				return err
			}
		}
	}
	http.Redirect(w, r, "/admin/users/"+url.PathEscape(id)+"?saved=1", http.StatusSeeOther)
	return nil
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

func (c *Console) confirmDeleteUser(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	var u user
	if err := c.call(r.Context(), r, s, "GET", usersAPI+"/"+url.PathEscape(id), nil, &u); err != nil {
		return err
	}
	c.render(w, r, s, http.StatusOK, "confirm", &view{Title: "Delete user", Active: "/admin/users", Data: &confirmPage{
		Question: "Delete the user " + u.Username + "?",
		Details:  []string{"Username: " + u.Username, "Source: " + u.Source, "This cannot be undone."},
		Action:   "/admin/users/" + url.PathEscape(id) + "/delete", Back: "/admin/users/" + url.PathEscape(id), Button: "Delete"}})
	return nil
}

func (c *Console) deleteUser(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := c.call(r.Context(), r, s, "DELETE", usersAPI+"/"+url.PathEscape(r.PathValue("id")), nil, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/users?deleted=1", http.StatusSeeOther)
	return nil
}
