package serviceapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
)

// An extender that targets route through (nat_target_host extender:<prefix>) gets their requests with the target
// secret injected, in clear for plain-HTTP targets; whoever holds its token or certificate decides where those go.
// So putting an agent behind a prefix that a target routes through (creating an extender with it, moving one onto
// it, issuing a new token or certificate for one on it) needs every permission, as re-pointing the target itself
// needs its secret (targetdest.go). Other extender changes stay api-targets-manage's.

// targetThrough names a target routing through the extender prefix, or "" when none does.
func (a *API) targetThrough(ctx context.Context, prefix string) (string, error) {
	targets, err := a.Store.AllTargets(ctx)
	if err != nil {
		return "", err
	}
	for _, t := range targets {
		for _, e := range t.AuthorizedEndpoints {
			if p, _, ok, err := policy.ParseExtenderNAT(e.NATTargetHost); ok && err == nil && strings.EqualFold(p, prefix) {
				return t.Name, nil
			}
		}
	}
	return "", nil
}

// mustHoldToServePrefix refuses, naming property, an operation that puts a (new) agent behind prefix while a target
// routes through it, unless the caller holds every permission.
func (a *API) mustHoldToServePrefix(r *http.Request, prefix, property string) error {
	if auth.CheckHoldsAll(principal(r.Context()).Permissions) == nil {
		return nil
	}
	target, err := a.targetThrough(r.Context(), prefix)
	if err != nil || target == "" {
		return err
	}
	err = a.mustHold(r, property, auth.AllPermissions)
	var e *Error
	if errors.As(err, &e) {
		e.Message = "target " + target + " routes through extender prefix " + prefix + ", so its secret goes to whoever holds this extender's credential: this needs every permission (a superuser); missing: " +
			strings.Join(missingOf(e.Details), ", ")
	}
	return err
}
