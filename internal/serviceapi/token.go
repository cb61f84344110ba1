package serviceapi

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/directory"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// CLIClientID is the built-in public OAuth2 client that users log in through (the CLI and scripts); it has no
// secret.
const CLIClientID = "gatehouse-cli"

// oauthError is an RFC 6749 section 5.2 error.
type oauthError struct {
	status      int
	code        string
	description string
}

func (e *oauthError) Error() string { return e.code + ": " + e.description }

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// token is POST /auth/api/v1/oauth/token. Errors use RFC 6749's shape, not the service API's.
func (a *API) token(w http.ResponseWriter, r *http.Request) error {
	kind, id, err := a.grant(r)
	if err != nil {
		var oe *oauthError
		var rl *rateLimited
		switch {
		case errors.As(err, &rl):
			return err
		case !errors.As(err, &oe):
			a.log().Error("token endpoint failed", "err", err)
			oe = &oauthError{http.StatusInternalServerError, "server_error", "internal error"}
		}
		if oe.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="gatehouse"`)
		}
		writeJSON(w, oe.status, map[string]string{"error": oe.code, "error_description": oe.description})
		return nil
	}
	return a.issueTokens(w, r, kind, id)
}

func (a *API) refreshTTL() time.Duration {
	if a.RefreshTTL <= 0 {
		return 24 * time.Hour
	}
	return a.RefreshTTL
}

// grant authenticates the token request and returns the principal it is for.
func (a *API) grant(r *http.Request) (kind, id string, err error) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return "", "", &oauthError{http.StatusBadRequest, "invalid_request", "the token endpoint accepts only application/x-www-form-urlencoded"}
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return "", "", &oauthError{http.StatusBadRequest, "invalid_request", "malformed form body"}
	}
	f := r.PostForm
	basicID, basicSecret, hasBasic := r.BasicAuth()
	switch f.Get("grant_type") {
	case "password":
		username, password := f.Get("username"), f.Get("password")
		if username == "" || password == "" {
			return "", "", &oauthError{http.StatusBadRequest, "invalid_request", "username and password are required"}
		}
		if hasBasic && basicID != CLIClientID {
			return a.apiClientLogin(r, basicID, basicSecret, username, password)
		}
		clientID := f.Get("client_id")
		if hasBasic {
			clientID = basicID
		}
		if clientID != CLIClientID {
			return "", "", &oauthError{http.StatusUnauthorized, "invalid_client", "unknown client; users log in with client_id=" + CLIClientID}
		}
		return a.userLogin(r, username, password, f.Get("otp"))
	case "authorization_code":
		return a.codeGrant(r)
	case "client_credentials":
		if !hasBasic {
			return "", "", &oauthError{http.StatusUnauthorized, "invalid_client", "client authentication with HTTP Basic is required"}
		}
		return a.clientCredentials(r, basicID, basicSecret)
	case "refresh_token":
		rt, err := a.Store.ConsumeRefreshToken(r.Context(), f.Get("refresh_token"))
		if errors.Is(err, store.ErrNotExist) {
			return "", "", &oauthError{http.StatusBadRequest, "invalid_grant", "refresh token is invalid or expired"}
		}
		if err != nil {
			return "", "", err
		}
		p, err := a.loadPrincipal(r.Context(), rt.PrincipalKind, rt.PrincipalID)
		if errors.Is(err, errUnauthenticated) {
			return "", "", &oauthError{http.StatusBadRequest, "invalid_grant", "the principal is disabled or gone"}
		}
		if err != nil {
			return "", "", err
		}
		if !p.SessionCurrent(rt.Created) {
			return "", "", &oauthError{http.StatusBadRequest, "invalid_grant", "refresh token is invalid or expired"}
		}
		return rt.PrincipalKind, rt.PrincipalID, nil
	case "":
		return "", "", &oauthError{http.StatusBadRequest, "invalid_request", "grant_type is required"}
	default:
		return "", "", &oauthError{http.StatusBadRequest, "unsupported_grant_type", "supported: password, client_credentials, refresh_token, authorization_code"}
	}
}

// limited asks the login limiter about the source address and the login name before any secret is compared:
// it refuses, or waits out the delay of a name that fails from many sources.
func (a *API) limited(r *http.Request, name string) error {
	d := a.Limiter.Check(r.Context(), clientIP(r), name)
	if d.RetryAfter > 0 {
		a.auditLogin(r.Context(), r, name, "", "failure", "rate limited: "+d.Reason)
		return &rateLimited{retryAfter: d.RetryAfter}
	}
	return d.Wait(r.Context())
}

func (a *API) loginFailed(r *http.Request, name, reason string) error {
	a.Limiter.Failed(r.Context(), clientIP(r), name)
	a.auditLogin(r.Context(), r, name, "", "failure", reason)
	return &oauthError{http.StatusUnauthorized, "invalid_grant", "invalid credentials"}
}

func (a *API) userLogin(r *http.Request, username, password, otp string) (string, string, error) {
	if err := a.passwordLoginAllowed(r.Context(), username); err != nil {
		if errors.Is(err, ErrPasswordLoginDisabled) {
			return "", "", &oauthError{http.StatusBadRequest, "invalid_grant", err.Error()}
		}
		return "", "", err
	}
	u, err := a.CheckUserPassword(r, username, password, "service")
	if err == nil {
		err = a.SecondFactor(r, u, otp, "service")
	}
	var rl *rateLimited
	switch {
	case err == nil:
		return auth.KindUser, u.ID, nil
	case errors.As(err, &rl):
		return "", "", err
	case errors.Is(err, ErrLoginFailed):
		return "", "", &oauthError{http.StatusUnauthorized, "invalid_grant", "invalid credentials"}
	case errors.Is(err, ErrDirectoryUnavailable):
		return "", "", &oauthError{http.StatusServiceUnavailable, "temporarily_unavailable", "the user's directory cannot be reached; try again later"}
	case errors.Is(err, ErrMFARequired):
		return "", "", &oauthError{http.StatusUnauthorized, "mfa_required", "a second factor is required: send the code from your authenticator in the otp form field"}
	case errors.Is(err, ErrMFAEnrollmentRequired):
		return "", "", &oauthError{http.StatusUnauthorized, "mfa_enrollment_required",
			"enrol a TOTP authenticator first: POST /auth/api/v1/mfa/totp/enrol with username and password, then log in with the otp form field"}
	case errors.Is(err, ErrMFAUnavailable):
		return "", "", &oauthError{http.StatusServiceUnavailable, "temporarily_unavailable", "the second-factor server cannot be reached; try again later"}
	}
	return "", "", err
}

// Login failures of CheckUserPassword.
var (
	// ErrLoginFailed is a wrong username or password, or a disabled user; the caller says no more than that.
	ErrLoginFailed = errors.New("invalid credentials")
	// ErrDirectoryUnavailable is a directory user's login while the directory cannot be reached.
	ErrDirectoryUnavailable = errors.New("the user's directory cannot be reached")
)

// LoginRateLimited reports whether err is CheckUserPassword refusing a rate-limited source or name, and how long
// to wait.
func LoginRateLimited(err error) (time.Duration, bool) {
	var rl *rateLimited
	if errors.As(err, &rl) {
		return rl.retryAfter, true
	}
	return 0, false
}

// CheckUserPassword is every password login of a user, whichever API dialect it comes through: the failure
// limiter per source address and name, the user's directory (an LDAP bind) or the local argon2id hash, audit of
// success and failure. dialect names the API in the audit event.
func (a *API) CheckUserPassword(r *http.Request, username, password, dialect string) (*model.User, error) {
	if a.Limiter == nil {
		a.Limiter = &auth.MemoryLoginLimiter{}
	}
	if err := a.limited(r, username); err != nil {
		return nil, err
	}
	suffix := ""
	if dialect != "service" {
		suffix = " (" + dialect + " api)"
	}
	failed := func(reason string) error {
		a.Limiter.Failed(r.Context(), clientIP(r), username)
		a.auditLogin(r.Context(), r, username, "", "failure", reason+suffix)
		return ErrLoginFailed
	}
	if a.Directory != nil {
		u, err := a.Directory.Authenticate(r.Context(), username, password)
		switch {
		case err == nil:
			a.auditLogin(r.Context(), r, u.Username, u.ID, "success", "directory password"+suffix)
			return u, nil
		case errors.Is(err, directory.ErrInvalidCredentials):
			return nil, failed("directory refused the credentials")
		case errors.Is(err, directory.ErrUnavailable):
			// Not a wrong password, so not counted against the name; but audited, since logins are failing.
			a.log().Warn("directory login unavailable", "username", username, "err", err)
			a.auditLogin(r.Context(), r, username, "", "failure", "directory unavailable"+suffix)
			return nil, ErrDirectoryUnavailable
		case !errors.Is(err, directory.ErrNotDirectoryUser):
			return nil, err
		}
	}
	u, err := a.Store.UserByName(r.Context(), username)
	if errors.Is(err, store.ErrNotExist) {
		secrets.DummyVerify(password) // answer unknown users as slowly as known ones
		return nil, failed("unknown user")
	}
	if err != nil {
		return nil, err
	}
	if ok, err := secrets.VerifyPassword(u.PasswordHash, password); err != nil || !ok {
		return nil, failed("wrong password")
	}
	if !u.Enabled {
		return nil, failed("user disabled")
	}
	a.auditLogin(r.Context(), r, u.Username, u.ID, "success", "password"+suffix)
	return u, nil
}

// apiClientLogin is the reference's password grant: Basic oauth_client_id:oauth_client_secret, username = API
// client id, password = API client secret. Every value is compared in constant time.
func (a *API) apiClientLogin(r *http.Request, oauthID, oauthSecret, clientID, clientSecret string) (string, string, error) {
	if err := a.limited(r, clientID); err != nil {
		return "", "", err
	}
	c, err := a.Store.APIClient(r.Context(), clientID)
	if errors.Is(err, store.ErrNotExist) {
		return "", "", a.loginFailed(r, clientID, "unknown api client")
	}
	if err != nil {
		return "", "", err
	}
	okID := secrets.Equal(c.OAuthClientID, oauthID)
	okOAuth := secrets.Equal(c.OAuthClientSecret, oauthSecret)
	okSecret := secrets.Equal(c.Secret, clientSecret)
	if !okID || !okOAuth || !okSecret {
		return "", "", a.loginFailed(r, clientID, "bad api client credentials")
	}
	a.auditLogin(r.Context(), r, c.Name, c.ID, "success", "api client password grant")
	return auth.KindAPIClient, c.ID, nil
}

// clientCredentials authenticates an API client by its OAuth client id and secret alone.
func (a *API) clientCredentials(r *http.Request, oauthID, oauthSecret string) (string, string, error) {
	if err := a.limited(r, oauthID); err != nil {
		return "", "", err
	}
	c, err := a.Store.APIClientByOAuthID(r.Context(), oauthID)
	if errors.Is(err, store.ErrNotExist) {
		return "", "", a.loginFailed(r, oauthID, "unknown oauth client")
	}
	if err != nil {
		return "", "", err
	}
	if !secrets.Equal(c.OAuthClientSecret, oauthSecret) {
		return "", "", a.loginFailed(r, oauthID, "bad oauth client secret")
	}
	a.auditLogin(r.Context(), r, c.Name, c.ID, "success", "client credentials grant")
	return auth.KindAPIClient, c.ID, nil
}

func (a *API) auditLogin(ctx context.Context, r *http.Request, name, id, outcome, detail string) {
	a.record(ctx, &model.AuditEvent{Actor: name, ActorID: id, Action: "login", ObjectType: "session",
		SourceAddress: clientIP(r), Outcome: outcome, Diff: map[string]any{"method": detail}})
}
