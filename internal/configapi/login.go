package configapi

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/httpauth"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/serviceapi"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Login methods as user_info and the audit show them.
const (
	methodPassword = "password"
	methodX509     = "x509"
	methodToken    = "bearer_token"
)

const sessionCookie = "session_id"

// caller is the authenticated client of a request.
type caller struct {
	Principal *serviceapi.Principal
	Method    string
	// Holder identifies the login session for the configuration lock: the keyed hash of the session id, or of the
	// bearer token for service API callers.
	Holder string
}

// authenticate accepts, in order, a service API bearer token, the session_id header and the session_id cookie.
func (s *Service) authenticate(w http.ResponseWriter, r *http.Request) (*caller, error) {
	if tok, ok := httpauth.Credentials(r.Header.Get("Authorization"), "Bearer"); ok {
		p, err := s.Principals.PrincipalFromToken(r)
		if err != nil {
			return nil, errUnauthenticated
		}
		holder := s.Store.SecretIndex(store.IndexConfigSession, "bearer:"+tok)
		if key, ok := r.Context().Value(holderKey{}).(string); ok && key != "" {
			holder = s.Store.SecretIndex(store.IndexConfigSession, "session-holder:"+key)
		}
		return &caller{Principal: p, Method: methodToken, Holder: holder}, nil
	}
	id := sessionID(r)
	if id == "" {
		return nil, errUnauthenticated
	}
	cs, idx, err := s.Store.TouchConfigSession(r.Context(), s.now(), id, s.sessionIdle())
	if errors.Is(err, store.ErrNotExist) {
		return nil, errUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	if cs.Method != methodPassword && cs.Method != methodX509 {
		// Only this API's own logins: a row of another scope (the console's, hashed as this API's before the
		// scopes were separated) is no session here.
		return nil, errUnauthenticated
	}
	p, err := s.Principals.LoadPrincipal(r.Context(), cs.PrincipalKind, cs.PrincipalID)
	if err != nil || !p.SessionCurrent(cs.Created) {
		// A disabled or deleted user's session ends at its next request, and so does one opened before the
		// user's last password change or role loss.
		s.Store.DeleteConfigSession(r.Context(), id)
		return nil, errUnauthenticated
	}
	return &caller{Principal: p, Method: cs.Method, Holder: idx}, nil
}

type holderKey struct{}

// WithSessionHolder returns a context under which an in-process request authenticated by a bearer token holds the
// configuration lock as the login session named by key, rather than as its token. The web console needs it: it
// mints a token for each request, and a transaction its user opens must span the requests of one console session.
// Only code in this process can set a context value, and the caller's identity is still the token's.
func WithSessionHolder(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, holderKey{}, key)
}

// sessionID reads the session_id header (the reference's way) or the cookie (curl's cookie jar).
func sessionID(r *http.Request) string {
	if v := strings.TrimSpace(r.Header.Get(sessionCookie)); v != "" {
		return v
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		return c.Value
	}
	return ""
}

// authentication is /api/authentication: GET logs in (Basic, or ?type=x509), DELETE logs out.
func (s *Service) authentication(w http.ResponseWriter, r *http.Request, _ *caller) error {
	if r.Method == http.MethodDelete {
		if id := sessionID(r); id != "" {
			if err := s.Store.DeleteConfigSession(r.Context(), id); err != nil {
				return err
			}
		}
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: rootPath, MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
		writeJSON(w, http.StatusOK, map[string]any{"meta": map[string]string{"href": rootPath, "transaction": transactionPath}})
		return nil
	}
	switch r.URL.Query().Get("type") {
	case "", "basic":
		return s.passwordLogin(w, r)
	case methodX509:
		return s.certificateLogin(w, r)
	default:
		return invalidQuery("type", "type must be basic or x509")
	}
}

