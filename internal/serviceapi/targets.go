package serviceapi

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
)

// credentialView is a target credential as responses show it: which secrets are set, never their values.
type credentialView struct {
	Type                 string `json:"type"`
	BearerTokenSet       bool   `json:"bearer_token_set,omitempty"`
	BasicAuthUsername    string `json:"basic_auth_username,omitempty"`
	BasicAuthPasswordSet bool   `json:"basic_auth_password_set,omitempty"`
	HeaderName           string `json:"header_name,omitempty"`
	HeaderValueSet       bool   `json:"header_value_set,omitempty"`
	Certificate          string `json:"certificate,omitempty"`
	PrivateKeySet        bool   `json:"private_key_set,omitempty"`
}

// targetView is an API target as responses show it.
type targetView struct {
	*model.Target
	Credential credentialView `json:"target_credential"`
	// Disabled is PrivX's reason (NOT_DISABLED or BY_ADMIN), shadowing the model's boolean.
	Disabled string `json:"disabled"`
}

func viewTarget(t *model.Target) targetView {
	c := t.Credential
	return targetView{Target: t, Credential: credentialView{
		Type: c.Type, BearerTokenSet: c.BearerToken != "", BasicAuthUsername: c.BasicAuthUsername,
		BasicAuthPasswordSet: c.BasicAuthPassword != "", HeaderName: c.HeaderName,
		HeaderValueSet: c.HeaderValue != "", Certificate: c.Certificate, PrivateKeySet: c.PrivateKey != "",
	}, Disabled: disabledReason(t.Disabled)}
}

// credentialInput is the target credential as requests send it; secrets left out of a PUT keep their stored value.
type credentialInput struct {
	Type              string `json:"type"`
	BearerToken       string `json:"bearer_token"`
	BasicAuthUsername string `json:"basic_auth_username"`
	BasicAuthPassword string `json:"basic_auth_password"`
	HeaderName        string `json:"header_name"`
	HeaderValue       string `json:"header_value"`
	Certificate       string `json:"certificate"`
	PrivateKey        string `json:"private_key"`
	// The *_set flags of a response are accepted and ignored.
	BearerTokenSet       bool `json:"bearer_token_set"`
	BasicAuthPasswordSet bool `json:"basic_auth_password_set"`
	HeaderValueSet       bool `json:"header_value_set"`
	PrivateKeySet        bool `json:"private_key_set"`
	// PrivX's ephemeral certificates (minted per request from a template) are not a Gatehouse feature.
	EphemeralSubject  json.RawMessage `json:"ephemeral_certificate_subject" why:"ephemeral certificates are not supported"`
	EphemeralSAN      json.RawMessage `json:"ephemeral_certificate_san" why:"ephemeral certificates are not supported"`
	EphemeralTemplate json.RawMessage `json:"ephemeral_certificate_template" why:"ephemeral certificates are not supported"`
}

type targetInput struct {
	Name                  *string           `json:"name"`
	Comment               *string           `json:"comment"`
	Tags                  []string          `json:"tags"`
	Roles                 []model.Ref       `json:"roles"`
	AuthorizedEndpoints   []policy.Endpoint `json:"authorized_endpoints"`
	UnauthorizedEndpoints []policy.Endpoint `json:"unauthorized_endpoints"`
	TLSTrustAnchors       *string           `json:"tls_trust_anchors"`
	TLSInsecureSkipVerify *bool             `json:"tls_insecure_skip_verify"`
	Credential            *credentialInput  `json:"target_credential"`
	Disabled              disabledFlag      `json:"disabled"`
	AuditEnabled          *bool             `json:"audit_enabled"`
	AccessGroupID         json.RawMessage   `json:"access_group_id" why:"Gatehouse has no access groups"`
	ID                    string            `json:"id"`
	Created               string            `json:"created"`
	Author                string            `json:"author"`
	Updated               string            `json:"updated"`
	UpdatedBy             string            `json:"updated_by"`
}

