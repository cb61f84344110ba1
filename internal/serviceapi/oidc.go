package serviceapi

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/directory"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// OIDC login, in two legs. Gatehouse is the OAuth2 client of the provider: it alone holds the client secret and
// redeems the provider's code at GET /auth/api/v1/oidc/callback, the one redirect URI to register there. A
// client of Gatehouse (the CLI on a loopback port, a web page on this origin) starts the login with its own
// state and PKCE challenge and gets back a short-lived Gatehouse code, which it redeems with its verifier at the
// token endpoint (grant_type=authorization_code, client gatehouse-cli). Without a client redirect the callback
// answers the tokens itself.

// OIDCCallbackPath is the redirect URI to register at the provider, on the API's public https origin.
const OIDCCallbackPath = "/auth/api/v1/oidc/callback"

const (
	// oidcLoginTTL bounds the time from starting a login to the provider's callback.
	oidcLoginTTL = 10 * time.Minute
	// oidcCodeTTL bounds the time from the callback to redeeming the Gatehouse code.
	oidcCodeTTL = 2 * time.Minute
	// oidcCookiePrefix names the cookie holding one login's sealed state; __Host- makes browsers keep it to this
	// origin, over https, for path /.
	oidcCookiePrefix = "__Host-gatehouse-oidc-"
)

// OIDCLogin is what the OIDC endpoints need of the user sources. *directory.Directory implements it; an API
// whose Directory does not answers 503.
type OIDCLogin interface {
	OIDCButtons(ctx context.Context) ([]directory.OIDCButton, error)
	OIDCAuthCodeURL(ctx context.Context, sourceID string, p directory.OIDCParams) (string, error)
	OIDCLogin(ctx context.Context, sourceID, code string, p directory.OIDCParams) (*model.User, error)
}

var _ OIDCLogin = (*directory.Directory)(nil)

var errOIDCUnavailable = &Error{Status: http.StatusServiceUnavailable, Code: "SERVICE_UNAVAILABLE", Message: "OIDC login is not available on this server"}

func (a *API) oidcLogin() (OIDCLogin, error) {
	if l, ok := a.Directory.(OIDCLogin); ok {
		return l, nil
	}
	return nil, errOIDCUnavailable
}

// pendingLogin is one login between its start and the provider's callback, sealed in a cookie of the browser that
// started it, so a callback carried to another browser (login CSRF) finds nothing to finish.
type pendingLogin struct {
	Source          string `json:"src"`
	State           string `json:"st"`
	Nonce           string `json:"n"`
	Verifier        string `json:"v"`
	RedirectURL     string `json:"r"`
	ClientRedirect  string `json:"cr,omitempty"`
	ClientState     string `json:"cs,omitempty"`
	ClientChallenge string `json:"cc,omitempty"`
	Expires         int64  `json:"exp"`
}

// oidcCode is the Gatehouse authorization code a client redeems: a one-time refresh token (consumed on use),
// bound to the client's PKCE challenge and redirect URI, sealed so it says nothing to whoever sees the URL.
type oidcCode struct {
	Refresh     string `json:"rt"`
	Challenge   string `json:"cc"`
	RedirectURI string `json:"r"`
	Expires     int64  `json:"exp"`
}

// Sealing purposes keep a login cookie from being accepted as a code and the other way round.
const (
	sealLogin = "gatehouse oidc login v1:"
	sealCode  = "gatehouse oidc code v1:"
)

// oidcAEAD is AES-256-GCM under a key derived from the master key (through the store's keyed index), so every
// node of a cluster opens what another sealed, and no one without the master key can forge either.
func (a *API) oidcAEAD() (cipher.AEAD, error) {
	key, err := hex.DecodeString(a.Store.SecretIndex("oidc-login-seal", "aes-256-gcm"))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("derive oidc sealing key: %v", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("derive oidc sealing key: %w", err)
	}
	return cipher.NewGCM(block)
}

