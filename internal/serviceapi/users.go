package serviceapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// userInput is the body of POST and PUT on users. Pointer fields left out of a PUT keep their stored value.
type userInput struct {
	Username *string `json:"username"`
	// Password is a string, or PrivX's {"password","created"} object.
	Password *passwordField `json:"password"`
	Email    *string        `json:"email"`
	FullName *string        `json:"full_name"`
	Enabled  *bool          `json:"enabled"`
	// Server-populated fields are accepted and ignored, so a GET response can be sent back as a PUT.
	ID        string `json:"id"`
	Source    string `json:"source"`
	Created   string `json:"created"`
	Author    string `json:"author"`
	Updated   string `json:"updated"`
	UpdatedBy string `json:"updated_by"`
	privxUserFields
}

// privxUserFields are the PrivX local-user fields Gatehouse has no feature for: they must be zero.
type privxUserFields struct {
	Comment                json.RawMessage `json:"comment" why:"users have no comment in Gatehouse"`
	Tags                   json.RawMessage `json:"tags" why:"users have no tags in Gatehouse"`
	WindowsAccount         json.RawMessage `json:"windows_account" why:"host accounts are not supported"`
	UnixAccount            json.RawMessage `json:"unix_account" why:"host accounts are not supported"`
	DisplayName            json.RawMessage `json:"display_name" why:"use full_name"`
	FirstName              json.RawMessage `json:"first_name" why:"use full_name"`
	LastName               json.RawMessage `json:"last_name" why:"use full_name"`
	JobTitle               json.RawMessage `json:"job_title" why:"directory attributes are not stored for local users"`
	Company                json.RawMessage `json:"company" why:"directory attributes are not stored for local users"`
	Department             json.RawMessage `json:"department" why:"directory attributes are not stored for local users"`
	Telephone              json.RawMessage `json:"telephone" why:"directory attributes are not stored for local users"`
	Locale                 json.RawMessage `json:"locale" why:"users have no locale in Gatehouse"`
	PasswordChangeRequired json.RawMessage `json:"password_change_required" why:"forced password change is not supported"`
	Attributes             json.RawMessage `json:"attributes" why:"custom attributes are not supported"`
}

// passwordField reads a password given as a string or as PrivX's {"password":"...","created":"..."}; an object
// without a password (what the SDK sends back from a GET) leaves the password as it is.
type passwordField struct {
	value string
	kept  bool // an object with no password: keep the stored one
}

func (p *passwordField) given() bool { return p != nil && !p.kept }

func (p *passwordField) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &p.value); err == nil {
		return nil
	}
	var obj struct {
		Password string `json:"password"`
		Created  string `json:"created"`
	}
	if err := strictUnmarshal(b, &obj); err != nil {
		return badRequest("password", "password must be a string or {\"password\": string}")
	}
	p.value, p.kept = obj.Password, obj.Password == ""
	return nil
}

func validateUsername(name string) error {
	switch {
	case name == "":
		return badRequest("username", "username is required")
	case len(name) > 128:
		return badRequest("username", "username must be at most 128 bytes")
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return badRequest("username", "username must not contain spaces or control characters")
	}
	return nil
}

func validatePassword(pw string) error {
	if len(pw) < 8 || len(pw) > 1024 {
		return badRequest("password", "password must be 8 to 1024 bytes long")
	}
	return nil
}

