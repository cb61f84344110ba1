package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
)

// The configuration policies pages: the configuration API's policy objects, and editing them inside that API's
// transaction (start, change, see the pending changes, commit or roll back). Every step is a configuration API call
// made in process; the transaction belongs to the console session (configapi.WithSessionHolder), so the lock, the
// staging, the validation at commit and the audit are that API's own.

const transactionAPI = "/api/transaction"

// policyKinds are the configuration API's policy lists the console shows and edits.
var policyKinds = []struct{ Path, Label string }{
	{"/api/configuration/http/connections", "Connection policies"},
	{"/api/configuration/http/channel_policies", "Channel policies"},
	{"/api/configuration/http/settings_policies", "Settings policies"},
	{"/api/configuration/http/authentication_policies", "Authentication policies"},
	{"/api/configuration/policies/audit_policies", "Audit policies"},
	{"/api/configuration/policies/userlists", "User lists"},
	{"/api/configuration/policies/trusted_ca_lists", "Trusted CA lists"},
	{"/api/configuration/policies/signing_cas", "Signing CAs"},
	{"/api/configuration/policies/x509_identities", "X.509 identities"},
}

// policyPath checks that p names a policy list the console edits, or one object of one (a single key segment),
// so a form field can never point the console at another API path.
func policyPath(p string) (kindPath, key, label string, ok bool) {
	for _, k := range policyKinds {
		if p == k.Path {
			return k.Path, "", k.Label, true
		}
		if rest, found := strings.CutPrefix(p, k.Path+"/"); found && rest != "" && !strings.ContainsAny(rest, "/?#%\\") && rest != "." && rest != ".." {
			return k.Path, rest, k.Label, true
		}
	}
	return "", "", "", false
}

type policyObject struct {
	Key, Name, Body, Path string
	// Changed is true when the open transaction creates or changes the object.
	Changed bool
}

type policyKind struct {
	Label, Path string
	Objects     []policyObject
	Note        string
}

// txStatus is GET /api/transaction's body.
type txStatus struct {
	Status           string `json:"status"`
	RemainingSeconds int    `json:"remaining_seconds"`
	Changes          int    `json:"changes"`
	LockedBy         string `json:"locked_by"`
}

func (t txStatus) Open() bool { return t.Status == "open" }

// txChange is one pending change of GET /api/transaction/changes.
type txChange struct {
	Type     string          `json:"type"`
	Path     string          `json:"path"`
	OldValue json.RawMessage `json:"old_value"`
	NewValue json.RawMessage `json:"new_value"`
}

func (c *Console) transactionState(r *http.Request, s *session) (txStatus, []txChange, error) {
	var st struct {
		Body txStatus `json:"body"`
	}
	if err := c.call(r.Context(), r, s, "GET", transactionAPI, nil, &st); err != nil {
		return txStatus{}, nil, err
	}
	var ch struct {
		Changes []txChange `json:"changes"`
	}
	if st.Body.Open() {
		if err := c.call(r.Context(), r, s, "GET", transactionAPI+"/changes", nil, &ch); err != nil {
			return txStatus{}, nil, err
		}
	}
	return st.Body, ch.Changes, nil
}

// maxPolicies bounds the objects read per kind for the view.
const maxPolicies = 100

type policiesPage struct {
	Tx     txStatus
	Kinds  []policyKind
	Manage bool
}

// policies shows the policy objects as the session sees them: with its transaction's changes if it holds one.
func (c *Console) policies(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.renderPolicies(w, r, s, http.StatusOK, nil, map[string]string{
		"started": "Transaction started: changes are staged until you commit.", "committed": "Committed: the changes are in effect.",
		"rolledback": "Rolled back: nothing was changed.", "staged": "Change staged in the transaction."}[r.URL.Query().Get("done")])
}

