package serviceapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/directory"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

type roleInput struct {
	Name        *string  `json:"name"`
	Comment     *string  `json:"comment"`
	Permissions []string `json:"permissions"`
	// SourceRules, when present, replaces the role's membership rules; left out of a PUT, they stay. Both
	// Gatehouse's list and PrivX's rule tree are read (see sourceRules).
	SourceRules sourceRules `json:"source_rules"`
	ID          string      `json:"id"`
	Created     string      `json:"created"`
	Author      string      `json:"author"`
	Updated     string      `json:"updated"`
	UpdatedBy   string      `json:"updated_by"`
	privxRoleFields
}

// privxRoleFields are the PrivX role fields Gatehouse has no feature for. Read-only ones (membership counts and
// flags, which only describe a role in an answer) are read and ignored like created; the rest must be zero.
type privxRoleFields struct {
	Explicit       json.RawMessage `json:"explicit" readonly:"true"`
	Implicit       json.RawMessage `json:"implicit" readonly:"true"`
	System         json.RawMessage `json:"system" readonly:"true"`
	MemberCount    json.RawMessage `json:"member_count" readonly:"true"`
	ExplicitCount  json.RawMessage `json:"explicit_count" readonly:"true"`
	PrivXUpdatedBy json.RawMessage `json:"updatedby" readonly:"true"`
	OwnerSource    json.RawMessage `json:"owner_src" readonly:"true"`
	Deleted        json.RawMessage `json:"deleted" readonly:"true"`
	Type           json.RawMessage `json:"type" why:"Gatehouse roles have no type (AWS roles are not supported)"`
	ARN            json.RawMessage `json:"arn" why:"AWS roles are not supported"`
	AWSSource      json.RawMessage `json:"source" why:"AWS roles are not supported"`
	GrantType      json.RawMessage `json:"grant_type" why:"a role is granted for a time through a workflow request (/workflow-engine/api/v1/requests), not on the role"`
	GrantStart     json.RawMessage `json:"grant_start" why:"a role is granted for a time through a workflow request (/workflow-engine/api/v1/requests), not on the role"`
	GrantEnd       json.RawMessage `json:"grant_end" why:"a role is granted for a time through a workflow request (/workflow-engine/api/v1/requests), not on the role"`
	GrantPeriods   json.RawMessage `json:"grant_validity_periods" why:"a role is granted for a time through a workflow request (/workflow-engine/api/v1/requests), not on the role"`
	FloatingLength json.RawMessage `json:"floating_length" why:"a role is granted for a floating time through a workflow request (/workflow-engine/api/v1/requests), not on the role"`
	Tags           json.RawMessage `json:"tags" why:"roles have no tags in Gatehouse"`
	AccessGroupID  json.RawMessage `json:"access_group_id" why:"Gatehouse has no access groups"`
	PrincipalKeys  json.RawMessage `json:"principal_public_key_strings" why:"SSH principal keys are not supported"`
	PermitAgent    json.RawMessage `json:"permit_agent" why:"SSH agent forwarding is not supported"`
	Context        json.RawMessage `json:"context" why:"contextual role limits are not supported"`
}

func (in *roleInput) apply(role *model.Role) error {
	if err := refuseUnsupported(&in.privxRoleFields); err != nil {
		return err
	}
	if in.Name != nil {
		role.Name = strings.TrimSpace(*in.Name)
	}
	if role.Name == "" || len(role.Name) > 128 {
		return badRequest("name", "name is required and must be at most 128 bytes")
	}
	if in.Comment != nil {
		role.Comment = *in.Comment
	}
	if in.Permissions != nil {
		for i, p := range in.Permissions {
			if !auth.ValidPermission(p) {
				return badRequest(fieldIndex("permissions", i), "unknown permission "+p)
			}
		}
		role.Permissions = dedupeStrings(in.Permissions)
	}
	return nil
}

func (a *API) listRoles(w http.ResponseWriter, r *http.Request) error {
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	roles, total, err := a.Store.ListRoles(r.Context(), opts)
	if err != nil {
		return err
	}
	out, err := a.withRules(r.Context(), roles...)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(out, total))
	return nil
}

func (a *API) createRole(w http.ResponseWriter, r *http.Request) error {
	var in roleInput
	if err := decode(r, &in); err != nil {
		return err
	}
	role := &model.Role{Permissions: []string{}}
	after, err := a.saveRole(r, &in, role, a.Store.CreateRole)
	if err != nil {
		return err
	}
	a.audit(r, "create", "role", role.ID, nil, after)
	writeJSON(w, http.StatusCreated, created{ID: role.ID})
	return nil
}

