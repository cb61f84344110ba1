package serviceapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// SecretPrefix starts every proxy credential secret, so leaked ones are easy to recognise and scan for.
const SecretPrefix = "ghp_"

// credentialView is a proxy credential as responses show it (never its secret).
type proxyCredentialView struct {
	*model.ProxyCredential
	Target model.Ref `json:"target"`
	// Type is PrivX's client credential type: a Gatehouse proxy credential is always a bearer token.
	Type string `json:"type"`
}

// credentialTypeToken is the only PrivX client credential type Gatehouse issues.
const credentialTypeToken = "token"

type credentialRequest struct {
	Name          *string    `json:"name"`
	Comment       *string    `json:"comment"`
	Target        *model.Ref `json:"target"`
	NotBefore     *string    `json:"not_before"`
	NotAfter      *string    `json:"not_after"`
	SourceAddress []string   `json:"source_address"`
	Enabled       *bool      `json:"enabled"`
	ID            string     `json:"id"`
	UserID        string     `json:"user_id"`
	TargetID      string     `json:"target_id"`
	LastUsed      *string    `json:"last_used"`
	Created       string     `json:"created"`
	Author        string     `json:"author"`
	Updated       string     `json:"updated"`
	UpdatedBy     string     `json:"updated_by"`
	// Type is PrivX's credential type: "" (chosen by the server) or token; see checkPrivX.
	Type                 string          `json:"type"`
	LoginSessionRequired string          `json:"privx_login_session_required"`
	BasicAuthUsername    json.RawMessage `json:"basic_auth_username" why:"proxy credentials are bearer tokens"`
	BasicAuthPassword    json.RawMessage `json:"basic_auth_password" why:"proxy credentials are bearer tokens"`
	BearerToken          json.RawMessage `json:"bearer_token" why:"the server generates the secret; read it from .../secret"`
	Certificate          json.RawMessage `json:"certificate" why:"proxy credentials are bearer tokens"`
	PrivateKey           json.RawMessage `json:"private_key" why:"proxy credentials are bearer tokens"`

	// notBefore and notAfter are NotBefore and NotAfter parsed by parseTimes. The JSON fields are strings so
	// that a malformed time is refused naming its property, which encoding/json cannot do for time.Time.
	notBefore, notAfter *time.Time
}

// checkPrivX refuses what PrivX's client credentials have and Gatehouse's do not.
func (in *credentialRequest) checkPrivX() error {
	switch in.Type {
	case "", credentialTypeToken:
	case "basicauth", "certificate":
		return notSupported("type", "proxy credentials are bearer tokens (type token)")
	default:
		return badRequest("type", "type must be token, basicauth or certificate")
	}
	switch in.LoginSessionRequired {
	case "", "DEFAULT", "DISABLED":
	case "ENABLED":
		return notSupported("privx_login_session_required", "proxy credentials do not depend on a login session")
	default:
		return badRequest("privx_login_session_required", "privx_login_session_required must be DEFAULT, ENABLED or DISABLED")
	}
	return refuseUnsupported(in)
}

// parseTimes parses not_before and not_after as RFC 3339 times; the empty string (what the SDK sends for "not
// set") counts as left out.
func (in *credentialRequest) parseTimes() error {
	for _, f := range []struct {
		name string
		raw  *string
		dst  **time.Time
	}{{"not_before", in.NotBefore, &in.notBefore}, {"not_after", in.NotAfter, &in.notAfter}} {
		if f.raw == nil || *f.raw == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, *f.raw)
		if err != nil {
			return badRequest(f.name, f.name+" must be an RFC 3339 time such as 2030-01-02T15:04:05Z")
		}
		*f.dst = &t
	}
	return nil
}

// credentialOwner resolves {user} ("current" or an id) and checks that the caller may act on that user's
// credentials: their own with api-proxy-credentials-own, anyone's with api-proxy-credentials-manage.
func (a *API) credentialOwner(r *http.Request) (*model.User, error) {
	p := principal(r.Context())
	id := r.PathValue("user")
	if id == "current" {
		if p.Kind != auth.KindUser {
			return nil, badRequest("user_id", "API clients have no credentials of their own; name a user id")
		}
		id = p.ID
	}
	own := p.Kind == auth.KindUser && p.ID == id
	if !own && !p.Permissions.Has(auth.APIProxyCredentialsManage) {
		return nil, permissionDenied(auth.APIProxyCredentialsManage)
	}
	u, err := a.Store.User(r.Context(), id)
	if errors.Is(err, store.ErrNotExist) {
		return nil, notFound("user")
	}
	return u, err
}

// ownedCredential loads {id} and checks it belongs to the owner in the path, so one user's id cannot be used to
// reach another's credential.
func (a *API) ownedCredential(r *http.Request) (*model.User, *model.ProxyCredential, error) {
	u, err := a.credentialOwner(r)
	if err != nil {
		return nil, nil, err
	}
	c, err := a.Store.Credential(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotExist) || (err == nil && c.UserID != u.ID) {
		return nil, nil, notFound("credential")
	}
	return u, c, err
}

