package serviceapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/google/uuid"
)

// ExtenderControl is what the extender routes need of the gateway's live extender sessions.
type ExtenderControl interface {
	// Disconnect closes the sessions of extender id, so a deleted, disabled or re-keyed extender stops at once.
	Disconnect(id string)
}

// ExtenderIssuer issues the client certificates of extenders that authenticate with one.
type ExtenderIssuer interface {
	// IssueExtenderCertificate makes a new certificate for extender id and returns its public description with
	// the certificate and key in PEM; the key is shown once and never stored.
	IssueExtenderCertificate(id, name string) (model.ExtenderCertificate, string, string, error)
}

type extenderInput struct {
	Name           *string `json:"name"`
	RoutingPrefix  *string `json:"routing_prefix"`
	Enabled        *bool   `json:"enabled"`
	Authentication *string `json:"authentication"`
	// Server-populated fields are accepted and ignored.
	Certificate any    `json:"certificate"`
	ID          string `json:"id"`
	Status      any    `json:"status"`
	Created     string `json:"created"`
	Author      string `json:"author"`
	Updated     string `json:"updated"`
	UpdatedBy   string `json:"updated_by"`
}

// extenderWithToken is the create and token answers: the only place the enrolment token is ever shown.
type extenderWithToken struct {
	ID    string `json:"id"`
	Token string `json:"token"`
}

// extenderWithCertificate is the create and certificate answers of a "certificate" extender: the only place its
// private key is ever shown.
type extenderWithCertificate struct {
	ID          string                    `json:"id"`
	Certificate string                    `json:"certificate"`
	PrivateKey  string                    `json:"private_key"`
	Info        model.ExtenderCertificate `json:"certificate_info"`
}

func applyExtender(in *extenderInput, e *model.Extender) error {
	if in.Name != nil {
		e.Name = strings.TrimSpace(*in.Name)
	}
	if e.Name == "" || len(e.Name) > 128 {
		return badRequest("name", "name is required and must be at most 128 bytes")
	}
	if in.RoutingPrefix != nil {
		e.RoutingPrefix = strings.ToLower(strings.TrimSpace(*in.RoutingPrefix))
	}
	if !policy.ValidExtenderPrefix(e.RoutingPrefix) {
		return badRequest("routing_prefix", "routing_prefix is required: 1-64 letters, digits, '-', '_' or '.'")
	}
	if in.Enabled != nil {
		e.Enabled = *in.Enabled
	}
	if in.Authentication != nil {
		switch v := *in.Authentication; {
		case e.ID != "" && v != e.Authentication:
			return &Error{Status: http.StatusBadRequest, Code: "NOT_SUPPORTED", Property: "authentication",
				Message: "authentication is chosen when the extender is created; create a new extender to change it"}
		case v != model.ExtenderAuthToken && v != model.ExtenderAuthCertificate:
			return badRequest("authentication", `authentication must be "token" or "certificate"`)
		default:
			e.Authentication = v
		}
	}
	return nil
}

// staleAfter is how old a heartbeat may be before the status no longer counts as connected: three missed pings
// of the hub's default 15 s, so a gateway that died without recording the disconnect does not show a live agent.
const staleAfter = 45 * time.Second

func (a *API) freshStatus(e *model.Extender) *model.Extender {
	if e.Status.Connected && (e.Status.LastHeartbeat == nil || a.now().Sub(*e.Status.LastHeartbeat) > staleAfter) {
		e.Status = model.ExtenderStatus{LastHeartbeat: e.Status.LastHeartbeat}
	}
	return e
}

func newExtenderToken() string { return "gx_" + secrets.RandomToken(32) }

func (a *API) listExtenders(w http.ResponseWriter, r *http.Request) error {
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	items, total, err := a.Store.ListExtenders(r.Context(), opts)
	if err != nil {
		return err
	}
	for _, e := range items {
		a.freshStatus(e)
	}
	writeJSON(w, http.StatusOK, newList(items, total))
	return nil
}

