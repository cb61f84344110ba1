package console

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// The target form's field names are the API's property paths (name, target_credential.header_name,
// authorized_endpoints[2].paths), so an API error naming a property lands on the field of that name.

// maxRows bounds the endpoint rows a form may send.
const maxRows = 200

// endpointRow is one row of the endpoint editor.
type endpointRow struct {
	Index                int
	Host                 string
	Protocols            []string
	Methods              string
	Paths                string
	AllowUnauthenticated bool
	NATTargetHost        string
}

// Prefix is the row's field name prefix, as in authorized_endpoints[3].
func (r endpointRow) Prefix(list string) string { return fmt.Sprintf("%s[%d]", list, r.Index) }

// targetForm is the target editor's state, from a stored target or a submitted form.
type targetForm struct {
	ID, Name, Comment, Tags, TrustAnchors string
	Roles                                 []string
	Disabled, AuditEnabled, SkipVerify    bool
	CredType, BasicUser, HeaderName, Cert string
	// Set says which secrets the stored target has (they are never shown).
	BearerSet, PasswordSet, HeaderValueSet, KeySet bool
	Authorized, Unauthorized                       []endpointRow
}

// storedTarget is a target as the admin API shows it.
type storedTarget struct {
	ID                    string           `json:"id"`
	Name                  string           `json:"name"`
	Comment               string           `json:"comment"`
	Tags                  []string         `json:"tags"`
	Roles                 []ref            `json:"roles"`
	AuthorizedEndpoints   []storedEndpoint `json:"authorized_endpoints"`
	UnauthorizedEndpoints []storedEndpoint `json:"unauthorized_endpoints"`
	TLSTrustAnchors       string           `json:"tls_trust_anchors"`
	TLSInsecureSkipVerify bool             `json:"tls_insecure_skip_verify"`
	Disabled              disabledFlag     `json:"disabled"`
	AuditEnabled          bool             `json:"audit_enabled"`
	Credential            struct {
		Type                 string `json:"type"`
		BearerTokenSet       bool   `json:"bearer_token_set"`
		BasicAuthUsername    string `json:"basic_auth_username"`
		BasicAuthPasswordSet bool   `json:"basic_auth_password_set"`
		HeaderName           string `json:"header_name"`
		HeaderValueSet       bool   `json:"header_value_set"`
		Certificate          string `json:"certificate"`
		PrivateKeySet        bool   `json:"private_key_set"`
	} `json:"target_credential"`
}

type storedEndpoint struct {
	Host                 string   `json:"host"`
	Protocols            []string `json:"protocols"`
	Methods              []string `json:"methods"`
	Paths                []string `json:"paths"`
	AllowUnauthenticated bool     `json:"allow_unauthenticated"`
	NATTargetHost        string   `json:"nat_target_host"`
}

// disabledFlag reads a target's disabled state as the service API answers it: PrivX's NOT_DISABLED or BY_ADMIN (a
// boolean, as older answers had it, also reads).
type disabledFlag bool

func (d *disabledFlag) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*d = s != "" && s != "NOT_DISABLED"
		return nil
	}
	var v bool
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("disabled: want NOT_DISABLED, BY_ADMIN or a boolean, got %s", b)
	}
	*d = disabledFlag(v)
	return nil
}

// formFromTarget fills the editor from a stored target, with blank rows to add endpoints without script.
func formFromTarget(t *storedTarget) *targetForm {
	f := &targetForm{CredType: "token", AuditEnabled: true}
	if t != nil {
		f = &targetForm{ID: t.ID, Name: t.Name, Comment: t.Comment, Tags: strings.Join(t.Tags, ", "), TrustAnchors: t.TLSTrustAnchors,
			Disabled: bool(t.Disabled), AuditEnabled: t.AuditEnabled, SkipVerify: t.TLSInsecureSkipVerify, CredType: t.Credential.Type,
			BasicUser: t.Credential.BasicAuthUsername, HeaderName: t.Credential.HeaderName, Cert: t.Credential.Certificate,
			BearerSet: t.Credential.BearerTokenSet, PasswordSet: t.Credential.BasicAuthPasswordSet,
			HeaderValueSet: t.Credential.HeaderValueSet, KeySet: t.Credential.PrivateKeySet}
		for _, r := range t.Roles {
			f.Roles = append(f.Roles, r.ID)
		}
		for i, e := range t.AuthorizedEndpoints {
			f.Authorized = append(f.Authorized, rowFromEndpoint(i, e))
		}
		for i, e := range t.UnauthorizedEndpoints {
			f.Unauthorized = append(f.Unauthorized, rowFromEndpoint(i, e))
		}
	}
	f.padRows()
	return f
}

func rowFromEndpoint(i int, e storedEndpoint) endpointRow {
	return endpointRow{Index: i, Host: e.Host, Protocols: e.Protocols, Methods: strings.Join(e.Methods, ", "),
		Paths: strings.Join(e.Paths, " "), AllowUnauthenticated: e.AllowUnauthenticated, NATTargetHost: e.NATTargetHost}
}

// padRows appends blank rows: two authorized, one unauthorized.
func (f *targetForm) padRows() {
	for _, l := range []struct {
		rows *[]endpointRow
		n    int
	}{{&f.Authorized, 2}, {&f.Unauthorized, 1}} {
		next := 0
		if len(*l.rows) > 0 {
			next = (*l.rows)[len(*l.rows)-1].Index + 1
		}
		for i := 0; i < l.n; i++ {
			*l.rows = append(*l.rows, endpointRow{Index: next + i, Protocols: []string{"https"}, Methods: "*", Paths: "/**"})
		}
	}
}