func (a *API) viewCredential(r *http.Request, c *model.ProxyCredential) proxyCredentialView {
	v := proxyCredentialView{ProxyCredential: c, Target: model.Ref{ID: c.TargetID}, Type: credentialTypeToken}
	if t, err := a.Store.Target(r.Context(), c.TargetID); err == nil {
		v.Target.Name = t.Name
	}
	return v
}

func (a *API) listCredentials(w http.ResponseWriter, r *http.Request) error {
	u, err := a.credentialOwner(r)
	if err != nil {
		return err
	}
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	list, total, err := a.Store.ListCredentials(r.Context(), u.ID, opts)
	if err != nil {
		return err
	}
	views := make([]proxyCredentialView, 0, len(list))
	for _, c := range list {
		views = append(views, a.viewCredential(r, c))
	}
	writeJSON(w, http.StatusOK, newList(views, total))
	return nil
}

func (a *API) createCredential(w http.ResponseWriter, r *http.Request) error {
	u, err := a.credentialOwner(r)
	if err != nil {
		return err
	}
	var in credentialRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := in.parseTimes(); err != nil {
		return err
	}
	if err := in.checkPrivX(); err != nil {
		return err
	}
	if in.Target == nil || in.Target.ID == "" {
		return badRequest("target.id", "target is required")
	}
	t, err := a.Store.Target(r.Context(), in.Target.ID)
	if errors.Is(err, store.ErrNotExist) {
		return badRequest("target.id", "target "+in.Target.ID+" does not exist")
	} else if err != nil {
		return err
	}
	p := principal(r.Context())
	roles, err := a.Store.UserRoles(r.Context(), u.ID)
	if err != nil {
		return err
	}
	var warnings []string
	if !holdsTargetRole(roles, t) {
		if !p.Permissions.Has(auth.APIProxyCredentialsManage) {
			return &Error{Status: http.StatusForbidden, Code: "FORBIDDEN", Message: "you hold no role of this target", Property: "target.id"}
		}
		// A manager may prepare a credential before granting the role, so it is created, but not silently: the
		// proxy refuses every request with it until the owner holds a role of the target.
		warnings = append(warnings, fmt.Sprintf("user %s holds no role of target %s: every request with this credential is refused until they do", u.Username, t.Name))
	}
	settings, err := a.Store.Settings(r.Context())
	if err != nil {
		return err
	}
	now := a.now().UTC()
	c := &model.ProxyCredential{UserID: u.ID, TargetID: t.ID, Enabled: true, NotBefore: now, NotAfter: now.Add(settings.MaxValidity()),
		SourceAddress: []string{}}
	if in.notBefore != nil {
		c.NotBefore = in.notBefore.UTC()
	}
	if in.notAfter != nil {
		c.NotAfter = in.notAfter.UTC()
	} else if in.notBefore != nil {
		c.NotAfter = c.NotBefore.Add(settings.MaxValidity())
	}
	bound := false
	var limits auth.CredentialLimits
	if !p.Permissions.Has(auth.APIProxyCredentialsManage) {
		if limits, bound, err = a.ownerLimits(r, c); err != nil {
			return err
		}
		if bound {
			startFromLimits(&in, c, limits)
			if err := checkLimitsCurrent(c, limits); err != nil {
				return err
			}
		}
	}
	if err := applyCredential(&in, c, settings); err != nil {
		return err
	}
	if bound {
		if err := checkWithinLimits(c, limits); err != nil {
			return err
		}
		warnings = append(warnings, limitsWarning(t, limits))
	}
	admin := adminActsFor(p, u)
	if admin {
		if err := a.recordOwnerLimits(r, &in, c); err != nil {
			return err
		}
	}
	c.Secret = SecretPrefix + secrets.RandomToken(32)
	if err := a.Store.CreateCredential(r.Context(), c, p.Name); err != nil {
		return err
	}
	if admin {
		if err := a.liftOwnerLimits(r, &in, c, true); err != nil {
			return err
		}
	}
	a.audit(r, "create", "api-proxy-credential", c.ID, nil, a.viewCredential(r, c))
	writeJSON(w, http.StatusCreated, struct {
		ID       string   `json:"id"`
		Warnings []string `json:"warnings,omitempty"`
	}{c.ID, warnings})
	return nil
}

// applyCredential merges name, comment, source addresses and enabled, and checks the validity window.
func applyCredential(in *credentialRequest, c *model.ProxyCredential, settings model.Settings) error {
	if in.Name != nil {
		c.Name = strings.TrimSpace(*in.Name)
	}
	if c.Name == "" || len(c.Name) > 128 {
		return badRequest("name", "name is required and must be at most 128 bytes")
	}
	if in.Comment != nil {
		c.Comment = *in.Comment
	}
	if in.Enabled != nil {
		c.Enabled = *in.Enabled
	}
	if in.SourceAddress != nil {
		if _, errs := policy.ValidateCIDRList(in.SourceAddress); len(errs) > 0 {
			fe := errs[0].Prefixed("source_address")
			return badRequest(fe.Field, fe.Error())
		}
		c.SourceAddress = in.SourceAddress
	}
	if !c.NotAfter.After(c.NotBefore) {
		return badRequest("not_after", "not_after must be later than not_before")
	}
	if c.NotAfter.Sub(c.NotBefore) > settings.MaxValidity() {
		return badRequest("not_after", "the validity window is longer than the maximum credential validity ("+settings.MaxValidity().String()+")")
	}
	return nil
}