// saveRole applies the input to role, validates its rules, writes it with write (create or update) and then its
// rules, and returns the role as responses show it.
func (a *API) saveRole(r *http.Request, in *roleInput, role *model.Role, write func(context.Context, *model.Role, string) error) (any, error) {
	if err := in.apply(role); err != nil {
		return nil, err
	}
	if err := a.mustHold(r, "permissions", role.Permissions); err != nil {
		return nil, err
	}
	rules, err := a.ruleInputs(r.Context(), in.SourceRules.rules)
	if err != nil {
		return nil, err
	}
	if err := write(r.Context(), role, principal(r.Context()).Name); err != nil {
		return nil, err
	}
	if rules != nil {
		if err := a.Store.SetRoleRules(r.Context(), role.ID, rules); err != nil {
			return nil, err
		}
	}
	out, err := a.withRules(r.Context(), role)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

func (a *API) getRole(w http.ResponseWriter, r *http.Request) error {
	role, err := a.Store.Role(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	out, err := a.withRules(r.Context(), role)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out[0])
	return nil
}

func (a *API) updateRole(w http.ResponseWriter, r *http.Request) error {
	role, err := a.Store.Role(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	before, err := a.withRules(r.Context(), role)
	if err != nil {
		return err
	}
	// Editing a role (its permissions or who gets it through rules) needs what it gives now and after.
	if err := a.mustHold(r, "id", role.Permissions); err != nil {
		return err
	}
	var in roleInput
	if err := decode(r, &in); err != nil {
		return err
	}
	after, err := a.saveRole(r, &in, role, a.Store.UpdateRole)
	if err != nil {
		return err
	}
	a.audit(r, "update", "role", role.ID, before[0], after)
	writeJSON(w, http.StatusOK, after)
	return nil
}

func (a *API) deleteRole(w http.ResponseWriter, r *http.Request) error {
	role, err := a.Store.Role(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := a.mustHold(r, "id", role.Permissions); err != nil {
		return err
	}
	if err := a.Store.DeleteRole(r.Context(), role.ID); err != nil {
		return err
	}
	a.audit(r, "delete", "role", role.ID, role, nil)
	w.WriteHeader(http.StatusOK)
	return nil
}

type userRole struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Explicit bool   `json:"explicit"`
	Implicit bool   `json:"implicit"`
	// A role held only through an approved workflow request shows its grant, as PrivX shows a timed membership.
	GrantType      string     `json:"grant_type,omitempty"`
	GrantStart     *time.Time `json:"grant_start,omitempty"`
	GrantEnd       *time.Time `json:"grant_end,omitempty"`
	FloatingLength int64      `json:"floating_length,omitempty"`
}

// roleStoreUser is GET /role-store/api/v1/users/{id}: a user with its roles and permissions, PrivX's role-store
// view of a user.
type roleStoreUser struct {
	ID          string     `json:"id"`
	Principal   string     `json:"principal"`
	Source      string     `json:"source"`
	FullName    string     `json:"full_name,omitempty"`
	Email       string     `json:"email,omitempty"`
	Roles       []userRole `json:"roles"`
	Permissions []string   `json:"permissions"`
}

func (a *API) roleStoreUser(w http.ResponseWriter, r *http.Request) error {
	u, err := a.Store.User(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	roles, err := a.userRoles(r.Context(), u.ID)
	if err != nil {
		return err
	}
	held, err := a.Store.UserRoles(r.Context(), u.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, roleStoreUser{ID: u.ID, Principal: u.Username, Source: u.Source, FullName: u.FullName,
		Email: u.Email, Roles: roles, Permissions: dedupeStrings(rolesPermissions(held))})
	return nil
}

// userRoles are the roles a user holds, each marked explicit (granted) or implicit (by a source rule).
func (a *API) userRoles(ctx context.Context, id string) ([]userRole, error) {
	roles, err := a.Store.UserRoles(ctx, id)
	if err != nil {
		return nil, err
	}
	explicit, err := a.Store.ExplicitRoleIDs(ctx, id)
	if err != nil {
		return nil, err
	}
	grants, err := a.Store.WorkflowRoleGrants(ctx, id)
	if err != nil {
		return nil, err
	}
	out := make([]userRole, 0, len(roles))
	for _, role := range roles {
		e := slices.Contains(explicit, role.ID)
		ur := userRole{ID: role.ID, Name: role.Name, Explicit: e, Implicit: !e}
		if g := grants[role.ID]; g != nil && !e {
			ur.Implicit = false
			ur.GrantType, ur.GrantStart, ur.GrantEnd, ur.FloatingLength = g.GrantType, g.GrantStart, g.GrantEnd, g.FloatingLength
		}
		out = append(out, ur)
	}
	return out, nil
}

func (a *API) getUserRoles(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := a.Store.User(r.Context(), id); err != nil {
		return err
	}
	out, err := a.userRoles(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(out, len(out)))
	return nil
}

// setUserRoles is PUT /role-store/api/v1/users/{id}/roles with [{"id"}]: it replaces the explicit grants.
func (a *API) setUserRoles(w http.ResponseWriter, r *http.Request) error {
	// The SDK sends whole role objects; only the id grants, the rest describes the role and is not applied here.
	var in []roleInput
	if err := decode(r, &in); err != nil {
		return err
	}
	id := r.PathValue("id")
	before, err := a.Store.UserRoles(r.Context(), id)
	if err != nil {
		return err
	}
	explicit, err := a.Store.ExplicitRoleIDs(r.Context(), id)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(in))
	var granted []string
	for i, ref := range in {
		role, err := a.Store.Role(r.Context(), ref.ID)
		if errors.Is(err, store.ErrNotExist) {
			return badRequest(fieldIndex("", i)+".id", "role "+ref.ID+" does not exist")
		} else if err != nil {
			return err
		}
		if field := ref.describesHolding(); field != "" {
			// A role read back from the user's roles with explicit false (held by a source rule) or a grant_type
			// (held through a workflow request, for its window) describes how the user holds it; writing it back
			// must leave it so, not turn a timed grant into a permanent one.
			held := slices.ContainsFunc(before, func(b *model.Role) bool { return b.ID == ref.ID })
			if held && !slices.Contains(explicit, ref.ID) {
				continue
			}
			return badRequest(fieldIndex("", i)+"."+field, "role "+role.Name+" is not held by this user through a source rule or a workflow grant, so "+
				field+" cannot describe it: grant it with explicit true (or leave "+field+" out), or request it through a workflow")
		}
		ids = append(ids, ref.ID)
		granted = append(granted, role.Permissions...)
	}
	// The caller must hold what the user holds now (it may take it away) and what the new roles give.
	if err := a.mustHold(r, "id", rolesPermissions(before), granted); err != nil {
		return err
	}
	if err := a.Store.SetUserRoles(r.Context(), id, ids); err != nil {
		return err
	}
	after, err := a.Store.UserRoles(r.Context(), id)
	if err != nil {
		return err
	}
	a.audit(r, "set-roles", "user", id, map[string]any{"roles": roleNames(before)}, map[string]any{"roles": roleNames(after)})
	w.WriteHeader(http.StatusOK)
	return nil
}

// describesHolding names the field of a user-role entry that says the user holds the role otherwise than by an
// explicit grant (explicit false, or a workflow's grant_type), or "" for an explicit grant.
func (in *roleInput) describesHolding() string {
	if v := strings.TrimSpace(string(in.Explicit)); v == "false" {
		return "explicit"
	}
	if v := strings.TrimSpace(string(in.GrantType)); v != "" && v != "null" && v != `""` {
		return "grant_type"
	}
	return ""
}

func roleNames(roles []*model.Role) []string {
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		out = append(out, r.Name)
	}
	return out
}

func dedupeStrings(in []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// sourceRule is a role membership rule in the API: members of a directory group of a source, or users carrying a
// tag (from one source, or from any when source is left out).
type sourceRule struct {
	Source  *model.Ref `json:"source,omitempty"`
	GroupDN string     `json:"group_dn,omitempty"`
	Tag     string     `json:"tag,omitempty"`
}

// roleOutput is a role with its rules, as every role answer shows it.
type roleOutput struct {
	model.Role
	SourceRules ruleTree `json:"source_rules"`
}

// withRules pairs roles with their rules (and the names of the sources the rules name).
func (a *API) withRules(ctx context.Context, roles ...*model.Role) ([]roleOutput, error) {
	rules, err := a.Store.RoleRules(ctx, "")
	if err != nil {
		return nil, err
	}
	names, err := a.sourceNames(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]roleOutput, 0, len(roles))
	for _, role := range roles {
		o := roleOutput{Role: *role, SourceRules: ruleTree{Type: "OR", Rules: []ruleTree{}}}
		for _, rule := range rules {
			if rule.RoleID == role.ID {
				o.SourceRules.Rules = append(o.SourceRules.Rules, ruleOutput(rule, names).tree())
			}
		}
		out = append(out, o)
	}
	return out, nil
}

func ruleOutput(rule store.RoleRule, sourceNames map[string]string) sourceRule {
	out := sourceRule{GroupDN: rule.GroupDN, Tag: rule.Tag}
	if rule.SourceID != "" {
		out.Source = &model.Ref{ID: rule.SourceID, Name: sourceNames[rule.SourceID]}
	}
	return out
}

func (a *API) sourceNames(ctx context.Context) (map[string]string, error) {
	sources, err := a.Store.ListSources(ctx)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(sources))
	for _, s := range sources {
		names[s.ID] = s.Name
	}
	return names, nil
}

