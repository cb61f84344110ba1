package serviceapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/httpauth"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Principal is the authenticated caller of a request, with the permissions its roles give it right now.
type Principal struct {
	Kind        string // auth.KindUser or auth.KindAPIClient
	ID          string
	Name        string
	Roles       []*model.Role
	Permissions auth.PermissionSet

	tokensAfter time.Time
}

// SessionCurrent reports whether a management session (an access or refresh token, a configuration-API login)
// started at started is still valid: not opened before the principal's last password change, disabling or
// role loss (an API client's: role loss).
func (p *Principal) SessionCurrent(started time.Time) bool {
	return p.tokensAfter.IsZero() || !started.Before(p.tokensAfter)
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// principal returns the caller; guard guarantees one on every guarded route.
func principal(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// authenticate verifies the bearer token and loads the principal fresh from the store, so a disabled or deleted
// principal, or a changed role, takes effect on the very next request.
func (a *API) authenticate(r *http.Request) (*Principal, error) {
	token, ok := httpauth.Credentials(r.Header.Get("Authorization"), "Bearer")
	if !ok {
		return nil, errUnauthenticated
	}
	c, err := a.Tokens.Verify(token)
	if err != nil {
		return nil, errUnauthenticated
	}
	p, err := a.loadPrincipal(r.Context(), c.Kind, c.Subject)
	if err != nil {
		return nil, err
	}
	if !p.SessionCurrent(time.UnixMicro(c.IssuedMicro)) {
		return nil, errUnauthenticated // issued before the user was disabled or changed password
	}
	return p, nil
}

// PrincipalFromToken resolves a bearer token to a principal; the configuration API accepts service API tokens.
func (a *API) PrincipalFromToken(r *http.Request) (*Principal, error) { return a.authenticate(r) }

// LoadPrincipal loads a principal by kind and id with its current permissions.
func (a *API) LoadPrincipal(ctx context.Context, kind, id string) (*Principal, error) {
	return a.loadPrincipal(ctx, kind, id)
}

func (a *API) loadPrincipal(ctx context.Context, kind, id string) (*Principal, error) {
	p := &Principal{Kind: kind, ID: id}
	var err error
	switch kind {
	case auth.KindUser:
		var u *model.User
		u, err = a.Store.User(ctx, id)
		if err == nil && !u.Enabled {
			return nil, errUnauthenticated
		}
		if err == nil {
			p.Name, p.tokensAfter = u.Username, u.TokensAfter
			p.Roles, err = a.Store.UserRoles(ctx, id)
		}
	case auth.KindAPIClient:
		var c *model.APIClient
		c, err = a.Store.APIClient(ctx, id)
		if err == nil {
			p.Name, p.tokensAfter = c.Name, c.TokensAfter
			p.Roles, err = a.Store.APIClientRoles(ctx, id)
		}
	default:
		return nil, errUnauthenticated
	}
	if errors.Is(err, store.ErrNotExist) {
		return nil, errUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	lists := make([][]string, 0, len(p.Roles))
	for _, r := range p.Roles {
		lists = append(lists, r.Permissions)
	}
	p.Permissions = auth.NewPermissionSet(lists...)
	return p, nil
}

// clientIP is the request's source address without port, for rate limiting and audit.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
