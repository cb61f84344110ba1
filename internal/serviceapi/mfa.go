package serviceapi

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"

	"github.com/gatehouse-dev/gatehouse/internal/directory"
	"github.com/gatehouse-dev/gatehouse/internal/mfa"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Second-factor outcomes of SecondFactor, after the password was right. A wrong or replayed code is
// ErrLoginFailed, counted by the failure limiter like a wrong password.
var (
	// ErrMFARequired means the user's source requires a second factor and the login did not carry a code.
	ErrMFARequired = errors.New("a second factor is required")
	// ErrMFAEnrollmentRequired means the source requires TOTP and the user has not enrolled an authenticator.
	ErrMFAEnrollmentRequired = errors.New("a TOTP authenticator must be enrolled first")
	// ErrMFAUnavailable means the RADIUS server that checks codes could not be asked.
	ErrMFAUnavailable = errors.New("the second-factor server cannot be reached")
	// ErrPasswordLoginDisabled means X.509 login is on (aaa/settings) and the user is not the fallback admin.
	ErrPasswordLoginDisabled = errors.New("password logins are disabled; log in with a client certificate")
)

// totpIssuer names Gatehouse in authenticator apps.
const totpIssuer = "Gatehouse"

// mfaType returns the second factor the user's source requires ("" for none) and the source.
func (a *API) mfaType(ctx context.Context, u *model.User) (string, *directory.Source, error) {
	id := u.Source
	if id == "" {
		id = store.LocalSourceID
	}
	st, err := a.Store.Source(ctx, id)
	if err != nil {
		return "", nil, fmt.Errorf("second factor of %s: %w", u.Username, err)
	}
	src, err := directory.FromStored(st)
	if err != nil {
		return "", nil, err
	}
	return src.Connection.MFAType, src, nil
}

// SecondFactor is the step after CheckUserPassword accepted a password: it checks code against the second factor
// the user's source requires (mfa_type), if any. TOTP codes are verified here and each time step is accepted once
// (the store's check-and-set, so also across nodes); RADIUS codes go to the source's RADIUS server. dialect names
// the API in the audit event.
func (a *API) SecondFactor(r *http.Request, u *model.User, code, dialect string) error {
	ctx := r.Context()
	kind, src, err := a.mfaType(ctx, u)
	if err != nil || kind == "" {
		return err
	}
	outcome := func(result, detail string) {
		a.record(ctx, &model.AuditEvent{Actor: u.Username, ActorID: u.ID, Action: "second-factor", ObjectType: "session",
			SourceAddress: clientIP(r), Outcome: result, Diff: map[string]any{"method": kind, "api": dialect, "detail": detail}})
	}
	failed := func(detail string) error {
		// Counted by the login limiter and audited like a wrong password (loginFailed does both).
		a.loginFailed(r, u.Username, kind+" second factor: "+detail+" ("+dialect+" api)")
		return ErrLoginFailed
	}
	switch kind {
	case directory.MFATOTP:
		enr, err := a.Store.TOTP(ctx, u.ID)
		if errors.Is(err, store.ErrNotExist) {
			outcome("failure", "not enrolled")
			return ErrMFAEnrollmentRequired
		}
		if err != nil {
			return err
		}
		if code == "" {
			return ErrMFARequired
		}
		step, ok := mfa.Verify(enr.Secret, code, a.now(), enr.LastStep)
		if !ok {
			return failed("wrong or reused code")
		}
		if won, err := a.Store.UseTOTPStep(ctx, u.ID, step); err != nil {
			return err
		} else if !won {
			return failed("code already used")
		}
		outcome("success", "")
		return nil
	case directory.MFARADIUS:
		if code == "" {
			return ErrMFARequired
		}
		c := src.Connection
		rad := &mfa.RADIUS{Address: c.MFAAddress, Port: c.MFAPort, RequireMessageAuthenticator: c.MFARequireMessageAuthenticator}
		if c.MFASharedSecret != nil {
			rad.Secret = *c.MFASharedSecret
		}
		switch err := rad.Check(ctx, u.Username, code); {
		case err == nil:
			outcome("success", "")
			return nil
		case errors.Is(err, mfa.ErrRejected):
			return failed("radius rejected the code")
		default:
			a.log().Warn("radius second factor unavailable", "source", src.ID, "username", u.Username, "err", err)
			outcome("failure", "radius unavailable")
			return ErrMFAUnavailable
		}
	}
	// Validation admits no other value; a row edited by hand must not open logins.
	return fmt.Errorf("source %s has an unknown mfa_type %q", src.ID, kind)
}

// passwordLoginAllowed applies the configuration API's X.509 setting to password logins.
func (a *API) passwordLoginAllowed(ctx context.Context, username string) error {
	if a.PasswordLoginAllowed == nil {
		return nil
	}
	ok, err := a.PasswordLoginAllowed(ctx, username)
	if err != nil {
		return err
	}
	if !ok {
		return ErrPasswordLoginDisabled
	}
	return nil
}

// totpEnrolment is the answer of an enrolment: the otpauth URI to scan and the secret to type instead.
type totpEnrolment struct {
	OTPAuthURI string `json:"otpauth_uri"`
	Secret     string `json:"secret"`
	Issuer     string `json:"issuer"`
	Account    string `json:"account"`
}