// ruleInputs validates the rules of a role body; nil (source_rules left out) means no change.
func (a *API) ruleInputs(ctx context.Context, in []sourceRule) ([]store.RoleRule, error) {
	if in == nil {
		return nil, nil
	}
	names, err := a.sourceNames(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]store.RoleRule, 0, len(in))
	for i, r := range in {
		field := fieldIndex("source_rules", i)
		var rule store.RoleRule
		if r.Source != nil {
			if _, ok := names[r.Source.ID]; !ok {
				return nil, badRequest(field+".source.id", "source "+r.Source.ID+" does not exist")
			}
			rule.SourceID = r.Source.ID
		}
		switch {
		case (r.GroupDN == "") == (r.Tag == ""):
			return nil, badRequest(field, "a rule needs exactly one of group_dn and tag")
		case r.GroupDN != "":
			if rule.SourceID == "" {
				return nil, badRequest(field+".source", "a group_dn rule needs the source the group is in")
			}
			// An OIDC provider names groups as its groups claim does; directories name them by DN.
			if st, err := a.Store.Source(ctx, rule.SourceID); err != nil {
				return nil, err
			} else if st.Type != directory.TypeOIDC {
				if _, err := ldap.ParseDN(r.GroupDN); err != nil {
					return nil, badRequest(field+".group_dn", "group_dn must be a distinguished name")
				}
			} else if strings.TrimSpace(r.GroupDN) == "" {
				return nil, badRequest(field+".group_dn", "group_dn must name a group")
			}
			rule.GroupDN = r.GroupDN
		default:
			rule.Tag = strings.TrimSpace(r.Tag)
		}
		out = append(out, rule)
	}
	return out, nil
}