func (a *API) sealOIDC(purpose string, v any) (string, error) {
	aead, err := a.oidcAEAD()
	if err != nil {
		return "", err
	}
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, []byte(purpose))), nil
}

func (a *API) openOIDC(purpose, sealed string, v any) error {
	aead, err := a.oidcAEAD()
	if err != nil {
		return err
	}
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(raw) < aead.NonceSize() {
		return errors.New("malformed sealed value")
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(purpose))
	if err != nil {
		return errors.New("sealed value does not open")
	}
	return json.Unmarshal(plain, v)
}

// oidcSources is GET /auth/api/v1/oidc/sources: the enabled OIDC sources a login page offers, without
// authentication (it is what a user sees before logging in: ids, names and button titles).
func (a *API) oidcSources(w http.ResponseWriter, r *http.Request) error {
	l, err := a.oidcLogin()
	if err != nil {
		return err
	}
	buttons, err := l.OIDCButtons(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(buttons, len(buttons)))
	return nil
}

// clientRedirect accepts the places a Gatehouse code may be sent: exactly a registered callback (see
// auth.RedirectPolicy). Anything else could hand the code to another site.
func (a *API) clientRedirect(raw string) error {
	if err := a.OIDCRedirect.Check(raw); err != nil {
		return badRequest("redirect_uri", err.Error())
	}
	return nil
}

// oidcStart is GET /auth/api/v1/oidc/{source_id}/login: it sends the browser to the source's provider with a fresh
// state, nonce and PKCE S256 challenge. A client that wants a Gatehouse code back passes redirect_uri, state and
// code_challenge (method S256); without them the callback answers the tokens.
func (a *API) oidcStart(w http.ResponseWriter, r *http.Request) error {
	l, err := a.oidcLogin()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	p := pendingLogin{Source: r.PathValue("source_id"), Expires: a.now().Add(oidcLoginTTL).Unix()}
	if p.ClientRedirect = q.Get("redirect_uri"); p.ClientRedirect != "" {
		if err := a.clientRedirect(p.ClientRedirect); err != nil {
			return err
		}
		p.ClientState, p.ClientChallenge = q.Get("state"), q.Get("code_challenge")
		if p.ClientState == "" || len(p.ClientState) > 512 {
			return badRequest("state", "state is required with redirect_uri, at most 512 bytes")
		}
		if q.Get("code_challenge_method") != "S256" {
			return badRequest("code_challenge_method", "code_challenge_method must be S256")
		}
		if n := len(p.ClientChallenge); n != 43 || strings.Trim(p.ClientChallenge, base64URLAlphabet) != "" {
			return badRequest("code_challenge", "code_challenge must be the base64url SHA-256 of the code verifier")
		}
	}
	p.State, p.Nonce, p.Verifier = secrets.RandomToken(32), secrets.RandomToken(32), oauth2.GenerateVerifier()
	p.RedirectURL = "https://" + r.Host + OIDCCallbackPath
	target, err := l.OIDCAuthCodeURL(r.Context(), p.Source, directory.OIDCParams{
		State: p.State, Nonce: p.Nonce, Verifier: p.Verifier, RedirectURL: p.RedirectURL})
	switch {
	case errors.Is(err, directory.ErrInvalidCredentials):
		return &Error{Status: http.StatusNotFound, Code: "NOT_FOUND", Message: "no enabled OIDC source with this id", Err: err}
	case errors.Is(err, directory.ErrUnavailable):
		return &Error{Status: http.StatusBadGateway, Code: "PROVIDER_UNAVAILABLE", Message: "the identity provider cannot be reached", Err: err}
	case err != nil:
		return err
	}
	sealed, err := a.sealOIDC(sealLogin, p)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookieName(p.State), Value: sealed, Path: "/", MaxAge: int(oidcLoginTTL.Seconds()),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	redirect(w, target)
	return nil
}

