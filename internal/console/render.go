package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/recording"
)

// view is what every page template gets: the page's own Data plus the frame (menu, user, form token, messages).
type view struct {
	Title  string
	Active string
	User   string
	CSRF   string
	Nav    []navGroup
	Error  string
	Notice string
	// Errors maps an API property (also the form field's name) to the API's message about it.
	Errors map[string]string
	Data   any
}

type navItem struct {
	Section, Label, Href string
}

// menuEntry is one menu item and the permission that shows it ("" shows it to everyone signed in).
type menuEntry struct {
	Perm string
	navItem
}

// auditorPages are the menu items shown to auditors of some connection policy (access_control audit) without
// the item's permission too: the API lets them list the connections they audit.
var auditorPages = map[string]bool{"/monitor/connections": true}

// menu is the console's navigation, in order. A new page adds its line here; the layout groups items by section.
var menu = []menuEntry{
	{"", navItem{"Account", "My access", "/access"}},
	{"", navItem{"Account", "Approvals", "/approvals"}},
	{auth.ConnectionsView, navItem{"Monitoring", "Connections", "/monitor/connections"}},
	{auth.AuditView, navItem{"Monitoring", "Audit events", "/monitor/audit"}},
	{auth.APITargetsView, navItem{"Administration", "API targets", "/admin/targets"}},
	{auth.UsersView, navItem{"Administration", "Users", "/admin/users"}},
	{auth.RolesView, navItem{"Administration", "Roles", "/admin/roles"}},
	{auth.APIClientsManage, navItem{"Administration", "API clients", "/admin/clients"}},
	{auth.SourcesView, navItem{"Administration", "Directory sources", "/admin/sources"}},
	{auth.HostsView, navItem{"Administration", "Hosts", "/admin/hosts"}},
	{auth.ConfigView, navItem{"Administration", "Configuration policies", "/admin/policies"}},
	{auth.SettingsView, navItem{"Settings", "API proxy", "/settings/api-proxy"}},
}

// navGroup is a section of the menu with its items.
type navGroup struct {
	Section string
	Items   []navItem
}

// nav is the menu: only what the signed-in user's permissions allow, the same permission set the API checks;
// auditor says the user audits some connection policy, which the API lets list those connections.
func nav(p auth.PermissionSet, auditor bool) []navGroup {
	var groups []navGroup
	for _, m := range menu {
		if m.Perm != "" && !p.Has(m.Perm) && !(auditor && auditorPages[m.Href]) {
			continue
		}
		if n := len(groups); n == 0 || groups[n-1].Section != m.Section {
			groups = append(groups, navGroup{Section: m.Section})
		}
		g := &groups[len(groups)-1]
		g.Items = append(g.Items, m.navItem)
	}
	return groups
}

var funcs = template.FuncMap{
	"ts":            timestamp,
	"bytes":         humanBytes,
	"join":          strings.Join,
	"marked":        markRedacted,
	"body":          prettyBody,
	"fieldErr":      func(errs map[string]string, field string) string { return errs[field] },
	"status":        statusClass,
	"inputTime":     inputTime,
	"diff":          diffText,
	"endpointsArgs": endpointsArgs,
	"rowArgs":       rowArgs,
	"has":           contains,
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parseTemplates pairs every page with the layout.
func (c *Console) parseTemplates() error {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	c.pages = map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", n)
		if err != nil {
			return fmt.Errorf("console template %s: %w", name, err)
		}
		c.pages[name] = t
	}
	return nil
}

// render writes page name inside the layout. It renders into a buffer first so a template failure is an error page,
// never half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, status int, name string, v *view) {
	if s != nil {
		v.User, v.CSRF, v.Nav = s.principal.Name, s.csrf, nav(s.principal.Permissions, c.Service != nil && c.Service.Audits(s.principal))
	}
	t, ok := c.pages[name]
	if !ok {
		c.log().Error("console page has no template", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		c.log().Error("rendering console page failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// timestamp is the absolute UTC time every page and the live script show.
func timestamp(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return ""
		}
		return v.UTC().Format("2006-01-02 15:04:05Z")
	case *time.Time:
		if v == nil {
			return ""
		}
		return timestamp(*v)
	}
	return ""
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func statusClass(code int) string {
	switch {
	case code == 0:
		return "st-none"
	case code < 300:
		return "st-ok"
	case code < 400:
		return "st-redirect"
	case code < 500:
		return "st-client"
	}
	return "st-server"
}

// segment is a piece of recorded text; Redacted pieces are what the recorder replaced, shown marked.
type segment struct {
	Text     string
	Redacted bool
}

// markRedacted splits s around the recorder's redaction marker.
func markRedacted(s string) []segment {
	var out []segment
	for {
		i := strings.Index(s, recording.Redacted)
		if i < 0 {
			if s != "" {
				out = append(out, segment{Text: s})
			}
			return out
		}
		if i > 0 {
			out = append(out, segment{Text: s[:i]})
		}
		out = append(out, segment{Text: recording.Redacted, Redacted: true})
		s = s[i+len(recording.Redacted):]
	}
}

// prettyBody shows a recorded body: JSON indented, other text as is, binary as a note.
func prettyBody(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	var out bytes.Buffer
	if json.Valid(b) && json.Indent(&out, b, "", "  ") == nil {
		return out.String()
	}
	if !isText(b) {
		return fmt.Sprintf("(%d bytes of binary data)", len(b))
	}
	return string(b)
}

func isText(b []byte) bool {
	for _, r := range string(b) {
		if r == '\uFFFD' || (r < 0x20 && r != '\n' && r != '\r' && r != '\t') {
			return false
		}
	}
	return true
}
