package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
)

// The roles pages: list and create, an edit page for a role's name, comment and permissions and for its explicit
// user members, and a confirmed delete. Members are granted and taken through the user's role list
// (PUT /role-store/api/v1/users/{id}/roles), the one API that grants roles, so its delegation check applies.

type role struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Comment     string   `json:"comment"`
	Permissions []string `json:"permissions"`
}

type rolesPage struct {
	listPage
	Roles       list[role]
	Permissions []string
	Checked     []string
}

func (c *Console) roles(w http.ResponseWriter, r *http.Request, s *session) error {
	notice := ""
	if r.URL.Query().Get("deleted") == "1" {
		notice = "Role deleted."
	}
	return c.renderRoles(w, r, s, http.StatusOK, nil, nil, notice)
}

func (c *Console) renderRoles(w http.ResponseWriter, r *http.Request, s *session, status int, form url.Values, ae *apiError, notice string) error {
	p := &rolesPage{Permissions: auth.AllPermissions}
	if err := c.call(r.Context(), r, s, "GET", listQuery(r, rolesAPI, "name"), nil, &p.Roles); err != nil {
		return err
	}
	p.listPage = readList(r, "/admin/roles", p.Roles.Count, len(p.Roles.Items))
	p.Manage, p.Form = s.principal.Permissions.Has(auth.RolesManage), form
	if form != nil {
		p.Checked = form["permissions"]
	}
	v := &view{Title: "Roles", Active: "/admin/roles", Data: p, Notice: notice}
	setFormError(v, ae)
	c.render(w, r, s, status, "roles", v)
	return nil
}

// createRole creates a role; the API refuses permissions the signed-in user does not hold.
func (c *Console) createRole(w http.ResponseWriter, r *http.Request, s *session) error {
	f := r.PostForm
	body := map[string]any{"name": f.Get("name"), "comment": f.Get("comment"), "permissions": nonNil(f["permissions"])}
	var out struct {
		ID string `json:"id"`
	}
	if err := c.call(r.Context(), r, s, "POST", rolesAPI, body, &out); err != nil {
		if ae, ok := formErr(err); ok {
			return c.renderRoles(w, r, s, ae.Status, f, ae, "")
		}
		return err
	}
	http.Redirect(w, r, "/admin/roles/"+url.PathEscape(out.ID)+"?saved=created", http.StatusSeeOther)
	return nil
}

// roleMember is a member as GET .../roles/{id}/members shows it.
type roleMember struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Kind     string `json:"type"`
	Explicit bool   `json:"explicit"`
	Rules    []any  `json:"rules"`
}

type roleFormPage struct {
	Role        role
	Permissions []string
	Members     []roleMember
	Manage      bool
	// NewMember is the username the add-member form was sent with, to show it again with its error.
	NewMember string
}

func (c *Console) loadRoleForm(r *http.Request, s *session, id string) (*roleFormPage, error) {
	p := &roleFormPage{Permissions: auth.AllPermissions, Manage: s.principal.Permissions.Has(auth.RolesManage)}
	if err := c.call(r.Context(), r, s, "GET", rolesAPI+"/"+url.PathEscape(id), nil, &p.Role); err != nil {
		return nil, err
	}
	var members list[roleMember]
	if err := c.call(r.Context(), r, s, "GET", rolesAPI+"/"+url.PathEscape(id)+"/members", nil, &members); err != nil {
		return nil, err
	}
	p.Members = members.Items
	return p, nil
}

func (c *Console) renderRoleForm(w http.ResponseWriter, r *http.Request, s *session, status int, p *roleFormPage, ae *apiError, notice string) error {
	v := &view{Title: "Role " + p.Role.Name, Active: "/admin/roles", Data: p, Notice: notice}
	setFormError(v, ae)
	c.render(w, r, s, status, "role_form", v)
	return nil
}

func (c *Console) editRole(w http.ResponseWriter, r *http.Request, s *session) error {
	p, err := c.loadRoleForm(r, s, r.PathValue("id"))
	if err != nil {
		return err
	}
	notice := map[string]string{"1": "Saved.", "created": "Role created.", "member": "Members changed."}[r.URL.Query().Get("saved")]
	return c.renderRoleForm(w, r, s, http.StatusOK, p, nil, notice)
}

