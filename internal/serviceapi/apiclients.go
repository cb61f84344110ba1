package serviceapi

import (
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
)

type apiClientInput struct {
	Name  *string     `json:"name"`
	Roles []model.Ref `json:"roles"`
	// Server-populated fields are accepted and ignored, including the credentials, which never change.
	ID                string `json:"id"`
	Secret            string `json:"secret"`
	OAuthClientID     string `json:"oauth_client_id"`
	OAuthClientSecret string `json:"oauth_client_secret"`
	Created           string `json:"created"`
	Author            string `json:"author"`
	Updated           string `json:"updated"`
	UpdatedBy         string `json:"updated_by"`
}

// apiClientWithSecrets is GET /api-clients/{id}: the four credential values of the reference.
type apiClientWithSecrets struct {
	*model.APIClient
	Secret            string `json:"secret"`
	OAuthClientSecret string `json:"oauth_client_secret"`
}

func (a *API) applyAPIClient(r *http.Request, in *apiClientInput, c *model.APIClient) error {
	if in.Name != nil {
		c.Name = strings.TrimSpace(*in.Name)
	}
	if c.Name == "" || len(c.Name) > 128 {
		return badRequest("name", "name is required and must be at most 128 bytes")
	}
	if in.Roles != nil {
		for i, ref := range in.Roles {
			role, err := a.Store.Role(r.Context(), ref.ID)
			if err != nil {
				return badRequest(fieldIndex("roles", i)+".id", "role "+ref.ID+" does not exist")
			}
			in.Roles[i].Name = role.Name
		}
		c.Roles = in.Roles
	}
	perms, err := a.refsPermissions(r.Context(), c.Roles)
	if err != nil {
		return err
	}
	return a.mustHold(r, "roles", perms)
}

// mustHoldClient applies the delegation rule to an API client: acting on it, or reading its secrets, needs what
// its roles give.
func (a *API) mustHoldClient(r *http.Request, c *model.APIClient) error {
	perms, err := a.refsPermissions(r.Context(), c.Roles)
	if err != nil {
		return err
	}
	return a.mustHold(r, "id", perms)
}

func (a *API) listAPIClients(w http.ResponseWriter, r *http.Request) error {
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	clients, total, err := a.Store.ListAPIClients(r.Context(), opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(clients, total))
	return nil
}

func (a *API) createAPIClient(w http.ResponseWriter, r *http.Request) error {
	var in apiClientInput
	if err := decode(r, &in); err != nil {
		return err
	}
	c := &model.APIClient{Roles: []model.Ref{}}
	if err := a.applyAPIClient(r, &in, c); err != nil {
		return err
	}
	c.Secret = secrets.RandomToken(32)
	c.OAuthClientID = "gh-" + strings.ToLower(secrets.RandomToken(9))
	c.OAuthClientSecret = secrets.RandomToken(32)
	if err := a.Store.CreateAPIClient(r.Context(), c, principal(r.Context()).Name); err != nil {
		return err
	}
	a.audit(r, "create", "api-client", c.ID, nil, c)
	writeJSON(w, http.StatusCreated, created{ID: c.ID})
	return nil
}

func (a *API) getAPIClient(w http.ResponseWriter, r *http.Request) error {
	c, err := a.Store.APIClient(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := a.mustHoldClient(r, c); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apiClientWithSecrets{APIClient: c, Secret: c.Secret, OAuthClientSecret: c.OAuthClientSecret})
	return nil
}

func (a *API) updateAPIClient(w http.ResponseWriter, r *http.Request) error {
	c, err := a.Store.APIClient(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := a.mustHoldClient(r, c); err != nil {
		return err
	}
	before := *c
	var in apiClientInput
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := a.applyAPIClient(r, &in, c); err != nil {
		return err
	}
	if err := a.Store.UpdateAPIClient(r.Context(), c, principal(r.Context()).Name); err != nil {
		return err
	}
	a.audit(r, "update", "api-client", c.ID, &before, c)
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (a *API) deleteAPIClient(w http.ResponseWriter, r *http.Request) error {
	c, err := a.Store.APIClient(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := a.mustHoldClient(r, c); err != nil {
		return err
	}
	if err := a.Store.DeleteAPIClient(r.Context(), c.ID); err != nil {
		return err
	}
	if err := a.Store.DeletePrincipalRefreshTokens(r.Context(), auth.KindAPIClient, c.ID); err != nil {
		return err
	}
	a.audit(r, "delete", "api-client", c.ID, c, nil)
	w.WriteHeader(http.StatusOK)
	return nil
}
