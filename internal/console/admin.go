package console

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
)

const (
	targetsAPI = proxyAPI + "/api-targets"
	usersAPI   = "/local-user-store/api/v1/users"
	clientsAPI = "/local-user-store/api/v1/api-clients"
	rolesAPI   = "/role-store/api/v1/roles"
)

// listPage is the shared state of the simple admin lists: filter and pagination on the server.
type listPage struct {
	Filter     string
	Offset     int
	Prev, Next string
	Manage     bool
	Form       url.Values
}

func readList(r *http.Request, base string, count, shown int) listPage {
	q := r.URL.Query()
	p := listPage{Filter: q.Get("filter")}
	p.Offset, _ = strconv.Atoi(q.Get("offset"))
	p.Offset = max(p.Offset, 0)
	link := func(off int) string {
		v := url.Values{}
		if p.Filter != "" {
			v.Set("filter", p.Filter)
		}
		if off > 0 {
			v.Set("offset", strconv.Itoa(off))
		}
		if len(v) == 0 {
			return base
		}
		return base + "?" + v.Encode()
	}
	if p.Offset > 0 {
		p.Prev = link(max(p.Offset-pageSize, 0))
	}
	if p.Offset+shown < count {
		p.Next = link(p.Offset + pageSize)
	}
	return p
}

func listQuery(r *http.Request, path, sortkey string) string {
	q := r.URL.Query()
	off, _ := strconv.Atoi(q.Get("offset"))
	return query(path, "filter", q.Get("filter"), "offset", strconv.Itoa(max(off, 0)), "limit", strconv.Itoa(pageSize), "sortkey", sortkey)
}

type targetsPage struct {
	listPage
	Targets list[storedTarget]
}

func (c *Console) targets(w http.ResponseWriter, r *http.Request, s *session) error {
	p := &targetsPage{}
	if err := c.call(r.Context(), r, s, "GET", listQuery(r, targetsAPI, "name"), nil, &p.Targets); err != nil {
		return err
	}
	p.listPage = readList(r, "/admin/targets", p.Targets.Count, len(p.Targets.Items))
	p.Manage = s.principal.Permissions.Has(auth.APITargetsManage)
	c.render(w, r, s, http.StatusOK, "targets", &view{Title: "API targets", Active: "/admin/targets", Data: p})
	return nil
}

type targetFormPage struct {
	Form  *targetForm
	Roles []ref
	// RolesListed is false when the user may not list roles; the form then leaves the target's roles as they are.
	RolesListed bool
	CredTypes   []string
	Protocols   []string
}

func (c *Console) renderTargetForm(w http.ResponseWriter, r *http.Request, s *session, status int, f *targetForm, ae *apiError, rowOf map[string]string, notice string) error {
	p := &targetFormPage{Form: f, CredTypes: []string{"token", "basicauth", "header", "certificate"}, Protocols: []string{"https", "http"}}
	var roles list[ref]
	if err := c.call(r.Context(), r, s, "GET", rolesAPI+"?limit=1000&sortkey=name", nil, &roles); err == nil {
		p.Roles, p.RolesListed = roles.Items, true
	}
	title := "New API target"
	if f.ID != "" {
		title = "API target " + f.Name
	}
	v := &view{Title: title, Active: "/admin/targets", Data: p, Notice: notice}
	if ae != nil {
		v.Error = "Not saved: " + ae.Message
		if ae.Property != "" {
			v.Errors = map[string]string{formField(ae.Property, rowOf): ae.Message}
		}
	}
	c.render(w, r, s, status, "target_form", v)
	return nil
}

func (c *Console) newTarget(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.renderTargetForm(w, r, s, http.StatusOK, formFromTarget(nil), nil, nil, "")
}

func (c *Console) editTarget(w http.ResponseWriter, r *http.Request, s *session) error {
	var t storedTarget
	if err := c.call(r.Context(), r, s, "GET", targetsAPI+"/"+url.PathEscape(r.PathValue("id")), nil, &t); err != nil {
		return err
	}
	notice := ""
	if r.URL.Query().Get("saved") == "1" {
		notice = "Saved."
	}
	return c.renderTargetForm(w, r, s, http.StatusOK, formFromTarget(&t), nil, nil, notice)
}

func (c *Console) saveTarget(w http.ResponseWriter, r *http.Request, s *session, method, path string) error {
	f, body, rowOf := parseTargetForm(r.PostForm)
	var out struct {
		ID string `json:"id"`
	}
	if err := c.call(r.Context(), r, s, method, path, body, &out); err != nil {
		if ae, ok := formErr(err); ok {
			return c.renderTargetForm(w, r, s, ae.Status, f, ae, rowOf, "")
		}
		return err
	}
	if out.ID == "" {
		out.ID = f.ID
	}
	http.Redirect(w, r, "/admin/targets/"+url.PathEscape(out.ID)+"?saved=1", http.StatusSeeOther)
	return nil
}

func (c *Console) createTarget(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.saveTarget(w, r, s, "POST", targetsAPI)
}

func (c *Console) updateTarget(w http.ResponseWriter, r *http.Request, s *session) error {
	r.PostForm.Set("id", r.PathValue("id"))
	return c.saveTarget(w, r, s, "PUT", targetsAPI+"/"+url.PathEscape(r.PathValue("id")))
}

type apiClient struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	Roles         []ref  `json:"roles"`
	OAuthClientID string `json:"oauth_client_id"`
}

type clientsPage struct {
	listPage
	Clients list[apiClient]
}

func (c *Console) clients(w http.ResponseWriter, r *http.Request, s *session) error {
	p := &clientsPage{}
	if err := c.call(r.Context(), r, s, "GET", listQuery(r, clientsAPI, "name"), nil, &p.Clients); err != nil {
		return err
	}
	p.listPage = readList(r, "/admin/clients", p.Clients.Count, len(p.Clients.Items))
	c.render(w, r, s, http.StatusOK, "clients", &view{Title: "API clients", Active: "/admin/clients", Data: p})
	return nil
}