func (c *Console) renderPolicies(w http.ResponseWriter, r *http.Request, s *session, status int, ae *apiError, notice string) error {
	tx, changes, err := c.transactionState(r, s)
	if err != nil {
		return err
	}
	changed := map[string]bool{}
	for _, ch := range changes {
		changed[ch.Path] = true
	}
	p := &policiesPage{Tx: tx, Manage: s.principal.Permissions.Has(auth.ConfigManage)}
	for _, k := range policyKinds {
		pk := policyKind{Label: k.Label, Path: k.Path}
		var l struct {
			Items []struct {
				Meta struct {
					Href string `json:"href"`
				} `json:"meta"`
			} `json:"items"`
		}
		if err := c.call(r.Context(), r, s, "GET", k.Path, nil, &l); err != nil {
			var e *apiError
			if errors.As(err, &e) && e.Status == http.StatusForbidden {
				return err
			}
			pk.Note = err.Error()
			p.Kinds = append(p.Kinds, pk)
			continue
		}
		for i, it := range l.Items {
			if i == maxPolicies {
				pk.Note = "only the first " + strconv.Itoa(maxPolicies) + " are shown"
				break
			}
			href := it.Meta.Href
			if u, err := url.Parse(href); err == nil {
				href = u.RequestURI()
			}
			obj, err := c.policyObject(r, s, href)
			if err != nil {
				pk.Note = err.Error()
				continue
			}
			obj.Changed = changed[href]
			pk.Objects = append(pk.Objects, *obj)
		}
		p.Kinds = append(p.Kinds, pk)
	}
	v := &view{Title: "Configuration policies", Active: "/admin/policies", Data: p, Notice: notice}
	if ae != nil {
		v.Error = "Not committed: " + ae.Message
		if ae.Property != "" {
			v.Error += " (field " + ae.Property + ")"
		}
	}
	c.render(w, r, s, status, "policies", v)
	return nil
}

func (c *Console) policyObject(r *http.Request, s *session, href string) (*policyObject, error) {
	var obj struct {
		Key  json.RawMessage `json:"key"`
		Body json.RawMessage `json:"body"`
	}
	if err := c.call(r.Context(), r, s, "GET", href, nil, &obj); err != nil {
		return nil, err
	}
	var name struct {
		Name string `json:"name"`
	}
	json.Unmarshal(obj.Body, &name)
	return &policyObject{Key: string(bytes.Trim(obj.Key, `"`)), Name: name.Name, Body: indentJSON(obj.Body), Path: href}, nil
}

func indentJSON(b []byte) string {
	var out bytes.Buffer
	if json.Indent(&out, b, "", "  ") != nil {
		return string(b)
	}
	return out.String()
}

