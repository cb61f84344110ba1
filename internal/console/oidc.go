package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// OIDC sign-in reuses the API's web login: the console is one more client of /auth/api/v1/oidc/{source}/login with
// its own state and PKCE verifier, and redeems the Gatehouse code it gets back at the token endpoint, like the CLI.

// OIDCCallbackPath is where the API's OIDC login sends the console its code; the server registers it as an exact
// callback (auth.RedirectPolicy).
const OIDCCallbackPath = "/login/oidc/callback"

// oidcCookie holds one pending login's state and verifier. It is SameSite=Lax, not Strict: the browser comes back
// through a redirect chain that started at the provider, another site, and a Strict cookie would not be sent.
const oidcCookie = "gatehouse_console_oidc"

type oidcButton struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	ButtonTitle string `json:"button_title"`
}

// oidcButtons lists the enabled OIDC sources for the sign-in page; none when the API has none or fails.
func (c *Console) oidcButtons(r *http.Request) []oidcButton {
	req, err := http.NewRequestWithContext(r.Context(), "GET", "/auth/api/v1/oidc/sources", nil)
	if err != nil {
		return nil
	}
	req.RemoteAddr, req.TLS, req.Host = r.RemoteAddr, r.TLS, r.Host
	rec := &recorder{header: http.Header{}}
	c.Backend.ServeHTTP(rec, req)
	var l list[oidcButton]
	if rec.status != http.StatusOK || json.Unmarshal(rec.body.Bytes(), &l) != nil {
		return nil
	}
	return l.Items
}

// oidcStart sends the browser to the API's OIDC login for a source, with a fresh state and PKCE challenge.
func (c *Console) oidcStart(w http.ResponseWriter, r *http.Request) {
	state, verifier := secrets.RandomToken(16), oauth2.GenerateVerifier()
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: state + "." + verifier, Path: "/login/oidc", MaxAge: 600,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	q := url.Values{"redirect_uri": {OIDCCallbackPath}, "state": {state}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)},
		"code_challenge_method": {"S256"}}
	http.Redirect(w, r, "/auth/api/v1/oidc/"+url.PathEscape(r.PathValue("source"))+"/login?"+q.Encode(), http.StatusSeeOther)
}

// oidcCallback redeems the Gatehouse code at the token endpoint and opens a console session for the user it names.
func (c *Console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(oidcCookie)
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: "", Path: "/login/oidc", MaxAge: -1, HttpOnly: true, Secure: true,
		SameSite: http.SameSiteLaxMode})
	var state, verifier string
	if err == nil {
		state, verifier, _ = strings.Cut(ck.Value, ".")
	}
	if state == "" || verifier == "" || !secrets.Equal(state, r.URL.Query().Get("state")) {
		c.renderLogin(w, r, http.StatusBadRequest, "", "", "The single sign-on answer does not belong to a sign-in started here; start again.")
		return
	}
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {"gatehouse-cli"}, "code": {r.URL.Query().Get("code")},
		"code_verifier": {verifier}, "redirect_uri": {OIDCCallbackPath}}
	req, err := http.NewRequestWithContext(r.Context(), "POST", "/auth/api/v1/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		c.fail(w, r, nil, err)
		return
	}
	req.RemoteAddr, req.TLS, req.Host = r.RemoteAddr, r.TLS, r.Host
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := &recorder{header: http.Header{}}
	c.Backend.ServeHTTP(rec, req)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if rec.status != http.StatusOK || json.Unmarshal(rec.body.Bytes(), &tok) != nil {
		c.renderLogin(w, r, http.StatusUnauthorized, "", "", "Single sign-on did not complete; start again.")
		return
	}
	claims, err := c.Service.Tokens.Verify(tok.AccessToken)
	if err != nil || claims.Kind != auth.KindUser {
		c.renderLogin(w, r, http.StatusUnauthorized, "", "", "Single sign-on did not complete; start again.")
		return
	}
	p, err := c.Service.LoadPrincipal(r.Context(), claims.Kind, claims.Subject)
	if err != nil {
		c.renderLogin(w, r, http.StatusUnauthorized, "", "", "Your account cannot sign in.")
		return
	}
	id := secrets.RandomToken(32)
	if err := c.Store.CreateScopedSession(r.Context(), c.now(), store.IndexConsoleSession, id, store.ConfigSession{
		PrincipalKind: auth.KindUser, PrincipalID: p.ID, Name: p.Name, Method: sessionMethod,
	}); err != nil {
		c.fail(w, r, nil, err)
		return
	}
	c.setCookie(w, sessionCookie, id, 0)
	http.Redirect(w, r, "/access", http.StatusSeeOther)
}
