package serviceapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
)

// myTargetView is an API target as its users see it: what to call and how, never how Gatehouse authenticates to it
// (credential type, trust anchors) or which roles grant it.
type myTargetView struct {
	ID                    string            `json:"id"`
	Name                  string            `json:"name"`
	Comment               string            `json:"comment,omitempty"`
	Tags                  []string          `json:"tags"`
	AuthorizedEndpoints   []myEndpointView  `json:"authorized_endpoints"`
	UnauthorizedEndpoints []policy.Endpoint `json:"unauthorized_endpoints"`
	Disabled              bool              `json:"disabled"`
	AuditEnabled          bool              `json:"audit_enabled"`
}

// myEndpointView leaves out the NAT host: where the proxy really connects is the admin's business.
type myEndpointView struct {
	Host                 string   `json:"host"`
	Protocols            []string `json:"protocols"`
	Methods              []string `json:"methods"`
	Paths                []string `json:"paths"`
	AllowUnauthenticated bool     `json:"allow_unauthenticated"`
}

// myTargets is GET /api-proxy/api/v1/users/current/api-targets: the targets the calling user holds a role of, so a
// user without api-targets-view can still find what they may use. filter, offset and limit work as on every list.
func (a *API) myTargets(w http.ResponseWriter, r *http.Request) error {
	p := principal(r.Context())
	if p.Kind != auth.KindUser {
		return badRequest("user_id", "API clients have no targets of their own; list /api-targets instead")
	}
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	all, err := a.Store.AllTargets(r.Context())
	if err != nil {
		return err
	}
	var hits []*model.Target
	for _, t := range all {
		if holdsTargetRole(p.Roles, t) && (opts.Filter == "" || containsFold(t.Name, opts.Filter) || containsFold(t.Comment, opts.Filter)) {
			hits = append(hits, t)
		}
	}
	slices.SortStableFunc(hits, func(x, y *model.Target) int { return strings.Compare(x.Name, y.Name) })
	total := len(hits)
	limit := opts.Limit
	if limit <= 0 {
		limit = 50
	}
	hits = hits[min(opts.Offset, total):min(opts.Offset+limit, total)]
	views := make([]myTargetView, 0, len(hits))
	for _, t := range hits {
		v := myTargetView{ID: t.ID, Name: t.Name, Comment: t.Comment, Tags: t.Tags, UnauthorizedEndpoints: t.UnauthorizedEndpoints,
			Disabled: t.Disabled, AuditEnabled: t.AuditEnabled, AuthorizedEndpoints: make([]myEndpointView, 0, len(t.AuthorizedEndpoints))}
		for _, e := range t.AuthorizedEndpoints {
			v.AuthorizedEndpoints = append(v.AuthorizedEndpoints, myEndpointView{Host: e.Host, Protocols: e.Protocols, Methods: e.Methods,
				Paths: e.Paths, AllowUnauthenticated: e.AllowUnauthenticated})
		}
		views = append(views, v)
	}
	writeJSON(w, http.StatusOK, newList(views, total))
	return nil
}