// enrolTOTP gives the user a new, unconfirmed TOTP secret; the first login with one of its codes confirms it.
func (a *API) enrolTOTP(ctx context.Context, u *model.User) (*totpEnrolment, error) {
	secret := mfa.NewSecret()
	if err := a.Store.SetTOTP(ctx, u.ID, secret); err != nil {
		return nil, err
	}
	return &totpEnrolment{OTPAuthURI: mfa.URI(totpIssuer, u.Username, secret), Secret: mfa.EncodeSecret(secret),
		Issuer: totpIssuer, Account: u.Username}, nil
}

// selfEnrolTOTP is POST /auth/api/v1/mfa/totp/enrol (form: username, password): a user whose source requires TOTP
// and who has no confirmed authenticator enrols one with their password. Once a login has confirmed it, only an
// admin reset (DELETE .../users/{id}/mfa) allows a new one, so a stolen password cannot replace the factor.
func (a *API) selfEnrolTOTP(w http.ResponseWriter, r *http.Request) error {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: "UNSUPPORTED_MEDIA_TYPE", Message: "send username and password form-encoded, as to the token endpoint"}
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return badRequest("", "malformed form body")
	}
	username, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	if username == "" || password == "" {
		return badRequest("username", "username and password are required")
	}
	if err := a.passwordLoginAllowed(r.Context(), username); err != nil {
		return &Error{Status: http.StatusForbidden, Code: "PASSWORD_LOGIN_DISABLED", Message: err.Error()}
	}
	u, err := a.CheckUserPassword(r, username, password, "service")
	switch {
	case errors.Is(err, ErrLoginFailed):
		return &Error{Status: http.StatusUnauthorized, Code: "UNAUTHENTICATED", Message: "invalid credentials"}
	case errors.Is(err, ErrDirectoryUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Code: "SERVICE_UNAVAILABLE", Message: err.Error()}
	case err != nil:
		return err
	}
	kind, _, err := a.mfaType(r.Context(), u)
	if err != nil {
		return err
	}
	if kind != directory.MFATOTP {
		return &Error{Status: http.StatusConflict, Code: "MFA_NOT_TOTP", Message: "the user's source does not use TOTP (mfa_type)", Property: "mfa_type"}
	}
	if old, err := a.Store.TOTP(r.Context(), u.ID); err == nil && old.Confirmed {
		return &Error{Status: http.StatusConflict, Code: "MFA_ALREADY_ENROLLED", Message: "an authenticator is already enrolled; an administrator must reset it first"}
	} else if err != nil && !errors.Is(err, store.ErrNotExist) {
		return err
	}
	enr, err := a.enrolTOTP(r.Context(), u)
	if err != nil {
		return err
	}
	a.record(r.Context(), &model.AuditEvent{Actor: u.Username, ActorID: u.ID, Action: "enrol", ObjectType: "user-mfa",
		ObjectID: u.ID, SourceAddress: clientIP(r), Outcome: "success", Diff: map[string]any{"method": "totp"}})
	writeJSON(w, http.StatusCreated, enr)
	return nil
}

// mfaStatus is GET .../users/{id}/mfa: the second factor the user's source requires and whether they enrolled.
type mfaStatus struct {
	MFAType   string `json:"mfa_type"`
	Enrolled  bool   `json:"enrolled"`
	Confirmed bool   `json:"confirmed"`
}

func (a *API) getUserMFA(w http.ResponseWriter, r *http.Request) error {
	u, err := a.Store.User(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	kind, _, err := a.mfaType(r.Context(), u)
	if err != nil {
		return err
	}
	out := mfaStatus{MFAType: directory.MFADisabled}
	if kind != "" {
		out.MFAType = kind
	}
	if enr, err := a.Store.TOTP(r.Context(), u.ID); err == nil {
		out.Enrolled, out.Confirmed = true, enr.Confirmed
	} else if !errors.Is(err, store.ErrNotExist) {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// adminEnrolTOTP is POST .../users/{id}/mfa/totp: an admin gives the user a new TOTP secret (replacing any) and
// hands them the URI.
func (a *API) adminEnrolTOTP(w http.ResponseWriter, r *http.Request) error {
	u, err := a.Store.User(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	kind, _, err := a.mfaType(r.Context(), u)
	if err != nil {
		return err
	}
	if kind != directory.MFATOTP {
		return &Error{Status: http.StatusConflict, Code: "MFA_NOT_TOTP", Message: "the user's source does not use TOTP (mfa_type)", Property: "mfa_type"}
	}
	enr, err := a.enrolTOTP(r.Context(), u)
	if err != nil {
		return err
	}
	a.audit(r, "enrol", "user-mfa", u.ID, nil, map[string]any{"method": "totp"})
	writeJSON(w, http.StatusCreated, enr)
	return nil
}

// resetUserMFA is DELETE .../users/{id}/mfa: the user's authenticator is forgotten; they enrol again at their next
// login.
func (a *API) resetUserMFA(w http.ResponseWriter, r *http.Request) error {
	u, err := a.Store.User(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := a.Store.DeleteTOTP(r.Context(), u.ID); err != nil {
		return err
	}
	a.audit(r, "reset", "user-mfa", u.ID, nil, nil)
	w.WriteHeader(http.StatusOK)
	return nil
}
