package serviceapi

import (
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/ca"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"gopkg.in/yaml.v3"
)

// Version is the Gatehouse version reported by status; the build sets it.
var Version = "dev"

type confResponse struct {
	Addresses          []string `json:"addresses"`
	CACertificate      ca.Info  `json:"ca_certificate"`
	CACertificateChain string   `json:"ca_certificate_chain"`
}

// conf is GET /api-proxy/api/v1/conf: what a client needs to use the proxy.
func (a *API) conf(w http.ResponseWriter, r *http.Request) error {
	addrs, err := a.proxyAddresses(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, confResponse{Addresses: addrs, CACertificate: a.CA.Info(), CACertificateChain: a.CA.ChainPEM()})
	return nil
}

// proxyAddresses are the configured public addresses, or the proxy's listen port on the host the caller used to
// reach this API (the best guess at an address that works from where the caller is).
func (a *API) proxyAddresses(r *http.Request) ([]string, error) {
	s, err := a.Store.Settings(r.Context())
	if err != nil {
		return nil, err
	}
	if len(s.PublicAddresses) > 0 {
		return s.PublicAddresses, nil
	}
	host, port := "", "20080"
	if h, p, err := net.SplitHostPort(a.ProxyAddress); err == nil {
		host, port = h, p
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = r.Host
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
	}
	return []string{net.JoinHostPort(host, port)}, nil
}

