package serviceapi

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Owner limits that outlive a credential. An owner may only narrow what an administrator set on their credential
// (auth.OwnerMayChange), but that alone would let them delete the credential and create an open one. So when a
// principal holding api-proxy-credentials-manage leaves another user's credential restricted (disabled, limited
// to source addresses, or with a validity window it chose), the limits are recorded for that user and target, and
// a credential the user creates for the target themselves starts from them and may only be narrower. An
// administrator lifts them by creating an open credential for the user and target, or by updating one with
// enabled true and no source_address.

// adminActsFor reports whether p writes owner's credentials as an administrator rather than as the owner.
func adminActsFor(p *Principal, owner *model.User) bool {
	return p.Permissions.Has(auth.APIProxyCredentialsManage) && (p.Kind != auth.KindUser || p.ID != owner.ID)
}

// recordOwnerLimits keeps what an administrator's write leaves on credential c (stored or about to be) as the
// limits of its owner's credentials for its target. It runs before the credential is stored when it records, so
// a failure leaves the stricter state.
func (a *API) recordOwnerLimits(r *http.Request, in *credentialRequest, c *model.ProxyCredential) error {
	if !(!c.Enabled || len(c.SourceAddress) > 0 || in.notBefore != nil || in.notAfter != nil) {
		return nil
	}
	l := store.OwnerLimits{Enabled: c.Enabled, NotBefore: c.NotBefore, NotAfter: c.NotAfter, SourceAddress: c.SourceAddress}
	return a.Store.SetCredentialOwnerLimits(r.Context(), c.UserID, c.TargetID, l, principal(r.Context()).Name)
}

// liftOwnerLimits lifts the recorded limits after an administrator's write that leaves c open: a create, or an
// update that said enabled or source_address. It runs after the credential is stored.
func (a *API) liftOwnerLimits(r *http.Request, in *credentialRequest, c *model.ProxyCredential, creating bool) error {
	open := c.Enabled && len(c.SourceAddress) == 0 && in.notBefore == nil && in.notAfter == nil
	if !open || !(creating || in.Enabled != nil || in.SourceAddress != nil) {
		return nil
	}
	return a.Store.DeleteCredentialOwnerLimits(r.Context(), c.UserID, c.TargetID)
}

// ownerLimits returns the recorded limits that bind the owner creating c, and whether there are any.
func (a *API) ownerLimits(r *http.Request, c *model.ProxyCredential) (auth.CredentialLimits, bool, error) {
	l, err := a.Store.CredentialOwnerLimits(r.Context(), c.UserID, c.TargetID)
	if errors.Is(err, store.ErrNotExist) {
		return auth.CredentialLimits{}, false, nil
	}
	if err != nil {
		return auth.CredentialLimits{}, false, err
	}
	return auth.CredentialLimits{Enabled: l.Enabled, NotBefore: l.NotBefore, NotAfter: l.NotAfter, SourceAddress: l.SourceAddress}, true, nil
}

// startFromLimits makes the owner's new credential c, still holding the defaults, start from the limits: what the
// request leaves out is taken from them.
func startFromLimits(in *credentialRequest, c *model.ProxyCredential, l auth.CredentialLimits) {
	c.Enabled = c.Enabled && l.Enabled
	if in.notBefore == nil && c.NotBefore.Before(l.NotBefore) {
		c.NotBefore = l.NotBefore
	}
	if in.notAfter == nil && c.NotAfter.After(l.NotAfter) {
		c.NotAfter = l.NotAfter
	}
	if in.SourceAddress == nil {
		c.SourceAddress = append([]string{}, l.SourceAddress...)
	}
}

const limitsWhy = "an administrator restricted your credentials for this target: "

// checkLimitsCurrent refuses, before the window is checked for being empty, an owner's new credential whose
// limits leave it no validity at all, saying why.
func checkLimitsCurrent(c *model.ProxyCredential, l auth.CredentialLimits) error {
	if !l.NotAfter.After(c.NotBefore) {
		return &Error{Status: http.StatusForbidden, Code: "FORBIDDEN", Property: "not_after",
			Message: limitsWhy + "their validity ended at " + l.NotAfter.UTC().Format(time.RFC3339) + "; ask an administrator"}
	}
	return nil
}

// checkWithinLimits refuses an owner's new credential c that asks for more than the limits, naming the field.
func checkWithinLimits(c *model.ProxyCredential, l auth.CredentialLimits) error {
	const why = limitsWhy
	if err := checkLimitsCurrent(c, l); err != nil {
		return err
	}
	if err := auth.OwnerMayChange(l, limitsOf(c)); err != nil {
		var fr *auth.FieldRefusal
		if errors.As(err, &fr) {
			return &Error{Status: http.StatusForbidden, Code: "FORBIDDEN", Message: why + fr.Msg, Property: fr.Field}
		}
		return err
	}
	return nil
}

// limitsWarning says which of the limits a new credential was given.
func limitsWarning(t *model.Target, l auth.CredentialLimits) string {
	var what []string
	if !l.Enabled {
		what = append(what, "disabled")
	}
	if len(l.SourceAddress) > 0 {
		what = append(what, "source_address "+strings.Join(l.SourceAddress, ", "))
	}
	what = append(what, "valid from "+l.NotBefore.UTC().Format(time.RFC3339)+" until "+l.NotAfter.UTC().Format(time.RFC3339)+" at most")
	return "an administrator's limits on your credentials for target " + t.Name + " apply to this one: " + strings.Join(what, "; ")
}