func holdsTargetRole(roles []*model.Role, t *model.Target) bool {
	return slices.ContainsFunc(roles, func(r *model.Role) bool {
		return slices.ContainsFunc(t.Roles, func(ref model.Ref) bool { return ref.ID == r.ID })
	})
}

func (a *API) getCredential(w http.ResponseWriter, r *http.Request) error {
	_, c, err := a.ownedCredential(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.viewCredential(r, c))
	return nil
}

// updateCredential may change name, comment, source addresses and enabled, and only narrow the validity window.
func (a *API) updateCredential(w http.ResponseWriter, r *http.Request) error {
	owner, c, err := a.ownedCredential(r)
	if err != nil {
		return err
	}
	cp := *c
	before := a.viewCredential(r, &cp)
	var in credentialRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := in.parseTimes(); err != nil {
		return err
	}
	if err := in.checkPrivX(); err != nil {
		return err
	}
	if in.Target != nil && in.Target.ID != "" && in.Target.ID != c.TargetID {
		return badRequest("target.id", "a credential's target cannot change; create a new credential")
	}
	if in.notBefore != nil {
		nb := in.notBefore.UTC()
		if nb.Before(c.NotBefore) {
			return badRequest("not_before", "an update may only narrow the validity window; not_before cannot move earlier")
		}
		c.NotBefore = nb
	}
	if in.notAfter != nil {
		na := in.notAfter.UTC()
		if na.After(c.NotAfter) {
			return badRequest("not_after", "an update may only narrow the validity window; not_after cannot move later")
		}
		c.NotAfter = na
	}
	settings, err := a.Store.Settings(r.Context())
	if err != nil {
		return err
	}
	if err := applyCredential(&in, c, settings); err != nil {
		return err
	}
	if !principal(r.Context()).Permissions.Has(auth.APIProxyCredentialsManage) {
		if err := auth.OwnerMayChange(limitsOf(&cp), limitsOf(c)); err != nil {
			var fr *auth.FieldRefusal
			if errors.As(err, &fr) {
				return &Error{Status: http.StatusForbidden, Code: "FORBIDDEN", Message: fr.Msg, Property: fr.Field}
			}
			return err
		}
	}
	admin := adminActsFor(principal(r.Context()), owner)
	if admin {
		if err := a.recordOwnerLimits(r, &in, c); err != nil {
			return err
		}
	}
	if err := a.Store.UpdateCredential(r.Context(), c, principal(r.Context()).Name); err != nil {
		return err
	}
	if admin {
		if err := a.liftOwnerLimits(r, &in, c, false); err != nil {
			return err
		}
	}
	after := a.viewCredential(r, c)
	a.audit(r, "update", "api-proxy-credential", c.ID, before, after)
	writeJSON(w, http.StatusOK, after)
	return nil
}

// limitsOf is what auth.OwnerMayChange compares of a credential.
func limitsOf(c *model.ProxyCredential) auth.CredentialLimits {
	return auth.CredentialLimits{Enabled: c.Enabled, NotBefore: c.NotBefore, NotAfter: c.NotAfter, SourceAddress: c.SourceAddress}
}

// rotateCredential is POST .../client-credentials/{id}/rotate: a new secret replaces the old one, which stops
// working at once. The owner or an administrator may rotate; only the owner can then read the new secret.
func (a *API) rotateCredential(w http.ResponseWriter, r *http.Request) error {
	_, c, err := a.ownedCredential(r)
	if err != nil {
		return err
	}
	secret := SecretPrefix + secrets.RandomToken(32)
	if err := a.Store.RotateCredentialSecret(r.Context(), c.ID, secret, principal(r.Context()).Name); err != nil {
		return err
	}
	c, err = a.Store.Credential(r.Context(), c.ID)
	if err != nil {
		return err
	}
	view := a.viewCredential(r, c)
	a.audit(r, "rotate-secret", "api-proxy-credential", c.ID, nil, map[string]any{"secret": "[rotated]"})
	writeJSON(w, http.StatusOK, view)
	return nil
}

func (a *API) deleteCredential(w http.ResponseWriter, r *http.Request) error {
	_, c, err := a.ownedCredential(r)
	if err != nil {
		return err
	}
	if err := a.Store.DeleteCredential(r.Context(), c.ID); err != nil {
		return err
	}
	a.audit(r, "delete", "api-proxy-credential", c.ID, a.viewCredential(r, c), nil)
	w.WriteHeader(http.StatusOK)
	return nil
}
