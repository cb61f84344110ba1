package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	proxyAPI     = "/api-proxy/api/v1"
	myTargetsAPI = proxyAPI + "/users/current/api-targets"
	myCredsAPI   = proxyAPI + "/users/current/client-credentials"
)

// myTarget is a target as GET .../users/current/api-targets shows it.
type myTarget struct {
	ID                    string         `json:"id"`
	Name                  string         `json:"name"`
	Comment               string         `json:"comment"`
	Tags                  []string       `json:"tags"`
	AuthorizedEndpoints   []endpointView `json:"authorized_endpoints"`
	UnauthorizedEndpoints []endpointView `json:"unauthorized_endpoints"`
	Disabled              bool           `json:"disabled"`
	AuditEnabled          bool           `json:"audit_enabled"`
}

type ref struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// credential is a proxy credential as the API shows it.
type credential struct {
	ID            string     `json:"id"`
	Name          string     `json:"name"`
	Comment       string     `json:"comment"`
	Target        ref        `json:"target"`
	NotBefore     time.Time  `json:"not_before"`
	NotAfter      time.Time  `json:"not_after"`
	SourceAddress []string   `json:"source_address"`
	Enabled       bool       `json:"enabled"`
	LastUsed      *time.Time `json:"last_used"`
}

type proxyConf struct {
	Addresses []string `json:"addresses"`
	Chain     string   `json:"ca_certificate_chain"`
}

func (c *Console) proxyConf(r *http.Request, s *session) (proxyConf, error) {
	var conf proxyConf
	err := c.call(r.Context(), r, s, "GET", proxyAPI+"/conf", nil, &conf)
	if err == nil && len(conf.Addresses) == 0 {
		err = &httpError{Status: http.StatusInternalServerError, Message: "the proxy has no address"}
	}
	return conf, err
}

// myTargets lists every target of the user's roles (a user rarely has more than a page of them).
func (c *Console) myTargets(r *http.Request, s *session, filter string) (list[myTarget], error) {
	var ts list[myTarget]
	err := c.call(r.Context(), r, s, "GET", query(myTargetsAPI, "filter", filter, "limit", "1000"), nil, &ts)
	return ts, err
}

// myCredentials lists the user's credentials; a user without api-proxy-credentials-own gets none and a note.
func (c *Console) myCredentials(r *http.Request, s *session) (list[credential], string, error) {
	var cs list[credential]
	err := c.call(r.Context(), r, s, "GET", query(myCredsAPI, "limit", "1000", "sortkey", "name"), nil, &cs)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusForbidden {
		return cs, "You may use these targets only through credentials an administrator gives you (you lack api-proxy-credentials-own).", nil
	}
	return cs, "", err
}

type accessPage struct {
	Targets     list[myTarget]
	Credentials list[credential]
	CredsNote   string
	Filter      string
	Form        url.Values
	Target      *myTarget
	Proxy       string
	Snippets    []Snippet
}

// myAccess is "My access": the targets this user may use and their own credentials.
func (c *Console) myAccess(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.renderAccess(w, r, s, http.StatusOK, "", nil, nil)
}

func (c *Console) renderAccess(w http.ResponseWriter, r *http.Request, s *session, status int, targetID string, form url.Values, apiErr *apiError) error {
	filter := r.URL.Query().Get("filter")
	ts, err := c.myTargets(r, s, filter)
	if err != nil {
		return err
	}
	cs, note, err := c.myCredentials(r, s)
	if err != nil {
		return err
	}
	p := &accessPage{Targets: ts, Credentials: cs, CredsNote: note, Filter: filter, Form: form}
	v := &view{Title: "My access", Active: "/access", Data: p}
	page := "access"
	if targetID != "" {
		for i := range ts.Items {
			if ts.Items[i].ID == targetID {
				p.Target = &ts.Items[i]
			}
		}
		if p.Target == nil {
			return &httpError{Status: http.StatusNotFound, Message: "You hold no role of this target, or it does not exist."}
		}
		conf, err := c.proxyConf(r, s)
		if err != nil {
			return err
		}
		p.Proxy = conf.Addresses[0]
		p.Snippets = Snippets(p.Proxy, exampleURL(p.Target.AuthorizedEndpoints), "", "")
		var mine []credential
		for _, cr := range cs.Items {
			if cr.Target.ID == targetID {
				mine = append(mine, cr)
			}
		}
		p.Credentials = list[credential]{Count: len(mine), Items: mine}
		v.Title, page = p.Target.Name, "target_access"
	}
	if apiErr != nil {
		v.Errors = fieldErrors(apiErr)
		if len(v.Errors) == 0 {
			v.Error = apiErr.Message
		}
	}
	c.render(w, r, s, status, page, v)
	return nil
}

func (c *Console) targetAccess(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.renderAccess(w, r, s, http.StatusOK, r.PathValue("id"), nil, nil)
}

// fieldErrors places an API error on the form field of the property it names.
func fieldErrors(ae *apiError) map[string]string {
	if ae.Property == "" {
		return nil
	}
	return map[string]string{formField(ae.Property, nil): ae.Message}
}

// formErr tells an API refusal a form should show (a 4xx other than 401) from a failure of the page.
func formErr(err error) (*apiError, bool) {
	var ae *apiError
	if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != http.StatusUnauthorized {
		return ae, true
	}
	return nil, false
}

// utcInput parses a datetime-local field, which the console labels as UTC, to RFC 3339.
func utcInput(v string) (string, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", true
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t.UTC().Format(time.RFC3339), true
		}
	}
	return "", false
}

func inputTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04") }

// splitList reads a comma- or whitespace-separated field.
func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

