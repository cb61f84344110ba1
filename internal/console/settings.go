package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
)

// The hosts pages (the host store: list, create, edit, delete) and Settings → API proxy (the proxy's public
// address and the session and recording settings of /api-proxy/api/v1/settings), as plain forms over those APIs.

const (
	hostsAPI    = "/host-store/api/v1/hosts"
	settingsAPI = proxyAPI + "/settings"
)

type hostService struct {
	Service string `json:"service"`
	Address string `json:"address"`
	Port    int    `json:"port"`
}

type host struct {
	ID         string        `json:"id"`
	CommonName string        `json:"common_name"`
	Comment    string        `json:"comment"`
	Addresses  []string      `json:"addresses"`
	Services   []hostService `json:"services"`
	Tags       []string      `json:"tags"`
	Source     string        `json:"source"`
}

// ServiceLines is the services field's text: one service per line, "SERVICE [address] [port]".
func (h host) ServiceLines() string {
	var b strings.Builder
	for _, s := range h.Services {
		b.WriteString(formatService(s))
		b.WriteByte('\n')
	}
	return b.String()
}

func formatService(s hostService) string {
	out := s.Service
	if s.Address != "" {
		out += " " + s.Address
	}
	if s.Port != 0 {
		out += " " + strconv.Itoa(s.Port)
	}
	return out
}

// parseServices reads the services field. A trailing number is the port; the API fills in what is left out
// (the host's address, the service's usual port) and validates the rest.
func parseServices(text string) ([]hostService, error) {
	out := []hostService{}
	for i, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) > 3 {
			return nil, fmt.Errorf("line %d: write SERVICE [address] [port]", i+1)
		}
		s := hostService{Service: strings.ToUpper(f[0])}
		rest := f[1:]
		if n := len(rest); n > 0 {
			if p, err := strconv.Atoi(rest[n-1]); err == nil {
				if p < 1 || p > 65535 {
					return nil, fmt.Errorf("line %d: port %d is out of range", i+1, p)
				}
				s.Port, rest = p, rest[:n-1]
			}
		}
		if len(rest) > 1 {
			return nil, fmt.Errorf("line %d: %q is not a port", i+1, rest[1])
		}
		if len(rest) == 1 {
			s.Address = rest[0]
		}
		out = append(out, s)
	}
	return out, nil
}

type hostsPage struct {
	listPage
	Hosts list[host]
}

func (c *Console) hosts(w http.ResponseWriter, r *http.Request, s *session) error {
	p := &hostsPage{}
	if err := c.call(r.Context(), r, s, "GET", listQuery(r, hostsAPI, ""), nil, &p.Hosts); err != nil {
		return err
	}
	p.listPage = readList(r, "/admin/hosts", p.Hosts.Count, len(p.Hosts.Items))
	p.Manage = s.principal.Permissions.Has(auth.HostsManage)
	notice := ""
	if r.URL.Query().Get("deleted") == "1" {
		notice = "Host deleted."
	}
	c.render(w, r, s, http.StatusOK, "hosts", &view{Title: "Hosts", Active: "/admin/hosts", Data: p, Notice: notice})
	return nil
}

type hostFormPage struct {
	Host     host
	Services string
	Manage   bool
}

func (c *Console) renderHostForm(w http.ResponseWriter, r *http.Request, s *session, status int, p *hostFormPage, ae *apiError, notice string) error {
	title := "New host"
	if p.Host.ID != "" {
		title = "Host " + p.Host.CommonName
	}
	v := &view{Title: title, Active: "/admin/hosts", Data: p, Notice: notice}
	setFormError(v, ae)
	c.render(w, r, s, status, "host_form", v)
	return nil
}

func (c *Console) newHost(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.renderHostForm(w, r, s, http.StatusOK, &hostFormPage{Manage: s.principal.Permissions.Has(auth.HostsManage)}, nil, "")
}