func (a *API) status(w http.ResponseWriter, r *http.Request) error {
	out := map[string]any{"status": "ok", "version": Version, "database": a.Store.Dialect()}
	if err := a.Store.Ping(r.Context()); err != nil {
		out["status"] = "degraded"
		out["database_error"] = err.Error()
	}
	if a.Status != nil {
		for k, v := range a.Status(r.Context()) {
			out[k] = v
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getSettings(w http.ResponseWriter, r *http.Request) error {
	s, err := a.Store.Settings(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s)
	return nil
}

// putSettings decodes over the current settings, so a field left out keeps its value, then validates the whole.
func (a *API) putSettings(w http.ResponseWriter, r *http.Request) error {
	before, err := a.Store.Settings(r.Context())
	if err != nil {
		return err
	}
	s := before
	s.PublicAddresses = append([]string(nil), before.PublicAddresses...)
	if err := decode(r, &s); err != nil {
		return err
	}
	if s.PublicAddresses == nil {
		s.PublicAddresses = []string{}
	}
	if s.RecordingRedactHeaders == nil {
		s.RecordingRedactHeaders = []string{}
	}
	if err := s.Validate(); err != nil {
		return err
	}
	if err := a.mustHoldToMoveProxy(r, before, s); err != nil {
		return err
	}
	if err := a.Store.SaveSettings(r.Context(), s); err != nil {
		return err
	}
	a.audit(r, "update", "settings", "api-proxy", before, s)
	writeJSON(w, http.StatusOK, s)
	return nil
}

// mustHoldToMoveProxy refuses a change of public_addresses unless the caller holds every permission. It is the
// proxy address users' clients are told to use (conf, the CLI, the console's snippets), so whoever sets it can
// steer every user's requests and proxy secrets to a host of theirs: more than settings-manage may hand out. Other
// settings, and public_addresses sent back unchanged, are settings-manage's.
func (a *API) mustHoldToMoveProxy(r *http.Request, before, after model.Settings) error {
	if slices.Equal(before.PublicAddresses, after.PublicAddresses) {
		return nil
	}
	err := a.mustHold(r, "public_addresses", auth.AllPermissions)
	var e *Error
	if errors.As(err, &e) {
		e.Message = "changing public_addresses, the proxy address users' clients are told to use, needs every permission (a superuser); missing: " +
			strings.Join(missingOf(e.Details), ", ")
	}
	return err
}

// missingOf lists the permissions of NOT_HELD details.
func missingOf(details []errorDetail) []string {
	out := make([]string, 0, len(details))
	for _, d := range details {
		out = append(out, d.Property)
	}
	return out
}

// errNotOwner refuses a secret to anyone but the credential's owner: whoever could read it could act as the
// owner, and the trail would show the owner.
var errNotOwner = &Error{Status: http.StatusForbidden, Code: "FORBIDDEN",
	Message: "only the credential's owner can read its secret; administrators can rotate or delete the credential"}

// secretHandover is how long after creating a credential for someone else its creator may still fetch the secret
// to hand it over. The handover also ends at the credential's first use or first change (a rotation included), so
// a secret that is in use, or that an administrator rotated, is only ever readable by its owner.
const secretHandover = 10 * time.Minute

// handoverOpen reports whether p created c for its owner a moment ago and may fetch the secret to hand it over:
// the secret is shown to its creator at creation, and only to the owner after that.
func (a *API) handoverOpen(p *Principal, c *model.ProxyCredential) bool {
	return p.Name == c.Author && p.Permissions.Has(auth.APIProxyCredentialsManage) && c.LastUsed == nil &&
		c.Updated.Equal(c.Created) && a.now().Sub(c.Created) < secretHandover
}

// credentialSecret is GET .../client-credentials/{id}/secret: the secret as text, or ?format=kubeconfig. Only the
// owner may read it, whatever other permissions the caller holds, except for its creator's handover right after
// creation (handoverOpen).
func (a *API) credentialSecret(w http.ResponseWriter, r *http.Request) error {
	_, c, err := a.ownedCredential(r)
	if err != nil {
		return err
	}
	if p := principal(r.Context()); (p.Kind != auth.KindUser || p.ID != c.UserID) && !a.handoverOpen(p, c) {
		a.auditRefused(r, "read-secret", "api-proxy-credential", c.ID, "not the owner")
		return errNotOwner
	}
	a.audit(r, "read-secret", "api-proxy-credential", c.ID, nil, map[string]any{"format": r.URL.Query().Get("format")})
	switch f := r.URL.Query().Get("format"); f {
	case "", "text", "raw": // raw is PrivX's name for the bare secret
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write([]byte(c.Secret))
		return nil
	case "kubeconfig":
		t, err := a.Store.Target(r.Context(), c.TargetID)
		if err != nil {
			return err
		}
		addrs, err := a.proxyAddresses(r)
		if err != nil {
			return err
		}
		b, err := kubeconfig(t, c, addrs[0], a.CA.ChainPEM())
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/yaml")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(b)
		return nil
	default:
		return badRequest("format", "format must be text, raw or kubeconfig")
	}
}

// kubeconfig renders a kubeconfig that sends kubectl through the proxy to the target's first https endpoint.
func kubeconfig(t *model.Target, c *model.ProxyCredential, proxyAddr, caPEM string) ([]byte, error) {
	server := ""
	for _, e := range t.AuthorizedEndpoints {
		if strings.HasPrefix(e.Host, "*") {
			continue
		}
		scheme := "https"
		if len(e.Protocols) == 1 && e.Protocols[0] == "http" {
			scheme = "http"
		}
		server = scheme + "://" + e.Host
		break
	}
	if server == "" {
		return nil, badRequest("format", "the target has no endpoint with a concrete host to use as the cluster server")
	}
	name := "gatehouse-" + t.Name
	doc := map[string]any{
		"apiVersion": "v1",
		"kind":       "Config",
		"clusters": []any{map[string]any{"name": name, "cluster": map[string]any{
			"server":                     server,
			"proxy-url":                  "http://" + proxyAddr,
			"certificate-authority-data": base64.StdEncoding.EncodeToString([]byte(caPEM)),
		}}},
		"users":           []any{map[string]any{"name": name + "-" + c.Name, "user": map[string]any{"token": c.Secret}}},
		"contexts":        []any{map[string]any{"name": name, "context": map[string]any{"cluster": name, "user": name + "-" + c.Name}}},
		"current-context": name,
	}
	return yaml.Marshal(doc)
}