func (c *Console) updateRole(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	p, err := c.loadRoleForm(r, s, id)
	if err != nil {
		return err
	}
	f := r.PostForm
	// source_rules is left out, so the role's membership rules stay as they are.
	body := map[string]any{"name": f.Get("name"), "comment": f.Get("comment"), "permissions": nonNil(f["permissions"])}
	if err := c.call(r.Context(), r, s, "PUT", rolesAPI+"/"+url.PathEscape(id), body, nil); err != nil {
		if ae, ok := formErr(err); ok {
			p.Role.Name, p.Role.Comment, p.Role.Permissions = f.Get("name"), f.Get("comment"), f["permissions"]
			return c.renderRoleForm(w, r, s, ae.Status, p, ae, "")
		}
		return err
	}
	http.Redirect(w, r, "/admin/roles/"+url.PathEscape(id)+"?saved=1", http.StatusSeeOther)
	return nil
}

// changeMember grants the role to a user (found by username) or takes it away (by id), by rewriting that user's
// explicit roles through the API.
func (c *Console) changeMember(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	p, err := c.loadRoleForm(r, s, id)
	if err != nil {
		return err
	}
	f := r.PostForm
	userID, add := f.Get("remove"), false
	if userID == "" {
		add = true
		p.NewMember = strings.TrimSpace(f.Get("username"))
		if p.NewMember == "" {
			return c.renderRoleForm(w, r, s, http.StatusBadRequest, p, &apiError{Status: http.StatusBadRequest, Property: "username", Message: "enter the username to add"}, "")
		}
		var found list[user]
		if err := c.call(r.Context(), r, s, "GET", query(usersAPI, "username", p.NewMember), nil, &found); err != nil {
			return err
		}
		if len(found.Items) == 0 {
			return c.renderRoleForm(w, r, s, http.StatusBadRequest, p, &apiError{Status: http.StatusBadRequest, Property: "username", Message: "no user is named " + p.NewMember}, "")
		}
		userID = found.Items[0].ID
	}
	var held list[userRole]
	if err := c.call(r.Context(), r, s, "GET", userRolesAPI+"/"+url.PathEscape(userID)+"/roles", nil, &held); err != nil {
		return err
	}
	refs := []map[string]string{}
	for _, h := range held.Items {
		if h.Explicit && h.ID != id {
			refs = append(refs, map[string]string{"id": h.ID})
		}
	}
	if add {
		refs = append(refs, map[string]string{"id": id})
	}
	if err := c.call(r.Context(), r, s, "PUT", userRolesAPI+"/"+url.PathEscape(userID)+"/roles", refs, nil); err != nil {
		if ae, ok := formErr(err); ok {
			ae.Property = "username"
			return c.renderRoleForm(w, r, s, ae.Status, p, ae, "")
		}
		return err
	}
	http.Redirect(w, r, "/admin/roles/"+url.PathEscape(id)+"?saved=member", http.StatusSeeOther)
	return nil
}

func (c *Console) confirmDeleteRole(w http.ResponseWriter, r *http.Request, s *session) error {
	p, err := c.loadRoleForm(r, s, r.PathValue("id"))
	if err != nil {
		return err
	}
	id := url.PathEscape(p.Role.ID)
	c.render(w, r, s, http.StatusOK, "confirm", &view{Title: "Delete role", Active: "/admin/roles", Data: &confirmPage{
		Question: "Delete the role " + p.Role.Name + "?",
		Details: []string{"Members: " + countOf(len(p.Members), "user"), "Permissions: " + strings.Join(p.Role.Permissions, ", "),
			"Its members lose what it gives them at once; targets lose it from their roles."},
		Action: "/admin/roles/" + id + "/delete", Back: "/admin/roles/" + id, Button: "Delete"}})
	return nil
}

func (c *Console) deleteRole(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := c.call(r.Context(), r, s, "DELETE", rolesAPI+"/"+url.PathEscape(r.PathValue("id")), nil, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/roles?deleted=1", http.StatusSeeOther)
	return nil
}

func countOf(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