func (in *userInput) apply(u *model.User) error {
	if err := refuseUnsupported(&in.privxUserFields); err != nil {
		return err
	}
	if in.Username != nil {
		u.Username = strings.TrimSpace(*in.Username)
	}
	if err := validateUsername(u.Username); err != nil {
		return err
	}
	if in.Email != nil {
		u.Email = strings.TrimSpace(*in.Email)
		if u.Email != "" && (!strings.Contains(u.Email, "@") || len(u.Email) > 254) {
			return badRequest("email", "email must be an address like name@example.com")
		}
	}
	if in.FullName != nil {
		u.FullName = *in.FullName
	}
	if in.Enabled != nil {
		u.Enabled = *in.Enabled
	}
	return nil
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) error {
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	// username selects the one user of that name, as PrivX's local user store does.
	if name := r.URL.Query().Get("username"); name != "" {
		u, err := a.Store.UserByName(r.Context(), name)
		if errors.Is(err, store.ErrNotExist) {
			writeJSON(w, http.StatusOK, newList([]*model.User{}, 0))
			return nil
		} else if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, newList([]*model.User{u}, 1))
		return nil
	}
	users, total, err := a.Store.ListUsers(r.Context(), opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(users, total))
	return nil
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request) error {
	var in userInput
	if err := decode(r, &in); err != nil {
		return err
	}
	u := &model.User{Enabled: true}
	if err := in.apply(u); err != nil {
		return err
	}
	if !in.Password.given() {
		return badRequest("password", "password is required")
	}
	if err := validatePassword(in.Password.value); err != nil {
		return err
	}
	hash, err := secrets.HashPassword(in.Password.value)
	if err != nil {
		return err
	}
	u.PasswordHash = hash
	if err := a.Store.CreateUser(r.Context(), u, principal(r.Context()).Name); err != nil {
		return usernameConflict(err)
	}
	a.audit(r, "create", "user", u.ID, nil, u)
	writeJSON(w, http.StatusCreated, created{ID: u.ID})
	return nil
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request) error {
	u, err := a.Store.User(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

func (a *API) updateUser(w http.ResponseWriter, r *http.Request) error {
	u, err := a.Store.User(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := a.mustHoldUser(r, u.ID); err != nil {
		return err
	}
	before := *u
	var in userInput
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Password.given() {
		return badRequest("password", "change passwords with PUT .../users/{id}/password")
	}
	if err := in.apply(u); err != nil {
		return err
	}
	if err := a.Store.UpdateUser(r.Context(), u, principal(r.Context()).Name); err != nil {
		return usernameConflict(err)
	}
	a.audit(r, "update", "user", u.ID, &before, u)
	writeJSON(w, http.StatusOK, u)
	return nil
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if p := principal(r.Context()); p.Kind == auth.KindUser && p.ID == id {
		return &Error{Status: http.StatusConflict, Code: "CONFLICT", Message: "you cannot delete yourself"}
	}
	u, err := a.Store.User(r.Context(), id)
	if err != nil {
		return err
	}
	if err := a.mustHoldUser(r, id); err != nil {
		return err
	}
	if err := a.Store.DeleteUser(r.Context(), id); err != nil {
		return err
	}
	if err := a.Store.DeletePrincipalRefreshTokens(r.Context(), auth.KindUser, id); err != nil {
		return err
	}
	a.audit(r, "delete", "user", id, u, nil)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (a *API) setPassword(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Password string `json:"password"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := validatePassword(in.Password); err != nil {
		return err
	}
	hash, err := secrets.HashPassword(in.Password)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if _, err := a.Store.User(r.Context(), id); err != nil {
		return err
	}
	if err := a.mustHoldUser(r, id); err != nil {
		return err
	}
	if err := a.Store.SetPassword(r.Context(), id, hash, principal(r.Context()).Name); err != nil {
		return err
	}
	// The store has ended every management session the old password opened, including the caller's own when
	// they change theirs.
	a.audit(r, "set-password", "user", id, nil, map[string]any{"password": "[set]"})
	w.WriteHeader(http.StatusOK)
	return nil
}

// mustHoldUser applies the delegation rule to a change of user id: the caller must hold what the user holds.
func (a *API) mustHoldUser(r *http.Request, id string) error {
	perms, err := a.userPermissions(r.Context(), id)
	if err != nil {
		return err
	}
	return a.mustHold(r, "id", perms)
}

// currentUser is GET /auth/api/v1/users/current: who the token belongs to and what it may do.
func (a *API) currentUser(w http.ResponseWriter, r *http.Request) error {
	p := principal(r.Context())
	roles := make([]model.Ref, 0, len(p.Roles))
	for _, role := range p.Roles {
		roles = append(roles, model.Ref{ID: role.ID, Name: role.Name})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": p.ID, "username": p.Name, "type": p.Kind, "roles": roles, "permissions": p.Permissions.Sorted(),
	})
	return nil
}

// usernameConflict names the property at fault when a username is taken: users have no "name" field.
func usernameConflict(err error) error {
	if errors.Is(err, store.ErrConflict) {
		return &Error{Status: http.StatusConflict, Code: "CONFLICT", Message: "a user with this username already exists", Property: "username", Err: err}
	}
	return err
}

func fieldIndex(field string, i int) string { return fmt.Sprintf("%s[%d]", field, i) }