// parseTargetForm reads a submitted form back into the editor's state (to show it again on error) and the API body
// to send. rowOf maps "authorized_endpoints[i]" of the body (blank rows dropped) to the form row it came from.
// Blank secrets are left out, so an update keeps the stored ones and a create is refused naming the missing one.
func parseTargetForm(v url.Values) (f *targetForm, body map[string]any, rowOf map[string]string) {
	f = &targetForm{ID: v.Get("id"), Name: v.Get("name"), Comment: v.Get("comment"), Tags: v.Get("tags"), TrustAnchors: v.Get("tls_trust_anchors"),
		Roles: v["roles"], Disabled: v.Get("disabled") == "on", AuditEnabled: v.Get("audit_enabled") == "on",
		SkipVerify: v.Get("tls_insecure_skip_verify") == "on", CredType: v.Get("target_credential.type"),
		BasicUser: v.Get("target_credential.basic_auth_username"), HeaderName: v.Get("target_credential.header_name"),
		Cert: v.Get("target_credential.certificate")}
	body = map[string]any{"name": f.Name, "comment": f.Comment, "tags": nonNil(splitList(f.Tags)), "tls_trust_anchors": f.TrustAnchors,
		"tls_insecure_skip_verify": f.SkipVerify, "disabled": f.Disabled, "audit_enabled": f.AuditEnabled}
	if v.Get("roles_listed") == "1" {
		roles := []map[string]string{}
		for _, id := range f.Roles {
			roles = append(roles, map[string]string{"id": id})
		}
		body["roles"] = roles
	}
	cred := map[string]any{"type": f.CredType}
	for _, k := range []string{"basic_auth_username", "header_name", "certificate", "bearer_token", "basic_auth_password", "header_value", "private_key"} {
		if s := v.Get("target_credential." + k); s != "" {
			cred[k] = s
		}
	}
	body["target_credential"] = cred
	rowOf = map[string]string{}
	for _, l := range []struct {
		name string
		rows *[]endpointRow
	}{{"authorized_endpoints", &f.Authorized}, {"unauthorized_endpoints", &f.Unauthorized}} {
		eps := []map[string]any{}
		for i := 0; i < maxRows; i++ {
			p := fmt.Sprintf("%s[%d].", l.name, i)
			if _, ok := v[p+"host"]; !ok {
				continue
			}
			row := endpointRow{Index: i, Host: strings.TrimSpace(v.Get(p + "host")), Protocols: v[p+"protocols"], Methods: v.Get(p + "methods"),
				Paths: v.Get(p + "paths"), AllowUnauthenticated: v.Get(p+"allow_unauthenticated") == "on",
				NATTargetHost: strings.TrimSpace(v.Get(p + "nat_target_host"))}
			*l.rows = append(*l.rows, row)
			if row.Host == "" {
				continue // a blank row of the editor
			}
			rowOf[fmt.Sprintf("%s[%d]", l.name, len(eps))] = fmt.Sprintf("%s[%d]", l.name, i)
			ep := map[string]any{"host": row.Host, "protocols": nonNil(row.Protocols), "methods": nonNil(splitList(row.Methods)),
				"paths": nonNil(splitList(row.Paths))}
			if l.name == "authorized_endpoints" {
				ep["allow_unauthenticated"] = row.AllowUnauthenticated
				if row.NATTargetHost != "" {
					ep["nat_target_host"] = row.NATTargetHost
				}
			}
			eps = append(eps, ep)
		}
		body[l.name] = eps
	}
	return f, body, rowOf
}

var (
	endpointProperty = regexp.MustCompile(`^((?:un)?authorized_endpoints\[\d+\])(?:\.([a-z_]+))?`)
	plainProperty    = regexp.MustCompile(`^[a-z_]+(?:\.[a-z_]+)?`)
)

// formField is the form field an API property belongs to: the row's index in the form for an endpoint, the list
// field for an element of a list (tags[2] is tags, roles[0].id is roles).
func formField(property string, rowOf map[string]string) string {
	if m := endpointProperty.FindStringSubmatch(property); m != nil {
		row := m[1]
		if r, ok := rowOf[row]; ok {
			row = r
		}
		field := m[2]
		if field == "" {
			field = "host"
		}
		return row + "." + field
	}
	return plainProperty.FindString(property)
}

// NextRow is the index the script gives the next row it adds to list.
func (f *targetForm) NextRow(list string) string {
	rows := f.Authorized
	if list == "unauthorized_endpoints" {
		rows = f.Unauthorized
	}
	if len(rows) == 0 {
		return "0"
	}
	return strconv.Itoa(rows[len(rows)-1].Index + 1)
}

// epArgs is what the endpoint editor template gets for one list.
type epArgs struct {
	List, Legend string
	Rows         []endpointRow
	Errors       map[string]string
	Protocols    []string
	Authorized   bool
}

func endpointsArgs(list, legend string, rows []endpointRow, errs map[string]string, protocols []string, authorized bool) epArgs {
	return epArgs{List: list, Legend: legend, Rows: rows, Errors: errs, Protocols: protocols, Authorized: authorized}
}

// rowTemplateIndex is the placeholder the script replaces with a new row's index.
const rowTemplateIndex = "__i__"

type rowView struct {
	Prefix     string
	Row        endpointRow
	Errors     map[string]string
	Protocols  []string
	Authorized bool
}

// rowArgs is one editor row; a nil row is the blank row the script clones.
func rowArgs(p epArgs, row any) rowView {
	v := rowView{Errors: p.Errors, Protocols: p.Protocols, Authorized: p.Authorized}
	if r, ok := row.(endpointRow); ok {
		v.Row, v.Prefix = r, r.Prefix(p.List)
	} else {
		v.Row, v.Prefix = endpointRow{Protocols: []string{"https"}, Methods: "*", Paths: "/**"}, p.List+"["+rowTemplateIndex+"]"
	}
	return v
}