// redirect answers 302 to target without a body (http.Redirect adds an HTML one) and keeps it out of caches.
func redirect(w http.ResponseWriter, target string) {
	w.Header().Set("Location", target)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

const base64URLAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// oidcCookieName gives each login its own cookie, so two logins started in one browser do not spoil each other.
func oidcCookieName(state string) string {
	sum := sha256.Sum256([]byte(state))
	return oidcCookiePrefix + hex.EncodeToString(sum[:8])
}

var errOIDCRefused = &Error{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Message: "OIDC login refused"}

// oidcCallback is GET /auth/api/v1/oidc/callback, where the provider sends the browser back. It checks the state
// against the sealed cookie of the browser that started the login, has the directory redeem the code and verify
// the ID token, and then either redirects to the client with a Gatehouse code or answers the tokens.
func (a *API) oidcCallback(w http.ResponseWriter, r *http.Request) error {
	l, err := a.oidcLogin()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		return badRequest("state", "state is missing")
	}
	name := oidcCookieName(state)
	cookie, err := r.Cookie(name)
	if err != nil {
		return a.oidcFailed(r, "", &Error{Status: http.StatusBadRequest, Code: "BAD_REQUEST", Property: "state",
			Message: "no login is pending for this state in this browser; start the login again", Err: err})
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	var p pendingLogin
	if err := a.openOIDC(sealLogin, cookie.Value, &p); err != nil || !secrets.Equal(p.State, state) || a.now().Unix() > p.Expires {
		return a.oidcFailed(r, p.Source, &Error{Status: http.StatusBadRequest, Code: "BAD_REQUEST", Property: "state",
			Message: "the login state is invalid or expired; start the login again", Err: err})
	}
	if e := q.Get("error"); e != "" {
		// What the provider (or whoever forged this URL) says stays in the audit trail, not in the answer.
		return a.oidcFailed(r, p.Source, &Error{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED",
			Message: "the identity provider refused the login", Err: fmt.Errorf("provider error %q: %q", e, q.Get("error_description"))})
	}
	code := q.Get("code")
	if code == "" {
		return a.oidcFailed(r, p.Source, badRequest("code", "code is missing"))
	}
	u, err := l.OIDCLogin(r.Context(), p.Source, code, directory.OIDCParams{
		State: p.State, Nonce: p.Nonce, Verifier: p.Verifier, RedirectURL: p.RedirectURL})
	switch {
	case errors.Is(err, directory.ErrInvalidCredentials):
		return a.oidcFailed(r, p.Source, &Error{Status: errOIDCRefused.Status, Code: errOIDCRefused.Code, Message: errOIDCRefused.Message, Err: err})
	case errors.Is(err, directory.ErrUnavailable):
		a.auditLogin(r.Context(), r, "oidc:"+p.Source, "", "failure", "identity provider unavailable")
		return &Error{Status: http.StatusBadGateway, Code: "PROVIDER_UNAVAILABLE", Message: "the identity provider cannot be reached", Err: err}
	case err != nil:
		return err
	}
	a.auditLogin(r.Context(), r, u.Username, u.ID, "success", "oidc source "+p.Source)
	// The directory has already run the change hook, so the proxy's policy knows the user's roles.
	if p.ClientRedirect == "" {
		return a.issueTokens(w, r, auth.KindUser, u.ID)
	}
	refresh := secrets.RandomToken(32)
	expires := a.now().Add(oidcCodeTTL)
	if err := a.Store.SaveRefreshToken(r.Context(), refresh, store.RefreshToken{PrincipalKind: auth.KindUser, PrincipalID: u.ID, Expires: expires}); err != nil {
		return err
	}
	sealed, err := a.sealOIDC(sealCode, oidcCode{Refresh: refresh, Challenge: p.ClientChallenge, RedirectURI: p.ClientRedirect, Expires: expires.Unix()})
	if err != nil {
		return err
	}
	sep := "?"
	if strings.Contains(p.ClientRedirect, "?") {
		sep = "&"
	}
	redirect(w, p.ClientRedirect+sep+url.Values{"code": {sealed}, "state": {p.ClientState}}.Encode())
	return nil
}

// oidcFailed audits a refused OIDC login and returns err. Refusals are not counted by the failure limiter: state
// and codes are random and sealed, so there is nothing to guess, and counting would let anyone lock a shared
// address out of logging in.
func (a *API) oidcFailed(r *http.Request, source string, err *Error) error {
	reason := err.Message
	if err.Err != nil {
		reason += ": " + err.Err.Error()
	}
	a.auditLogin(r.Context(), r, "oidc:"+source, "", "failure", reason)
	return err
}

// issueTokens answers a new access and refresh token for the principal, as the token endpoint does.
func (a *API) issueTokens(w http.ResponseWriter, r *http.Request, kind, id string) error {
	access, ttl, err := a.Tokens.Issue(kind, id)
	if err != nil {
		return err
	}
	refresh := secrets.RandomToken(32)
	if err := a.Store.SaveRefreshToken(r.Context(), refresh, store.RefreshToken{
		PrincipalKind: kind, PrincipalID: id, Expires: a.now().Add(a.refreshTTL()),
	}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, tokenResponse{AccessToken: access, TokenType: "bearer", ExpiresIn: int(ttl.Seconds()), RefreshToken: refresh})
	return nil
}

// codeGrant is the token endpoint's authorization_code grant: a Gatehouse code from the OIDC callback, redeemed
// once by the public client gatehouse-cli with the PKCE verifier of the challenge it started the login with.
func (a *API) codeGrant(r *http.Request) (kind, id string, err error) {
	f := r.PostForm
	clientID := f.Get("client_id")
	if basicID, _, ok := r.BasicAuth(); ok {
		clientID = basicID
	}
	if clientID != CLIClientID && clientID != PrivXClientID {
		return "", "", &oauthError{http.StatusUnauthorized, "invalid_client", "unknown client; codes are redeemed with client_id=" + CLIClientID}
	}
	code, verifier, redirect := f.Get("code"), f.Get("code_verifier"), f.Get("redirect_uri")
	if code == "" || verifier == "" || redirect == "" {
		return "", "", &oauthError{http.StatusBadRequest, "invalid_request", "code, code_verifier and redirect_uri are required"}
	}
	invalid := func(reason string) error {
		a.auditLogin(r.Context(), r, "oidc-code", "", "failure", reason)
		return &oauthError{http.StatusBadRequest, "invalid_grant", "the code is invalid, expired or already used, or the verifier does not match"}
	}
	var c oidcCode
	if err := a.openOIDC(sealCode, code, &c); err != nil {
		return "", "", invalid("code does not open")
	}
	if a.now().Unix() > c.Expires || c.RedirectURI != redirect {
		return "", "", invalid("code expired or redirect_uri differs")
	}
	// Each client redeems only its own codes: the PrivX client's carry its fixed redirect URI (authcode.go).
	if (clientID == PrivXClientID) != (c.RedirectURI == privxRedirect) {
		return "", "", invalid("code was issued to another client")
	}
	if !secrets.Equal(oauth2.S256ChallengeFromVerifier(verifier), c.Challenge) {
		return "", "", invalid("code_verifier does not match the challenge")
	}
	rt, err := a.Store.ConsumeRefreshToken(r.Context(), c.Refresh)
	if errors.Is(err, store.ErrNotExist) {
		return "", "", invalid("code already used")
	}
	if err != nil {
		return "", "", err
	}
	if _, err := a.loadPrincipal(r.Context(), rt.PrincipalKind, rt.PrincipalID); err != nil {
		if errors.Is(err, errUnauthenticated) {
			return "", "", &oauthError{http.StatusBadRequest, "invalid_grant", "the user is disabled or gone"}
		}
		return "", "", err
	}
	return rt.PrincipalKind, rt.PrincipalID, nil
}