func (s *Service) passwordLogin(w http.ResponseWriter, r *http.Request) error {
	username, password, ok := r.BasicAuth()
	if !ok || username == "" {
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			return &Error{Status: http.StatusBadRequest, Code: CodeInvalidAuthentication,
				Message: "no valid credentials found; to log in with a certificate use /api/authentication?type=x509"}
		}
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidAuthentication, Message: "no valid credentials found: use HTTP Basic authentication"}
	}
	otp, err := loginCode(r)
	if err != nil {
		return err
	}
	if ok, err := s.PasswordLoginAllowed(r.Context(), username); err != nil {
		return err
	} else if !ok {
		s.audit(r.Context(), r, username, "", "login", "failure", map[string]any{"method": "password refused: x509 login is enabled", "api": "configuration"})
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidAuthentication, Field: "x509.authentication_ca",
			Message: "password login is disabled while X.509 login is enabled (aaa/settings x509.authentication_ca), except for the fallback admin; log in at /api/authentication?type=x509"}
	}
	u, err := s.Principals.CheckUserPassword(r, username, password, "configuration")
	if err == nil {
		err = s.Principals.SecondFactor(r, u, otp, "configuration")
	}
	if wait, limited := serviceapi.LoginRateLimited(err); limited {
		return &Error{Status: http.StatusTooManyRequests, Code: CodeTooManyRequests, Message: "too many failed attempts; retry later", RetryAfter: wait}
	}
	switch {
	case errors.Is(err, serviceapi.ErrLoginFailed):
		return errAuthFailure
	case errors.Is(err, serviceapi.ErrDirectoryUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeAuthenticationFailure, Message: "the user's directory cannot be reached; try again later"}
	case errors.Is(err, serviceapi.ErrMFARequired):
		return &Error{Status: http.StatusUnauthorized, Code: CodeMFARequired, Field: "otp",
			Message: `a second factor is required: repeat the login with the code in the body, {"otp":"123456"}`}
	case errors.Is(err, serviceapi.ErrMFAEnrollmentRequired):
		return &Error{Status: http.StatusUnauthorized, Code: CodeMFAEnrollmentRequired, Field: "otp",
			Message: "enrol a TOTP authenticator first (POST /auth/api/v1/mfa/totp/enrol, or gatehouse login), then log in with the code"}
	case errors.Is(err, serviceapi.ErrMFAUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeAuthenticationFailure, Message: "the second-factor server cannot be reached; try again later"}
	case err != nil:
		return err
	}
	if err := s.startSession(w, r, u, methodPassword); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"meta": map[string]string{"href": rootPath, "next": rootPath, "transaction": transactionPath}})
	return nil
}