// roleMember is one holder of a role: explicit says whether it was granted directly, rules which membership
// rules grant it too.
type roleMember struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Principal repeats Name under PrivX's key for a user's login name.
	Principal string       `json:"principal"`
	Kind      string       `json:"type"`
	Explicit  bool         `json:"explicit"`
	Rules     []sourceRule `json:"rules,omitempty"`
}

// roleMembers is GET /role-store/api/v1/roles/{id}/members: explicit grants and rule grants, saying which rule
// granted each.
func (a *API) roleMembers(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	explicit, err := a.Store.RoleMembers(r.Context(), id)
	if err != nil {
		return err
	}
	viaRules, err := a.Store.RoleRuleMembers(r.Context(), id)
	if err != nil {
		return err
	}
	names, err := a.sourceNames(r.Context())
	if err != nil {
		return err
	}
	out := make([]roleMember, 0, len(explicit)+len(viaRules))
	index := map[string]int{}
	for _, m := range explicit {
		index[m.Kind+":"+m.ID] = len(out)
		out = append(out, roleMember{ID: m.ID, Name: m.Name, Principal: m.Name, Kind: m.Kind, Explicit: true})
	}
	for _, m := range viaRules {
		key := "user:" + m.UserID
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, roleMember{ID: m.UserID, Name: m.Username, Principal: m.Username, Kind: "user"})
		}
		out[i].Rules = append(out[i].Rules, ruleOutput(m.Rule, names))
	}
	slices.SortStableFunc(out, func(x, y roleMember) int { return strings.Compare(x.Name, y.Name) })
	page, err := pageList(r, out, func(m roleMember) string { return m.Name })
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// resolveRoles is POST /role-store/api/v1/roles/resolve with ["name", ...]: the roles of those names, as the SDK's
// ResolveRoles and terraform look roles up; a name no role has is left out, as PrivX does.
func (a *API) resolveRoles(w http.ResponseWriter, r *http.Request) error {
	var names []string
	if err := decode(r, &names); err != nil {
		return err
	}
	return a.rolesNamed(w, r, names)
}

// searchRoles is POST /role-store/api/v1/roles/search with {"name":[...]}.
func (a *API) searchRoles(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Name []string `json:"name"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if len(in.Name) == 0 {
		return a.listRoles(w, r) // no constraint: every role, paged as the list is
	}
	return a.rolesNamed(w, r, in.Name)
}

func (a *API) rolesNamed(w http.ResponseWriter, r *http.Request, names []string) error {
	var hit []*model.Role
	for offset := 0; ; offset += store.MaxLimit { // every role, however many there are
		roles, total, err := a.Store.ListRoles(r.Context(), store.ListOptions{Offset: offset, Limit: store.MaxLimit})
		if err != nil {
			return err
		}
		for _, role := range roles {
			if slices.Contains(names, role.Name) {
				hit = append(hit, role)
			}
		}
		if len(roles) == 0 || offset+len(roles) >= total {
			break
		}
	}
	out, err := a.withRules(r.Context(), hit...)
	if err != nil {
		return err
	}
	page, err := pageList(r, out, func(v roleOutput) string { return v.Name })
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}