func (c *Console) editHost(w http.ResponseWriter, r *http.Request, s *session) error {
	p := &hostFormPage{Manage: s.principal.Permissions.Has(auth.HostsManage)}
	if err := c.call(r.Context(), r, s, "GET", hostsAPI+"/"+url.PathEscape(r.PathValue("id")), nil, &p.Host); err != nil {
		return err
	}
	p.Services = p.Host.ServiceLines()
	notice := ""
	if r.URL.Query().Get("saved") == "1" {
		notice = "Saved."
	}
	return c.renderHostForm(w, r, s, http.StatusOK, p, nil, notice)
}

// saveHost creates (id "") or updates a host from the form.
func (c *Console) saveHost(w http.ResponseWriter, r *http.Request, s *session) error {
	f, id := r.PostForm, r.PathValue("id")
	p := &hostFormPage{Manage: true, Services: f.Get("services"), Host: host{ID: id, CommonName: f.Get("common_name"), Comment: f.Get("comment"),
		Addresses: splitList(f.Get("addresses")), Tags: splitList(f.Get("tags"))}}
	services, err := parseServices(f.Get("services"))
	if err != nil {
		return c.renderHostForm(w, r, s, http.StatusBadRequest, p, &apiError{Status: http.StatusBadRequest, Property: "services", Message: err.Error()}, "")
	}
	body := map[string]any{"common_name": p.Host.CommonName, "comment": p.Host.Comment, "addresses": nonNil(p.Host.Addresses),
		"tags": nonNil(p.Host.Tags), "services": services}
	method, path := "POST", hostsAPI
	if id != "" {
		method, path = "PUT", hostsAPI+"/"+url.PathEscape(id)
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := c.call(r.Context(), r, s, method, path, body, &out); err != nil {
		if ae, ok := formErr(err); ok {
			return c.renderHostForm(w, r, s, ae.Status, p, ae, "")
		}
		return err
	}
	if out.ID == "" {
		out.ID = id
	}
	http.Redirect(w, r, "/admin/hosts/"+url.PathEscape(out.ID)+"?saved=1", http.StatusSeeOther)
	return nil
}

func (c *Console) confirmDeleteHost(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	var h host
	if err := c.call(r.Context(), r, s, "GET", hostsAPI+"/"+url.PathEscape(id), nil, &h); err != nil {
		return err
	}
	c.render(w, r, s, http.StatusOK, "confirm", &view{Title: "Delete host", Active: "/admin/hosts", Data: &confirmPage{
		Question: "Delete the host " + h.CommonName + "?", Details: []string{"Addresses: " + strings.Join(h.Addresses, ", ")},
		Action: "/admin/hosts/" + url.PathEscape(id) + "/delete", Back: "/admin/hosts/" + url.PathEscape(id), Button: "Delete"}})
	return nil
}

func (c *Console) deleteHost(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := c.call(r.Context(), r, s, "DELETE", hostsAPI+"/"+url.PathEscape(r.PathValue("id")), nil, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/hosts?deleted=1", http.StatusSeeOther)
	return nil
}

// proxySettings is GET /api-proxy/api/v1/settings; the form edits every field of it.
type proxySettings struct {
	IdleSessionTimeout      int      `json:"idle_session_timeout"`
	MaxSessionLifetime      int      `json:"max_session_lifetime"`
	SessionCooldown         int      `json:"session_cooldown"`
	ReauthorizationInterval int      `json:"reauthorization_interval"`
	PublicAddresses         []string `json:"public_addresses"`
	MaxCredentialValidity   int      `json:"max_credential_validity"`
	RecordingBodyLimit      int      `json:"recording_body_limit"`
	RecordingRedactHeaders  []string `json:"recording_redact_headers"`
}

// settingsNumbers are the whole-number fields of the form, in order, with their labels.
var settingsNumbers = []struct{ Field, Label, Hint string }{
	{"idle_session_timeout", "Idle session timeout (seconds)", "An API session without requests for this long closes."},
	{"max_session_lifetime", "Maximum session lifetime (seconds)", "An API session closes this long after it opened."},
	{"session_cooldown", "Cool-down after termination (seconds)", "A terminated user's credential is refused for this long."},
	{"reauthorization_interval", "Re-authorization interval (seconds)", "How often an open session's roles are checked again."},
	{"max_credential_validity", "Maximum credential validity (seconds)", "The longest a proxy credential may be valid."},
	{"recording_body_limit", "Recorded body limit (bytes)", "Bodies are recorded up to this size."},
}

type settingsField struct {
	Field, Label, Hint, Value string
}

type settingsPage struct {
	Numbers         []settingsField
	PublicAddresses string
	RedactHeaders   string
	Manage          bool
}

func settingsForm(st proxySettings, v url.Values, manage bool) *settingsPage {
	vals := map[string]int{"idle_session_timeout": st.IdleSessionTimeout, "max_session_lifetime": st.MaxSessionLifetime,
		"session_cooldown": st.SessionCooldown, "reauthorization_interval": st.ReauthorizationInterval,
		"max_credential_validity": st.MaxCredentialValidity, "recording_body_limit": st.RecordingBodyLimit}
	p := &settingsPage{PublicAddresses: strings.Join(st.PublicAddresses, "\n"), RedactHeaders: strings.Join(st.RecordingRedactHeaders, "\n"), Manage: manage}
	for _, n := range settingsNumbers {
		val := strconv.Itoa(vals[n.Field])
		if v != nil {
			val = v.Get(n.Field)
		}
		p.Numbers = append(p.Numbers, settingsField{Field: n.Field, Label: n.Label, Hint: n.Hint, Value: val})
	}
	if v != nil {
		p.PublicAddresses, p.RedactHeaders = v.Get("public_addresses"), v.Get("recording_redact_headers")
	}
	return p
}

func (c *Console) settings(w http.ResponseWriter, r *http.Request, s *session) error {
	var st proxySettings
	if err := c.call(r.Context(), r, s, "GET", settingsAPI, nil, &st); err != nil {
		return err
	}
	notice := ""
	if r.URL.Query().Get("saved") == "1" {
		notice = "Saved."
	}
	c.render(w, r, s, http.StatusOK, "settings", &view{Title: "API proxy settings", Active: "/settings/api-proxy",
		Data: settingsForm(st, nil, s.principal.Permissions.Has(auth.SettingsManage)), Notice: notice})
	return nil
}

// saveSettings sends every field; a number that is not one is refused here naming its field, the rest is the API's.
func (c *Console) saveSettings(w http.ResponseWriter, r *http.Request, s *session) error {
	f := r.PostForm
	again := func(ae *apiError) error {
		v := &view{Title: "API proxy settings", Active: "/settings/api-proxy", Data: settingsForm(proxySettings{}, f, s.principal.Permissions.Has(auth.SettingsManage))}
		setFormError(v, ae)
		c.render(w, r, s, ae.Status, "settings", v)
		return nil
	}
	body := map[string]any{"public_addresses": nonNil(splitList(f.Get("public_addresses"))),
		"recording_redact_headers": nonNil(splitList(f.Get("recording_redact_headers")))}
	for _, n := range settingsNumbers {
		v, err := strconv.Atoi(strings.TrimSpace(f.Get(n.Field)))
		if err != nil {
			return again(&apiError{Status: http.StatusBadRequest, Property: n.Field, Message: n.Field + " must be a whole number"})
		}
		body[n.Field] = v
	}
	if err := c.call(r.Context(), r, s, "PUT", settingsAPI, body, nil); err != nil {
		if ae, ok := formErr(err); ok {
			return again(ae)
		}
		return err
	}
	http.Redirect(w, r, "/settings/api-proxy?saved=1", http.StatusSeeOther)
	return nil
}