// applyTarget merges in into t and validates the result, naming the property at fault.
func (a *API) applyTarget(r *http.Request, in *targetInput, t *model.Target, creating bool) error {
	if in.Name != nil {
		t.Name = strings.TrimSpace(*in.Name)
	}
	if t.Name == "" || len(t.Name) > 128 {
		return badRequest("name", "name is required and must be at most 128 bytes")
	}
	if in.Comment != nil {
		t.Comment = *in.Comment
	}
	if in.Tags != nil {
		for i, tag := range in.Tags {
			if strings.TrimSpace(tag) == "" || len(tag) > 64 {
				return badRequest(fieldIndex("tags", i), "tags must be 1 to 64 bytes")
			}
		}
		t.Tags = dedupeStrings(in.Tags)
	}
	if in.Roles != nil {
		for i, ref := range in.Roles {
			role, err := a.Store.Role(r.Context(), ref.ID)
			if err != nil {
				return badRequest(fieldIndex("roles", i)+".id", "role "+ref.ID+" does not exist")
			}
			in.Roles[i].Name = role.Name
		}
		t.Roles = in.Roles
	}
	for _, list := range []struct {
		field string
		in    []policy.Endpoint
		dst   *[]policy.Endpoint
	}{{"authorized_endpoints", in.AuthorizedEndpoints, &t.AuthorizedEndpoints}, {"unauthorized_endpoints", in.UnauthorizedEndpoints, &t.UnauthorizedEndpoints}} {
		if list.in == nil {
			continue
		}
		out := make([]policy.Endpoint, 0, len(list.in))
		for i, e := range list.in {
			if errs := policy.ValidateEndpoint(e); len(errs) > 0 {
				fe := errs[0].Prefixed(fieldIndex(list.field, i))
				return badRequest(fe.Field, fe.Error())
			}
			// A request matching an unauthorized endpoint is refused, so how it would be forwarded means nothing.
			if list.field == "unauthorized_endpoints" && e.AllowUnauthenticated {
				return model.NotSupported(fieldIndex(list.field, i)+".allow_unauthenticated", "allow_unauthenticated has no meaning on an unauthorized endpoint, whose requests are refused; leave it false")
			}
			if list.field == "unauthorized_endpoints" && e.NATTargetHost != "" {
				return model.NotSupported(fieldIndex(list.field, i)+".nat_target_host", "nat_target_host has no meaning on an unauthorized endpoint, whose requests are refused; leave it out")
			}
			out = append(out, policy.NormalizeEndpoint(e))
		}
		*list.dst = out
	}
	if len(t.AuthorizedEndpoints) == 0 {
		return badRequest("authorized_endpoints", "at least one authorized endpoint is required")
	}
	if t.UnauthorizedEndpoints == nil {
		t.UnauthorizedEndpoints = []policy.Endpoint{}
	}
	if t.Tags == nil {
		t.Tags = []string{}
	}
	if t.Roles == nil {
		t.Roles = []model.Ref{}
	}
	if in.TLSTrustAnchors != nil {
		t.TLSTrustAnchors = strings.TrimSpace(*in.TLSTrustAnchors)
		if t.TLSTrustAnchors != "" {
			if err := validateAnchors(t.TLSTrustAnchors); err != nil {
				return err
			}
		}
	}
	if in.TLSInsecureSkipVerify != nil {
		t.TLSInsecureSkipVerify = *in.TLSInsecureSkipVerify
	}
	if err := refuseUnsupported(in); err != nil {
		return err
	}
	if in.Credential != nil {
		if err := refuseUnsupported(in.Credential); err != nil {
			return withPrefix(err, "target_credential.")
		}
	}
	if in.Disabled.set {
		t.Disabled = in.Disabled.value
	}
	if in.AuditEnabled != nil {
		t.AuditEnabled = *in.AuditEnabled
	}
	if in.Credential == nil && creating {
		return badRequest("target_credential", "target_credential is required")
	}
	if in.Credential != nil {
		if err := mergeCredential(in.Credential, &t.Credential); err != nil {
			return err
		}
	}
	return nil
}

func validateAnchors(bundle string) error {
	rest := []byte(bundle)
	n := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return badRequest("tls_trust_anchors", "tls_trust_anchors may hold only CERTIFICATE blocks, found "+block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return badRequest("tls_trust_anchors", "certificate in tls_trust_anchors does not parse: "+err.Error())
		}
		n++
	}
	if n == 0 || strings.TrimSpace(string(rest)) != "" {
		return badRequest("tls_trust_anchors", "tls_trust_anchors must be a bundle of PEM certificates")
	}
	return nil
}

