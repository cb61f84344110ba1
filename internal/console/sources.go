package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
)

// The directory sources pages: the sources with their sync status, a refresh button, and the definition as the
// API shows it (secrets left out) for editing as JSON. The source definition has a field set per type, so the
// console edits the API's own document rather than a form that would have to know every type; the API validates
// it and keeps the secrets left out, exactly as for a PUT from any client.

const sourcesAPI = "/role-store/api/v1/sources"

type source struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Enabled    bool       `json:"enabled"`
	TTL        int64      `json:"ttl"`
	StatusCode string     `json:"status_code"`
	StatusText string     `json:"status_text"`
	LastSync   *time.Time `json:"last_sync"`
	UserCount  int        `json:"user_count"`
	Connection struct {
		Type string `json:"type"`
	} `json:"connection"`
}

type sourcesPage struct {
	Sources list[source]
	Manage  bool
}

func (c *Console) sources(w http.ResponseWriter, r *http.Request, s *session) error {
	p := &sourcesPage{Manage: s.principal.Permissions.Has(auth.SourcesManage)}
	if err := c.call(r.Context(), r, s, "GET", sourcesAPI, nil, &p.Sources); err != nil {
		return err
	}
	notice := ""
	if r.URL.Query().Get("refreshed") == "1" {
		notice = "Refresh started; the status below changes when it finishes."
	}
	c.render(w, r, s, http.StatusOK, "sources", &view{Title: "Directory sources", Active: "/admin/sources", Data: p, Notice: notice})
	return nil
}

// refreshSource starts a sync of one source (or, for "all", of every source).
func (c *Console) refreshSource(w http.ResponseWriter, r *http.Request, s *session) error {
	ids := []string{}
	if id := r.PathValue("id"); id != "all" {
		ids = append(ids, id)
	}
	if err := c.call(r.Context(), r, s, "POST", sourcesAPI+"/refresh", ids, nil); err != nil {
		return err
	}
	back := "/admin/sources?refreshed=1"
	if r.PostForm.Get("back") == "source" && len(ids) == 1 {
		back = "/admin/sources/" + url.PathEscape(ids[0]) + "?refreshed=1"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
	return nil
}

type sourcePage struct {
	Source source
	// Definition is the editable JSON document; Manage is false for a read-only view.
	Definition string
	Manage     bool
}

// editableSource is the definition without the read-only fields, which the API would ignore anyway.
func editableSource(raw []byte) string {
	var doc map[string]json.RawMessage
	if json.Unmarshal(raw, &doc) != nil {
		return string(raw)
	}
	for _, k := range []string{"id", "created", "updated", "updated_by", "author", "status_code", "status_text", "last_sync", "user_count"} {
		delete(doc, k)
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return string(raw)
	}
	return string(b)
}

func (c *Console) loadSource(r *http.Request, s *session, id string) (*sourcePage, error) {
	var raw []byte
	if err := c.call(r.Context(), r, s, "GET", sourcesAPI+"/"+url.PathEscape(id), nil, &raw); err != nil {
		return nil, err
	}
	p := &sourcePage{Definition: editableSource(raw), Manage: s.principal.Permissions.Has(auth.SourcesManage)}
	if err := json.Unmarshal(raw, &p.Source); err != nil {
		return nil, err
	}
	return p, nil
}

func (c *Console) sourcePage(w http.ResponseWriter, r *http.Request, s *session) error {
	p, err := c.loadSource(r, s, r.PathValue("id"))
	if err != nil {
		return err
	}
	notice := ""
	switch {
	case r.URL.Query().Get("saved") == "1":
		notice = "Saved; a refresh has started."
	case r.URL.Query().Get("refreshed") == "1":
		notice = "Refresh started; reload to see its result."
	}
	c.render(w, r, s, http.StatusOK, "source", &view{Title: "Source " + p.Source.Name, Active: "/admin/sources", Data: p, Notice: notice})
	return nil
}

// updateSource sends the edited definition as the PUT body. Invalid JSON is refused here, naming the field, before
// anything is sent.
func (c *Console) updateSource(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	p, err := c.loadSource(r, s, id)
	if err != nil {
		return err
	}
	def := r.PostForm.Get("definition")
	again := func(ae *apiError) error {
		p.Definition = def
		v := &view{Title: "Source " + p.Source.Name, Active: "/admin/sources", Data: p}
		v.Error = "Not saved: " + ae.Message
		// Every property of the document is edited in the one field; the message names the property.
		v.Errors = map[string]string{"definition": ae.Message}
		if ae.Property != "" {
			v.Errors["definition"] = ae.Property + ": " + ae.Message
		}
		c.render(w, r, s, ae.Status, "source", v)
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(def))
	dec.UseNumber()
	var body json.RawMessage
	if err := dec.Decode(&body); err != nil || dec.More() || !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		return again(&apiError{Status: http.StatusBadRequest, Message: "the definition must be one JSON object"})
	}
	if err := c.call(r.Context(), r, s, "PUT", sourcesAPI+"/"+url.PathEscape(id), body, nil); err != nil {
		if ae, ok := formErr(err); ok {
			return again(ae)
		}
		return err
	}
	http.Redirect(w, r, "/admin/sources/"+url.PathEscape(id)+"?saved=1", http.StatusSeeOther)
	return nil
}