func (a *API) createExtender(w http.ResponseWriter, r *http.Request) error {
	var in extenderInput
	if err := decode(r, &in); err != nil {
		return err
	}
	e := &model.Extender{Enabled: true, Authentication: model.ExtenderAuthToken}
	if err := applyExtender(&in, e); err != nil {
		return err
	}
	if err := a.mustHoldToServePrefix(r, e.RoutingPrefix, "routing_prefix"); err != nil {
		return err
	}
	// A certificate extender gets a token too, which nobody ever sees: its only copy is dropped here, and the
	// token route refuses such an extender anyway.
	token := newExtenderToken()
	var issued *extenderWithCertificate
	if e.Authentication == model.ExtenderAuthCertificate {
		if a.ExtenderCA == nil {
			return &Error{Status: http.StatusBadRequest, Code: "NOT_SUPPORTED", Property: "authentication",
				Message: "this gateway issues no extender certificates"}
		}
		e.ID = uuid.NewString()
		info, certPEM, keyPEM, err := a.ExtenderCA.IssueExtenderCertificate(e.ID, e.Name)
		if err != nil {
			return err
		}
		e.Certificate = &info
		issued = &extenderWithCertificate{ID: e.ID, Certificate: certPEM, PrivateKey: keyPEM, Info: info}
	}
	if err := a.Store.CreateExtender(r.Context(), e, token, principal(r.Context()).Name); err != nil {
		return err
	}
	a.audit(r, "create", "extender", e.ID, nil, e)
	if issued != nil {
		writeJSON(w, http.StatusCreated, issued)
		return nil
	}
	writeJSON(w, http.StatusCreated, extenderWithToken{ID: e.ID, Token: token})
	return nil
}

// reissueExtenderCertificate issues a new client certificate; the old one is refused at once and its sessions
// close. This is how a certificate is revoked.
func (a *API) reissueExtenderCertificate(w http.ResponseWriter, r *http.Request) error {
	e, err := a.Store.Extender(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if e.Authentication != model.ExtenderAuthCertificate || a.ExtenderCA == nil {
		return badRequest("authentication", "this extender authenticates with an enrolment token; issue a new one with POST .../token")
	}
	if err := a.mustHoldToServePrefix(r, e.RoutingPrefix, "certificate"); err != nil {
		return err
	}
	info, certPEM, keyPEM, err := a.ExtenderCA.IssueExtenderCertificate(e.ID, e.Name)
	if err != nil {
		return err
	}
	if err := a.Store.ReplaceExtenderCertificate(r.Context(), e.ID, info, principal(r.Context()).Name); err != nil {
		return err
	}
	a.disconnectExtender(e.ID)
	a.audit(r, "reissue-certificate", "extender", e.ID, e.Certificate, info)
	writeJSON(w, http.StatusOK, extenderWithCertificate{ID: e.ID, Certificate: certPEM, PrivateKey: keyPEM, Info: info})
	return nil
}

func (a *API) getExtender(w http.ResponseWriter, r *http.Request) error {
	e, err := a.Store.Extender(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.freshStatus(e))
	return nil
}

func (a *API) updateExtender(w http.ResponseWriter, r *http.Request) error {
	e, err := a.Store.Extender(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	before := *e
	var in extenderInput
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := applyExtender(&in, e); err != nil {
		return err
	}
	if !strings.EqualFold(e.RoutingPrefix, before.RoutingPrefix) {
		if err := a.mustHoldToServePrefix(r, e.RoutingPrefix, "routing_prefix"); err != nil {
			return err
		}
	}
	if err := a.Store.UpdateExtender(r.Context(), e, principal(r.Context()).Name); err != nil {
		return err
	}
	if !e.Enabled || e.RoutingPrefix != before.RoutingPrefix {
		// A live session carries the old prefix and the old enabled state; the agent reconnects under the new.
		a.disconnectExtender(e.ID)
	}
	a.audit(r, "update", "extender", e.ID, &before, e)
	writeJSON(w, http.StatusOK, e)
	return nil
}

func (a *API) deleteExtender(w http.ResponseWriter, r *http.Request) error {
	e, err := a.Store.Extender(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := a.Store.DeleteExtender(r.Context(), e.ID); err != nil {
		return err
	}
	a.disconnectExtender(e.ID)
	a.audit(r, "delete", "extender", e.ID, e, nil)
	w.WriteHeader(http.StatusOK)
	return nil
}

// rotateExtenderToken issues a new enrolment token; the old one is refused at once and its sessions close.
func (a *API) rotateExtenderToken(w http.ResponseWriter, r *http.Request) error {
	e, err := a.Store.Extender(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if e.Authentication == model.ExtenderAuthCertificate {
		return badRequest("authentication", "this extender authenticates with a client certificate; issue a new one with POST .../certificate")
	}
	if err := a.mustHoldToServePrefix(r, e.RoutingPrefix, "token"); err != nil {
		return err
	}
	token := newExtenderToken()
	if err := a.Store.RotateExtenderToken(r.Context(), e.ID, token, principal(r.Context()).Name); err != nil {
		return err
	}
	a.disconnectExtender(e.ID)
	a.audit(r, "rotate-token", "extender", e.ID, nil, nil)
	writeJSON(w, http.StatusOK, extenderWithToken{ID: e.ID, Token: token})
	return nil
}

func (a *API) disconnectExtender(id string) {
	if a.Extenders != nil {
		a.Extenders.Disconnect(id)
	}
}