// loginCode reads the second factor's code from the login's body, {"otp":"123456"} (the login stays a GET, as the
// reference has it; curl sends a body with -X GET --data). An empty body carries none.
func loginCode(r *http.Request) (string, error) {
	if r.Body == nil {
		return "", nil
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 4<<10))
	if err != nil {
		return "", syntactic("", "the login body could not be read")
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return "", nil
	}
	var in struct {
		OTP string `json:"otp"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return "", jsonError(err)
	}
	return in.OTP, nil
}

// FallbackAdmin is the user who may still log in with a password when X.509 login is enabled: the local admin
// created at first start, as the reference keeps password login for its admin.
const FallbackAdmin = "admin"

// PasswordLoginAllowed reports whether username may log in with a password under the committed aaa/settings:
// always while X.509 login is off (no authentication CA), otherwise only the local fallback admin. The service
// API's token endpoint asks it too, so a password cannot side-step the setting through the other dialect.
func (s *Service) PasswordLoginAllowed(ctx context.Context, username string) (bool, error) {
	cfg, err := s.committed(ctx)
	if err != nil {
		return false, err
	}
	var set aaaSettings
	if err := json.Unmarshal(cfg.get(kindAAASettings, singletonKey), &set); err != nil {
		return false, err
	}
	if pool, err := set.caPool(); err != nil || pool == nil {
		return true, nil
	}
	if username != FallbackAdmin {
		return false, nil
	}
	u, err := s.Store.UserByName(ctx, username)
	if errors.Is(err, store.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return u.Source == store.LocalSourceID || u.Source == "", nil
}

// certificateLogin maps a TLS client certificate that chains to the configured authentication CA to the user whose
// username equals the certificate's subject CN or one of its SAN e-mail addresses (the first that names a user).
func (s *Service) certificateLogin(w http.ResponseWriter, r *http.Request) error {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidAuthentication, Message: "no client certificate was presented"}
	}
	leaf := r.TLS.PeerCertificates[0]
	names := append([]string{leaf.Subject.CommonName}, leaf.EmailAddresses...)
	if err := s.limited(r, leaf.Subject.CommonName); err != nil {
		return err
	}
	cfg, err := s.committed(r.Context())
	if err != nil {
		return err
	}
	var set aaaSettings
	if err := json.Unmarshal(cfg.get(kindAAASettings, singletonKey), &set); err != nil {
		return err
	}
	pool, err := set.caPool()
	if err != nil || pool == nil {
		return s.loginFailed(r, leaf.Subject.CommonName, "x509 authentication is not configured")
	}
	inter := x509.NewCertPool()
	for _, c := range r.TLS.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: s.now()}); err != nil {
		return s.loginFailed(r, leaf.Subject.CommonName, "certificate does not chain to the authentication CA: "+err.Error())
	}
	for _, name := range names {
		if name == "" {
			continue
		}
		u, err := s.Store.UserByName(r.Context(), name)
		if errors.Is(err, store.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if !u.Enabled {
			return s.loginFailed(r, name, "user disabled")
		}
		if err := s.startSession(w, r, u, methodX509); err != nil {
			return err
		}
		w.Header().Set("Location", rootPath+"/")
		writeJSON(w, http.StatusFound, map[string]any{"meta": map[string]string{"href": rootPath, "next": rootPath, "transaction": transactionPath}})
		return nil
	}
	return s.loginFailed(r, leaf.Subject.CommonName, "no user matches the certificate")
}

func (s *Service) startSession(w http.ResponseWriter, r *http.Request, u *model.User, method string) error {
	id := secrets.RandomToken(32)
	if err := s.Store.CreateConfigSession(r.Context(), s.now(), id, store.ConfigSession{
		PrincipalKind: auth.KindUser, PrincipalID: u.ID, Name: u.Username, Method: method,
	}); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: rootPath, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	s.audit(r.Context(), r, u.Username, u.ID, "login", "success", map[string]any{"method": method, "api": "configuration"})
	return nil
}

// limited checks the shared failure limiter for the source address and the login name before any secret is compared.
func (s *Service) limited(r *http.Request, name string) error {
	d := s.Limiter.Check(r.Context(), clientIP(r), name)
	if d.RetryAfter > 0 {
		s.audit(r.Context(), r, name, "", "login", "failure", map[string]any{"method": "rate limited: " + d.Reason, "api": "configuration"})
		return &Error{Status: http.StatusTooManyRequests, Code: CodeTooManyRequests, Message: "too many failed attempts; retry later", RetryAfter: d.RetryAfter}
	}
	return d.Wait(r.Context())
}

func (s *Service) loginFailed(r *http.Request, name, reason string) error {
	s.Limiter.Failed(r.Context(), clientIP(r), name)
	s.audit(r.Context(), r, name, "", "login", "failure", map[string]any{"method": reason, "api": "configuration"})
	return errAuthFailure
}

// authenticationTypes is GET /api/authentication/types: basic always, x509 once an authentication CA is set.
func (s *Service) authenticationTypes(w http.ResponseWriter, r *http.Request, _ *caller) error {
	cfg, err := s.committed(r.Context())
	if err != nil {
		return err
	}
	types := map[string]any{"basic": map[string]any{"href": authPath}}
	var set aaaSettings
	if json.Unmarshal(cfg.get(kindAAASettings, singletonKey), &set) == nil {
		if pool, err := set.caPool(); err == nil && pool != nil {
			types["x509"] = map[string]any{"href": authPath + "?type=x509"}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"types": types, "meta": map[string]string{"href": authPath + "/types", "parent": authPath, "transaction": transactionPath}})
	return nil
}

func (s *Service) audit(ctx context.Context, r *http.Request, actor, actorID, action, outcome string, diff map[string]any) {
	e := &model.AuditEvent{Actor: actor, ActorID: actorID, Action: action, ObjectType: "configuration-session", SourceAddress: clientIP(r), Outcome: outcome, Diff: diff}
	if action == "commit" {
		e.ObjectType = "configuration"
	}
	if err := s.Store.AppendAudit(ctx, e); err != nil {
		s.log().Error("writing audit event failed", "action", action, "err", err)
	}
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