// mergeCredential applies a credential input over the stored one. A secret left empty keeps the stored value,
// unless the type changes, in which case the new type's secrets are required.
func mergeCredential(in *credentialInput, c *model.TargetCredential) error {
	typeChanged := in.Type != c.Type
	if typeChanged {
		*c = model.TargetCredential{Type: in.Type}
	}
	keep := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	const f = "target_credential."
	// Another type's fields would be stored and never injected: refuse them rather than keep them silently.
	for _, o := range []struct{ name, value, typ string }{
		{"bearer_token", in.BearerToken, "token"}, {"basic_auth_username", in.BasicAuthUsername, "basicauth"},
		{"basic_auth_password", in.BasicAuthPassword, "basicauth"}, {"header_name", in.HeaderName, "header"},
		{"header_value", in.HeaderValue, "header"}, {"certificate", in.Certificate, "certificate"},
		{"private_key", in.PrivateKey, "certificate"},
	} {
		if o.value != "" && o.typ != in.Type {
			return model.NotSupported(f+o.name, fmt.Sprintf("%s applies to type %s only, not %s; leave it out", o.name, o.typ, in.Type))
		}
	}
	switch in.Type {
	case "token":
		keep(&c.BearerToken, in.BearerToken)
		if c.BearerToken == "" {
			return badRequest(f+"bearer_token", "bearer_token is required for type token")
		}
	case "basicauth":
		keep(&c.BasicAuthUsername, in.BasicAuthUsername)
		keep(&c.BasicAuthPassword, in.BasicAuthPassword)
		if c.BasicAuthUsername == "" || strings.Contains(c.BasicAuthUsername, ":") {
			return badRequest(f+"basic_auth_username", "basic_auth_username is required and must not contain ':'")
		}
		if c.BasicAuthPassword == "" {
			return badRequest(f+"basic_auth_password", "basic_auth_password is required for type basicauth")
		}
	case "header":
		keep(&c.HeaderName, in.HeaderName)
		keep(&c.HeaderValue, in.HeaderValue)
		if !validHeaderName(c.HeaderName) {
			return badRequest(f+"header_name", "header_name must be an HTTP header name")
		}
		switch strings.ToLower(c.HeaderName) {
		case "host", "content-length", "transfer-encoding", "connection", "proxy-authorization", "upgrade", "te", "trailer":
			return badRequest(f+"header_name", "header_name must not be a framing or hop-by-hop header")
		}
		if c.HeaderValue == "" || strings.ContainsAny(c.HeaderValue, "\r\n\x00") {
			return badRequest(f+"header_value", "header_value is required and must be a single line")
		}
	case "certificate":
		keep(&c.Certificate, strings.TrimSpace(in.Certificate))
		keep(&c.PrivateKey, strings.TrimSpace(in.PrivateKey))
		if c.Certificate == "" {
			return badRequest(f+"certificate", "certificate is required for type certificate")
		}
		if c.PrivateKey == "" {
			return badRequest(f+"private_key", "private_key is required for type certificate")
		}
		if _, err := tls.X509KeyPair([]byte(c.Certificate), []byte(c.PrivateKey)); err != nil {
			return badRequest(f+"certificate", "certificate and private_key do not form a key pair: "+err.Error())
		}
	default:
		return badRequest(f+"type", "type must be one of token, basicauth, header, certificate")
	}
	return nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func (a *API) listTargets(w http.ResponseWriter, r *http.Request) error {
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	return a.writeTargets(w, r, opts.Offset, opts.Limit, opts.SortKey, opts.SortDir, func(t *model.Target) bool {
		return opts.Filter == "" || containsFold(t.Name, opts.Filter) || containsFold(t.Comment, opts.Filter)
	})
}

// searchTargets is POST /api-targets/search with {"keywords","tags","roles","disabled","audit_enabled"}.
func (a *API) searchTargets(w http.ResponseWriter, r *http.Request) error {
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	var in struct {
		Keywords     string          `json:"keywords"`
		Name         string          `json:"name"`
		Tags         []string        `json:"tags"`
		Roles        []string        `json:"roles"`
		Disabled     disabledFlag    `json:"disabled"`
		AuditEnabled *bool           `json:"audit_enabled"`
		AccessGroup  json.RawMessage `json:"access_group_id" why:"Gatehouse has no access groups"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := refuseUnsupported(&in); err != nil {
		return err
	}
	words := strings.Fields(in.Keywords)
	return a.writeTargets(w, r, opts.Offset, opts.Limit, opts.SortKey, opts.SortDir, func(t *model.Target) bool {
		for _, kw := range words {
			hit := containsFold(t.Name, kw) || containsFold(t.Comment, kw) || slices.ContainsFunc(t.Tags, func(s string) bool { return containsFold(s, kw) }) ||
				slices.ContainsFunc(t.AuthorizedEndpoints, func(e policy.Endpoint) bool { return containsFold(e.Host, kw) })
			if !hit {
				return false
			}
		}
		if in.Name != "" && !strings.EqualFold(t.Name, in.Name) {
			return false
		}
		for _, tag := range in.Tags {
			if !slices.Contains(t.Tags, tag) {
				return false
			}
		}
		for _, role := range in.Roles {
			if !slices.ContainsFunc(t.Roles, func(ref model.Ref) bool { return ref.ID == role || ref.Name == role }) {
				return false
			}
		}
		if opts.Filter != "" && !containsFold(t.Name, opts.Filter) && !containsFold(t.Comment, opts.Filter) {
			return false // the list's filter parameter narrows a search too
		}
		return (!in.Disabled.set || in.Disabled.value == t.Disabled) && (in.AuditEnabled == nil || *in.AuditEnabled == t.AuditEnabled)
	})
}

func (a *API) writeTargets(w http.ResponseWriter, r *http.Request, offset, limit int, sortKey, sortDir string, keep func(*model.Target) bool) error {
	all, err := a.Store.AllTargets(r.Context())
	if err != nil {
		return err
	}
	var hits []*model.Target
	for _, t := range all {
		if keep(t) {
			hits = append(hits, t)
		}
	}
	less := map[string]func(x, y *model.Target) int{
		"name":    func(x, y *model.Target) int { return strings.Compare(x.Name, y.Name) },
		"created": func(x, y *model.Target) int { return x.Created.Compare(y.Created) },
		"updated": func(x, y *model.Target) int { return x.Updated.Compare(y.Updated) },
	}
	if sortKey == "" {
		sortKey = "name"
	}
	cmp, ok := less[sortKey]
	if !ok {
		return badRequest("sortkey", "sortkey must be one of name, created, updated")
	}
	slices.SortStableFunc(hits, func(x, y *model.Target) int {
		if sortDir == "desc" {
			return cmp(y, x)
		}
		return cmp(x, y)
	})
	total := len(hits)
	if limit <= 0 {
		limit = 50
	}
	hits = hits[min(offset, total):min(offset+limit, total)]
	views := make([]targetView, 0, len(hits))
	for _, t := range hits {
		views = append(views, viewTarget(t))
	}
	writeJSON(w, http.StatusOK, newList(views, total))
	return nil
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

func (a *API) targetTags(w http.ResponseWriter, r *http.Request) error {
	tags, err := a.Store.TargetTags(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(tags, len(tags)))
	return nil
}

func (a *API) createTarget(w http.ResponseWriter, r *http.Request) error {
	var in targetInput
	if err := decode(r, &in); err != nil {
		return err
	}
	t := &model.Target{}
	if err := a.applyTarget(r, &in, t, true); err != nil {
		return err
	}
	if err := a.Store.CreateTarget(r.Context(), t, principal(r.Context()).Name); err != nil {
		return err
	}
	a.audit(r, "create", "api-target", t.ID, nil, viewTarget(t))
	writeJSON(w, http.StatusCreated, created{ID: t.ID})
	return nil
}

func (a *API) getTarget(w http.ResponseWriter, r *http.Request) error {
	t, err := a.Store.Target(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewTarget(t))
	return nil
}

func (a *API) updateTarget(w http.ResponseWriter, r *http.Request) error {
	t, err := a.Store.Target(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	cp := *t
	before := viewTarget(&cp)
	var in targetInput
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := a.applyTarget(r, &in, t, false); err != nil {
		return err
	}
	if err := checkSecretDestination(&in, &cp, t); err != nil {
		return err
	}
	if err := a.Store.UpdateTarget(r.Context(), t, principal(r.Context()).Name); err != nil {
		return err
	}
	after := viewTarget(t)
	a.audit(r, "update", "api-target", t.ID, before, after)
	writeJSON(w, http.StatusOK, after)
	return nil
}

func (a *API) deleteTarget(w http.ResponseWriter, r *http.Request) error {
	t, err := a.Store.Target(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := a.Store.DeleteTarget(r.Context(), t.ID); err != nil {
		return err
	}
	a.audit(r, "delete", "api-target", t.ID, viewTarget(t), nil)
	w.WriteHeader(http.StatusOK)
	return nil
}
