package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/serviceapi"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Cookie names. The session cookie is the console's own, so a configuration API login never signs in the console
// and the other way round.
const (
	sessionCookie = "gatehouse_console"
	// loginCookie carries the anti-forgery value of the sign-in form, which has no session to bind to yet.
	loginCookie = "gatehouse_console_login"
	// sessionMethod marks console sessions in the store of login sessions.
	sessionMethod = "console"
)

// session is a signed-in browser: who it is, with the permissions its roles give it right now.
type session struct {
	id        string
	principal *serviceapi.Principal
	csrf      string
	// token is a short-lived access token for the in-process API calls of this one request.
	token string
}

// page serves h for a signed-in user: it resolves the session (idle expiry, disabled users, revocation on password
// change) and refuses cross-site and unsigned state changes. Permissions are not checked here: each page's API
// calls are, by the API, so a page can never allow what the API would refuse.
func (c *Console) page(h func(w http.ResponseWriter, r *http.Request, s *session) error) http.Handler {
	return c.secured(func(w http.ResponseWriter, r *http.Request) {
		s, err := c.resolve(r)
		if err != nil {
			c.fail(w, r, nil, err)
			return
		}
		if s == nil {
			if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, "/events") && !strings.HasSuffix(r.URL.Path, "/stream") {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.endSession(w, r)
			c.fail(w, r, nil, &httpError{Status: http.StatusUnauthorized, Message: "Your session has ended; sign in again."})
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := c.checkForgery(r, s.csrf); err != nil {
				c.fail(w, r, s, err)
				return
			}
		}
		if err := h(w, r, s); err != nil {
			c.fail(w, r, s, err)
		}
	})
}

// resolve returns the request's session, or nil when it has none that is still valid.
func (c *Console) resolve(r *http.Request) (*session, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil, nil
	}
	cs, _, err := c.Store.TouchScopedSession(r.Context(), c.now(), store.IndexConsoleSession, ck.Value, c.idle())
	if errors.Is(err, store.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if cs.Method != sessionMethod || cs.PrincipalKind != auth.KindUser {
		return nil, nil
	}
	p, err := c.Service.LoadPrincipal(r.Context(), cs.PrincipalKind, cs.PrincipalID)
	if err == nil && !p.SessionCurrent(cs.Created) {
		err = errRevoked
	}
	if err != nil {
		// A disabled, deleted or re-passworded user's session ends at its next request.
		if derr := c.Store.DeleteScopedSession(r.Context(), store.IndexConsoleSession, ck.Value); derr != nil {
			c.log().Error("deleting an ended console session failed", "err", derr)
		}
		return nil, nil
	}
	tok, _, err := c.Service.Tokens.Issue(p.Kind, p.ID)
	if err != nil {
		return nil, err
	}
	return &session{id: ck.Value, principal: p, csrf: c.csrfToken("session:" + ck.Value), token: tok}, nil
}

var errRevoked = errors.New("session revoked")

// csrfToken binds an anti-forgery token to a secret the browser holds in an HttpOnly cookie, so a page on another
// origin can neither read nor compute it.
func (c *Console) csrfToken(bound string) string {
	m := hmac.New(sha256.New, c.CSRFKey)
	m.Write([]byte("console-csrf\x00" + bound))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkForgery refuses a state change that another site could have caused: a cross-site Origin or fetch, or a
// missing or wrong form token.
func (c *Console) checkForgery(r *http.Request, want string) error {
	forged := &httpError{Status: http.StatusForbidden, Message: "This form was not sent from the console (cross-site request refused). Reload the page and try again."}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return forged
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return forged
		}
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		return &httpError{Status: http.StatusBadRequest, Message: "malformed form"}
	}
	if !secrets.Equal(r.PostForm.Get("csrf"), want) || want == "" {
		return forged
	}
	return nil
}

func (c *Console) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true, Secure: true,
		SameSite: http.SameSiteStrictMode})
}

func (c *Console) endSession(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(sessionCookie); err == nil && ck.Value != "" {
		if err := c.Store.DeleteScopedSession(r.Context(), store.IndexConsoleSession, ck.Value); err != nil {
			c.log().Error("deleting a console session failed", "err", err)
		}
	}
	c.setCookie(w, sessionCookie, "", -1)
}