func (c *Console) createCredential(w http.ResponseWriter, r *http.Request, s *session) error {
	f := r.PostForm
	body := map[string]any{"name": f.Get("name"), "target": map[string]string{"id": f.Get("target.id")}}
	if v := f.Get("comment"); v != "" {
		body["comment"] = v
	}
	if v := f.Get("source_address"); strings.TrimSpace(v) != "" {
		body["source_address"] = splitList(v)
	}
	for _, k := range []string{"not_before", "not_after"} {
		t, ok := utcInput(f.Get(k))
		if !ok {
			return c.renderAccess(w, r, s, http.StatusBadRequest, f.Get("from_target"), f, &apiError{Status: http.StatusBadRequest, Property: k, Message: k + " must be a date and time"})
		}
		if t != "" {
			body[k] = t
		}
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := c.call(r.Context(), r, s, "POST", myCredsAPI, body, &out); err != nil {
		if ae, ok := formErr(err); ok {
			return c.renderAccess(w, r, s, ae.Status, f.Get("from_target"), f, ae)
		}
		return err
	}
	http.Redirect(w, r, "/access/credentials/"+url.PathEscape(out.ID)+"?show=1", http.StatusSeeOther)
	return nil
}

type credentialPage struct {
	Credential credential
	Target     *myTarget
	Secret     string
	Proxy      string
	Snippets   []Snippet
	Form       url.Values
}

func (c *Console) credentialPage(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.renderCredential(w, r, s, http.StatusOK, nil, nil, "")
}

func (c *Console) renderCredential(w http.ResponseWriter, r *http.Request, s *session, status int, form url.Values, apiErr *apiError, notice string) error {
	id := r.PathValue("id")
	p := &credentialPage{Form: form}
	if err := c.call(r.Context(), r, s, "GET", myCredsAPI+"/"+url.PathEscape(id), nil, &p.Credential); err != nil {
		return err
	}
	if r.URL.Query().Get("show") == "1" {
		var secret []byte
		if err := c.call(r.Context(), r, s, "GET", myCredsAPI+"/"+url.PathEscape(id)+"/secret", nil, &secret); err != nil {
			return err
		}
		p.Secret = string(secret)
	}
	ts, err := c.myTargets(r, s, "")
	if err != nil {
		return err
	}
	for i := range ts.Items {
		if ts.Items[i].ID == p.Credential.Target.ID {
			p.Target = &ts.Items[i]
		}
	}
	conf, err := c.proxyConf(r, s)
	if err != nil {
		return err
	}
	p.Proxy = conf.Addresses[0]
	var eps []endpointView
	if p.Target != nil {
		eps = p.Target.AuthorizedEndpoints
	}
	p.Snippets = Snippets(p.Proxy, exampleURL(eps), p.Secret, "gatehouse-"+p.Credential.ID+".kubeconfig")
	v := &view{Title: "Credential " + p.Credential.Name, Active: "/access", Data: p, Notice: notice}
	if apiErr != nil {
		v.Errors = fieldErrors(apiErr)
		if len(v.Errors) == 0 {
			v.Error = apiErr.Message
		}
	}
	c.render(w, r, s, status, "credential", v)
	return nil
}

// updateCredential narrows a credential: the API refuses any widening, and its message is shown at the field.
func (c *Console) updateCredential(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	f := r.PostForm
	body := map[string]any{"name": f.Get("name"), "comment": f.Get("comment"), "enabled": f.Get("enabled") == "on",
		"source_address": nonNil(splitList(f.Get("source_address")))}
	for _, k := range []string{"not_before", "not_after"} {
		if f.Get(k) == f.Get(k+"_was") {
			continue // unchanged: sending the minute-rounded value would move the window
		}
		t, ok := utcInput(f.Get(k))
		if !ok || t == "" {
			return c.renderCredential(w, r, s, http.StatusBadRequest, f, &apiError{Status: http.StatusBadRequest, Property: k, Message: k + " must be a date and time"}, "")
		}
		body[k] = t
	}
	if err := c.call(r.Context(), r, s, "PUT", myCredsAPI+"/"+url.PathEscape(id), body, nil); err != nil {
		if ae, ok := formErr(err); ok {
			return c.renderCredential(w, r, s, ae.Status, f, ae, "")
		}
		return err
	}
	return c.renderCredential(w, r, s, http.StatusOK, nil, nil, "Saved.")
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (c *Console) revokeCredential(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := c.call(r.Context(), r, s, "DELETE", myCredsAPI+"/"+url.PathEscape(r.PathValue("id")), nil, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/access", http.StatusSeeOther)
	return nil
}

// rotateCredential replaces the secret; the old one stops working at once, and the page shows the new one.
func (c *Console) rotateCredential(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	if err := c.call(r.Context(), r, s, "POST", myCredsAPI+"/"+url.PathEscape(id)+"/rotate", nil, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/access/credentials/"+url.PathEscape(id)+"?show=1", http.StatusSeeOther)
	return nil
}

func (c *Console) kubeconfig(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	var b []byte
	if err := c.call(r.Context(), r, s, "GET", myCredsAPI+"/"+url.PathEscape(id)+"/secret?format=kubeconfig", nil, &b); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Content-Disposition", `attachment; filename="gatehouse-`+safeFile(id)+`.kubeconfig"`)
	w.Write(b)
	return nil
}

func (c *Console) caDownload(w http.ResponseWriter, r *http.Request, s *session) error {
	conf, err := c.proxyConf(r, s)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="`+CAFile+`"`)
	w.Write([]byte(conf.Chain))
	return nil
}

// safeFile keeps an id usable in a Content-Disposition file name.
func safeFile(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return -1
	}, s)
}
