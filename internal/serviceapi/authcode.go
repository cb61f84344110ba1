package serviceapi

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// PrivX's SDK logs in with oauth.WithCredential: an authorization code grant of its built-in public client,
// driven without a browser.
//  1. GET /auth/api/v1/oauth/authorize with client_id, redirect_uri, response_type=code, state and a PKCE S256
//     challenge: a 307 whose Location carries token, a sealed login session bound to that challenge and state.
//  2. POST /auth/api/v1/login {"username","password","token"}: a user's name and password, or an API client's id
//     and secret; the answer is {"code","state"}.
//  3. POST /auth/api/v1/oauth/token grant_type=authorization_code with the code and the PKCE verifier (codeGrant).
// The code is the same sealed, one-time, PKCE-bound code as the OIDC login's; only its redirect URI differs.

const (
	// PrivXClientID is the PrivX UI's public client, which the SDK's authorization code login names.
	PrivXClientID = "privx-ui"
	// privxRedirect is the one redirect URI that client uses; nothing is ever sent to it.
	privxRedirect  = "/privx/oauth-callback"
	sealPrivXLogin = "gatehouse privx login v1:"
)

// privxLogin is the sealed session between authorize and login.
type privxLogin struct {
	Challenge string `json:"cc"`
	State     string `json:"s"`
	Expires   int64  `json:"exp"`
}

// authorize is GET /auth/api/v1/oauth/authorize for the PrivX client.
func (a *API) authorize(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	switch {
	case q.Get("client_id") != PrivXClientID:
		return badRequest("client_id", "client_id must be "+PrivXClientID+"; the CLI logs in at the token endpoint")
	case q.Get("redirect_uri") != privxRedirect:
		return badRequest("redirect_uri", "redirect_uri must be "+privxRedirect)
	case q.Get("response_type") != "code":
		return badRequest("response_type", "response_type must be code")
	case q.Get("code_challenge_method") != "S256":
		return badRequest("code_challenge_method", "code_challenge_method must be S256")
	case !validChallenge(q.Get("code_challenge")):
		return badRequest("code_challenge", "code_challenge must be the base64url SHA-256 of the code verifier")
	case q.Get("state") == "" || len(q.Get("state")) > 512:
		return badRequest("state", "state is required (at most 512 bytes)")
	}
	token, err := a.sealOIDC(sealPrivXLogin, privxLogin{Challenge: q.Get("code_challenge"), State: q.Get("state"),
		Expires: a.now().Add(oidcCodeTTL).Unix()})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/auth/api/v1/login?"+url.Values{"token": {token}}.Encode())
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusTemporaryRedirect)
	return nil
}

// validChallenge reports whether c looks like an S256 challenge: 43 base64url characters.
func validChallenge(c string) bool {
	return len(c) == 43 && strings.Trim(c, base64URLAlphabet) == ""
}

// errBadLogin is every refused credential of the login step; it says no more than the token endpoint does.
var errBadLogin = &Error{Status: http.StatusUnauthorized, Code: "UNAUTHENTICATED", Message: "invalid credentials"}

// login is POST /auth/api/v1/login: it checks the credentials against the session from authorize and answers a
// code for the token endpoint.
func (a *API) login(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Token    string `json:"token"`
		// OTP is the second factor of a user whose source asks for one (as the token endpoint's otp field).
		OTP string `json:"otp"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Username == "" || in.Password == "" {
		return badRequest("username", "username and password are required")
	}
	var s privxLogin
	if err := a.openOIDC(sealPrivXLogin, in.Token, &s); err != nil || a.now().Unix() > s.Expires {
		return badRequest("token", "token is invalid or expired; start again at /auth/api/v1/oauth/authorize")
	}
	kind, id, err := a.loginPrincipal(r, in.Username, in.Password, in.OTP)
	if err != nil {
		return err
	}
	refresh := secrets.RandomToken(32)
	expires := a.now().Add(oidcCodeTTL)
	if err := a.Store.SaveRefreshToken(r.Context(), refresh, store.RefreshToken{PrincipalKind: kind, PrincipalID: id, Expires: expires}); err != nil {
		return err
	}
	code, err := a.sealOIDC(sealCode, oidcCode{Refresh: refresh, Challenge: s.Challenge, RedirectURI: privxRedirect, Expires: expires.Unix()})
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]string{"code": code, "state": s.State})
	return nil
}

// loginPrincipal authenticates an API client by id and secret, or else a user by name and password, through the
// same failure limiter and audit as the token endpoint.
func (a *API) loginPrincipal(r *http.Request, name, secret, otp string) (kind, id string, err error) {
	c, err := a.Store.APIClient(r.Context(), name)
	switch {
	case err == nil:
		if err := a.limited(r, name); err != nil {
			return "", "", err
		}
		if !secrets.Equal(c.Secret, secret) {
			a.loginFailed(r, name, "bad api client secret (authorization code login)")
			return "", "", errBadLogin
		}
		a.auditLogin(r.Context(), r, c.Name, c.ID, "success", "api client authorization code login")
		return auth.KindAPIClient, c.ID, nil
	case !errors.Is(err, store.ErrNotExist):
		return "", "", err
	}
	kind, id, err = a.userLogin(r, name, secret, otp)
	var oe *oauthError
	if errors.As(err, &oe) {
		if oe.status == http.StatusServiceUnavailable {
			return "", "", &Error{Status: oe.status, Code: "SERVICE_UNAVAILABLE", Message: oe.description}
		}
		return "", "", errBadLogin
	}
	return kind, id, err
}