// safeNext keeps a post-login redirect on this console: a path, never another origin.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/access"
	}
	return next
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	if s, err := c.resolve(r); err == nil && s != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	c.renderLogin(w, r, http.StatusOK, r.URL.Query().Get("next"), "", "")
}

func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, status int, next, username, msg string) {
	nonce := secrets.RandomToken(16)
	c.setCookie(w, loginCookie, nonce, 600)
	v := &view{Title: "Sign in", Error: msg, CSRF: c.csrfToken("login:" + nonce),
		Data: map[string]any{"Next": next, "Username": username, "OIDC": c.oidcButtons(r)}}
	c.render(w, r, nil, status, "login", v)
}

// login is the sign-in form: the same password check (local or directory), failure limiter and audit as the
// APIs' logins.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	nonce := ""
	if ck, err := r.Cookie(loginCookie); err == nil {
		nonce = ck.Value
	}
	want := ""
	if nonce != "" {
		want = c.csrfToken("login:" + nonce)
	}
	if err := c.checkForgery(r, want); err != nil {
		c.fail(w, r, nil, err)
		return
	}
	username, password, next := strings.TrimSpace(r.PostForm.Get("username")), r.PostForm.Get("password"), r.PostForm.Get("next")
	if username == "" || password == "" {
		c.renderLogin(w, r, http.StatusBadRequest, next, username, "Enter your username and password.")
		return
	}
	// The configuration API's X.509 setting may refuse password logins to all but the fallback admin.
	if allowed := c.Service.PasswordLoginAllowed; allowed != nil {
		ok, err := allowed(r.Context(), username)
		if err != nil {
			c.fail(w, r, nil, err)
			return
		}
		if !ok {
			c.renderLogin(w, r, http.StatusForbidden, next, username, "Password sign-in is disabled for this account; use a client certificate with the configuration API.")
			return
		}
	}
	u, err := c.Service.CheckUserPassword(r, username, password, sessionMethod)
	if err == nil {
		// The same second factor as the APIs' logins: a TOTP code (or RADIUS) when the user's source asks for one.
		err = c.Service.SecondFactor(r, u, r.PostForm.Get("otp"), sessionMethod)
	}
	if wait, limited := serviceapi.LoginRateLimited(err); limited {
		w.Header().Set("Retry-After", strings.TrimSuffix(wait.Round(1e9).String(), "s"))
		c.renderLogin(w, r, http.StatusTooManyRequests, next, username, "Too many failed attempts; wait "+wait.Round(1e9).String()+" and try again.")
		return
	}
	switch {
	case errors.Is(err, serviceapi.ErrLoginFailed):
		c.renderLogin(w, r, http.StatusUnauthorized, next, username, "Wrong username or password.")
		return
	case errors.Is(err, serviceapi.ErrMFARequired):
		c.renderLogin(w, r, http.StatusUnauthorized, next, username, "Enter the code from your authenticator app, with your password.")
		return
	case errors.Is(err, serviceapi.ErrMFAEnrollmentRequired):
		c.renderLogin(w, r, http.StatusUnauthorized, next, username, "Enrol a TOTP authenticator first (gatehouse login, or POST /auth/api/v1/mfa/totp/enrol), then sign in with its code.")
		return
	case errors.Is(err, serviceapi.ErrMFAUnavailable):
		c.renderLogin(w, r, http.StatusServiceUnavailable, next, username, "The second-factor server cannot be reached; try again later.")
		return
	case errors.Is(err, serviceapi.ErrDirectoryUnavailable):
		c.renderLogin(w, r, http.StatusServiceUnavailable, next, username, "Your directory cannot be reached; try again later.")
		return
	case err != nil:
		c.fail(w, r, nil, err)
		return
	}
	id := secrets.RandomToken(32)
	if err := c.Store.CreateScopedSession(r.Context(), c.now(), store.IndexConsoleSession, id, store.ConfigSession{
		PrincipalKind: auth.KindUser, PrincipalID: u.ID, Name: u.Username, Method: sessionMethod,
	}); err != nil {
		c.fail(w, r, nil, err)
		return
	}
	c.setCookie(w, loginCookie, "", -1)
	c.setCookie(w, sessionCookie, id, 0)
	http.Redirect(w, r, safeNext(next), http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) error {
	c.endSession(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}