// transactionAction starts, commits or rolls back the session's transaction.
func (c *Console) transactionAction(w http.ResponseWriter, r *http.Request, s *session) error {
	a := r.PostForm.Get("action")
	done, ok := map[string]string{"start": "started", "commit": "committed", "rollback": "rolledback"}[a]
	if !ok {
		return &httpError{Status: http.StatusBadRequest, Message: "unknown transaction action"}
	}
	method, body := "PUT", any(map[string]string{"status": a})
	if a == "start" {
		method, body = "POST", nil
	}
	if err := c.call(r.Context(), r, s, method, transactionAPI, body, nil); err != nil {
		// A commit the configuration API refuses (a reference to nothing, an invalid body) is shown on the page, with
		// the transaction still open to fix it.
		if ae, ok := formErr(err); ok {
			return c.renderPolicies(w, r, s, ae.Status, ae, "")
		}
		return err
	}
	back := "/admin/policies?done=" + done
	if r.PostForm.Get("back") == "changes" && done == "started" {
		back = "/admin/policies/changes"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
	return nil
}

type changesPage struct {
	Tx      txStatus
	Changes []txChange
	Manage  bool
}

// policyChanges lists the transaction's pending changes, each with its old and new body.
func (c *Console) policyChanges(w http.ResponseWriter, r *http.Request, s *session) error {
	tx, changes, err := c.transactionState(r, s)
	if err != nil {
		return err
	}
	c.render(w, r, s, http.StatusOK, "policy_changes", &view{Title: "Pending configuration changes", Active: "/admin/policies",
		Data: &changesPage{Tx: tx, Changes: changes, Manage: s.principal.Permissions.Has(auth.ConfigManage)}})
	return nil
}

type policyFormPage struct {
	Label, KindPath, Key, Path, Name string
	Body                             string
	Tx                               txStatus
	Manage                           bool
}

// policyForm is the editor of one object (path names it) or of a new one (path names its list).
func (c *Console) policyForm(w http.ResponseWriter, r *http.Request, s *session) error {
	kind, key, label, ok := policyPath(r.URL.Query().Get("path"))
	if !ok {
		return &httpError{Status: http.StatusNotFound, Message: "no such configuration policy"}
	}
	p := &policyFormPage{Label: label, KindPath: kind, Key: key, Path: kind, Body: "{\n}"}
	if key != "" {
		obj, err := c.policyObject(r, s, kind+"/"+key)
		if err != nil {
			return err
		}
		p.Path, p.Name, p.Body = obj.Path, obj.Name, obj.Body
	}
	return c.renderPolicyForm(w, r, s, http.StatusOK, p, nil)
}

func (c *Console) renderPolicyForm(w http.ResponseWriter, r *http.Request, s *session, status int, p *policyFormPage, ae *apiError) error {
	tx, _, err := c.transactionState(r, s)
	if err != nil {
		return err
	}
	p.Tx, p.Manage = tx, s.principal.Permissions.Has(auth.ConfigManage)
	title := "New: " + strings.TrimSuffix(p.Label, "s")
	if p.Key != "" {
		title = p.Label + ": " + p.Name
		if p.Name == "" {
			title = p.Label + ": " + p.Key
		}
	}
	v := &view{Title: title, Active: "/admin/policies", Data: p}
	if ae != nil {
		v.Error = "Not staged: " + ae.Message
		msg := ae.Message
		if ae.Property != "" {
			msg = ae.Property + ": " + msg
		}
		v.Errors = map[string]string{"body": msg}
	}
	c.render(w, r, s, status, "policy_form", v)
	return nil
}

// savePolicy stages a create (the path is a list), a replace or, with delete set, a deletion, in the session's
// transaction; the configuration API opens one if the session has none and nobody else holds the lock.
func (c *Console) savePolicy(w http.ResponseWriter, r *http.Request, s *session) error {
	f := r.PostForm
	kind, key, label, ok := policyPath(f.Get("path"))
	if !ok {
		return &httpError{Status: http.StatusBadRequest, Message: "no such configuration policy"}
	}
	p := &policyFormPage{Label: label, KindPath: kind, Key: key, Path: f.Get("path"), Name: f.Get("name"), Body: f.Get("body")}
	var err error
	switch {
	case f.Get("delete") == "1" && key != "":
		err = c.call(r.Context(), r, s, "DELETE", p.Path, nil, nil)
	default:
		body := json.RawMessage(strings.TrimSpace(p.Body))
		if !json.Valid(body) || !bytes.HasPrefix(body, []byte("{")) {
			return c.renderPolicyForm(w, r, s, http.StatusBadRequest, p, &apiError{Status: http.StatusBadRequest, Message: "the body must be one JSON object"})
		}
		method := "PUT"
		if key == "" {
			method = "POST"
		}
		err = c.call(r.Context(), r, s, method, p.Path, body, nil)
	}
	if err != nil {
		if ae, ok := formErr(err); ok {
			return c.renderPolicyForm(w, r, s, ae.Status, p, ae)
		}
		return err
	}
	http.Redirect(w, r, "/admin/policies?done=staged", http.StatusSeeOther)
	return nil
}
