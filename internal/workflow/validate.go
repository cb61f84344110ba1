package workflow

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
)

// RoleLookup returns the name of the role with id, and false if there is none.
type RoleLookup func(id string) (name string, ok bool)

func fieldErr(field, format string, args ...any) *model.FieldError {
	return &model.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Validate checks a workflow as written by a client and fills in what the server decides: the action, the role
// names, and the ids of steps and approvers. A role that does not exist is refused naming the field that holds it.
func (w *Workflow) Validate(roles RoleLookup) error {
	w.Name = strings.TrimSpace(w.Name)
	if w.Name == "" {
		return fieldErr("name", "is required")
	}
	switch w.Action {
	case "", ActionGrant:
		w.Action = ActionGrant
	case "REMOVE":
		return model.NotSupported("action", "workflows that remove roles are not supported; only GRANT")
	default:
		return fieldErr("action", "must be GRANT")
	}
	if w.CanBypassRevokeWF {
		// It only means something for REMOVE workflows, which Gatehouse does not run.
		return model.NotSupported("can_bypass_revoke_workflow", "revoke workflows are not supported")
	}
	if len(w.GrantTypes) == 0 {
		return fieldErr("grant_types", "needs at least one of PERMANENT, TIME_RESTRICTED, FLOATING")
	}
	for i, g := range w.GrantTypes {
		if g != GrantPermanent && g != GrantTimeRestricted && g != GrantFloating {
			return fieldErr(fmt.Sprintf("grant_types[%d]", i), "must be PERMANENT, TIME_RESTRICTED or FLOATING")
		}
		if slices.Index(w.GrantTypes, g) != i {
			return fieldErr(fmt.Sprintf("grant_types[%d]", i), "%s is listed twice", g)
		}
	}
	if err := maxFor(w, GrantTimeRestricted, "max_time_restricted_duration", w.MaxTimeRestrictedDuration); err != nil {
		return err
	}
	if err := maxFor(w, GrantFloating, "max_floating_duration", w.MaxFloatingDuration); err != nil {
		return err
	}
	if w.MaxActiveRequests < 0 {
		return fieldErr("max_active_requests", "must not be negative")
	}
	if err := roleList("target_roles", w.TargetRoles, roles); err != nil {
		return err
	}
	if err := roleList("requester_roles", w.RequesterRoles, roles); err != nil {
		return err
	}
	if len(w.Steps) == 0 || len(w.Steps) > MaxSteps {
		return fieldErr("steps", "needs 1 to %d approval steps", MaxSteps)
	}
	for i := range w.Steps {
		s := &w.Steps[i]
		field := fmt.Sprintf("steps[%d]", i)
		if s.Match != MatchAll && s.Match != MatchAny {
			return fieldErr(field+".match", "must be all or any")
		}
		if len(s.Approvers) == 0 {
			return fieldErr(field+".approvers", "needs at least one approver")
		}
		s.ID = fmt.Sprintf("step-%d", i+1)
		for j := range s.Approvers {
			a := &s.Approvers[j]
			af := fmt.Sprintf("%s.approvers[%d].role.id", field, j)
			if err := fillRole(af, &a.Role, roles); err != nil {
				return err
			}
			a.ID = fmt.Sprintf("%s-approver-%d", s.ID, j+1)
		}
	}
	return nil
}

// maxFor requires a positive maximum for a grant type the workflow offers, and refuses one it would ignore.
func maxFor(w *Workflow, grant, field string, v int64) error {
	offered := slices.Contains(w.GrantTypes, grant)
	switch {
	case v < 0:
		return fieldErr(field, "must not be negative")
	case offered && v == 0:
		return fieldErr(field, "is required when grant_types has %s", grant)
	case !offered && v != 0:
		return fieldErr(field, "applies only when grant_types has %s", grant)
	}
	return nil
}

func roleList(field string, list []Role, roles RoleLookup) error {
	if len(list) == 0 {
		return fieldErr(field, "needs at least one role")
	}
	for i := range list {
		f := fmt.Sprintf("%s[%d].id", field, i)
		if err := fillRole(f, &list[i], roles); err != nil {
			return err
		}
		for j := range i {
			if list[j].ID == list[i].ID {
				return fieldErr(f, "role %s is listed twice", list[i].ID)
			}
		}
	}
	return nil
}

func fillRole(field string, r *Role, roles RoleLookup) error {
	if r.ID == "" {
		return fieldErr(field, "is required")
	}
	name, ok := roles(r.ID)
	if !ok {
		return &model.FieldError{Field: field, Msg: "role " + r.ID + " does not exist", Code: "BAD_REFERENCE"}
	}
	r.Name, r.Deleted = name, false
	return nil
}

// Principal is a user acting on requests, with the ids of the roles it holds now.
type Principal struct {
	ID, Name string
	RoleIDs  []string
}

func (p Principal) holds(roleID string) bool { return slices.Contains(p.RoleIDs, roleID) }

func (p Principal) ref() *User { return &User{ID: p.ID, DisplayName: p.Name} }

// NewRequest checks a request as written by requester against its workflow and returns the request to store,
// pending at its first step. target is the user who would get the role (the requester unless onBehalf); the
// caller says whether the requester may request on behalf of others.
func NewRequest(w *Workflow, in *Request, requester Principal, target *User, onBehalf bool, now time.Time) (*Request, error) {
	if in.RequestedRole == nil || in.RequestedRole.ID == "" {
		return nil, fieldErr("requested_role.id", "is required")
	}
	i := slices.IndexFunc(w.TargetRoles, func(r Role) bool { return r.ID == in.RequestedRole.ID })
	if i < 0 {
		return nil, fieldErr("requested_role.id", "workflow %s does not grant role %s", w.Name, in.RequestedRole.ID)
	}
	if !slices.ContainsFunc(w.RequesterRoles, func(r Role) bool { return requester.holds(r.ID) }) {
		return nil, &RuleError{Rule: RuleNotRequester, Field: "workflow",
			Msg: "you hold none of the requester roles of workflow " + w.Name}
	}
	if target.ID != requester.ID && !onBehalf {
		return nil, &RuleError{Rule: RuleOnBehalf, Field: "target_user.id",
			Msg: "requesting a role for another user needs the workflows-requests-on-behalf permission"}
	}
	switch in.Action {
	case "", ActionGrant:
	default:
		return nil, model.NotSupported("action", "only GRANT requests are supported")
	}
	if in.Status != "" && in.Status != StatusPending {
		return nil, fieldErr("status", "is set by the workflow engine")
	}
	if len(in.Steps) > 0 {
		return nil, fieldErr("steps", "are copied from the workflow; leave them out")
	}
	if !slices.Contains(w.GrantTypes, in.GrantType) {
		return nil, fieldErr("grant_type", "must be one of %s", strings.Join(w.GrantTypes, ", "))
	}
	if err := checkWindow(w, in, now); err != nil {
		return nil, err
	}
	if w.RequiresJustification && strings.TrimSpace(in.RequestJustification) == "" {
		return nil, fieldErr("request_justification", "is required by workflow %s", w.Name)
	}
	r := &Request{
		Created: now, Updated: now, Author: requester.Name, UpdatedBy: requester.Name,
		Name: w.Name, WorkflowID: w.ID, Requester: requester.ref(), RequestedRole: &Role{ID: w.TargetRoles[i].ID, Name: w.TargetRoles[i].Name},
		RequestJustification: in.RequestJustification, GrantType: in.GrantType, GrantStart: in.GrantStart, GrantEnd: in.GrantEnd,
		FloatingLength: in.FloatingLength, TargetUser: target, Action: ActionGrant, Status: StatusPending,
		Comment: in.Comment, ApproverCanRevoke: true,
	}
	for _, s := range w.Steps {
		rs := RequestStep{ID: s.ID, Name: s.Name, Match: s.Match}
		for _, a := range s.Approvers {
			rs.Approvers = append(rs.Approvers, RequestApprover{ID: a.ID, Role: a.Role, Decision: DecisionPending})
		}
		r.Steps = append(r.Steps, rs)
	}
	return r, nil
}

// checkWindow enforces the fields each grant type takes and the workflow's maximum durations.
func checkWindow(w *Workflow, in *Request, now time.Time) error {
	hasWindow := in.GrantStart != nil || in.GrantEnd != nil
	switch in.GrantType {
	case GrantTimeRestricted:
		if in.GrantStart == nil {
			return fieldErr("grant_start", "is required for TIME_RESTRICTED")
		}
		if in.GrantEnd == nil {
			return fieldErr("grant_end", "is required for TIME_RESTRICTED")
		}
		if !in.GrantEnd.After(*in.GrantStart) {
			return fieldErr("grant_end", "must be after grant_start")
		}
		if !in.GrantEnd.After(now) {
			return fieldErr("grant_end", "is in the past")
		}
		if max := time.Duration(w.MaxTimeRestrictedDuration) * TimeRestrictedUnit; in.GrantEnd.Sub(*in.GrantStart) > max {
			return fieldErr("grant_end", "the window is longer than the workflow's %d days", w.MaxTimeRestrictedDuration)
		}
		if in.FloatingLength != 0 {
			return fieldErr("floating_length", "applies only to FLOATING")
		}
	case GrantFloating:
		if hasWindow {
			return fieldErr("grant_start", "applies only to TIME_RESTRICTED")
		}
		if in.FloatingLength <= 0 {
			return fieldErr("floating_length", "is required for FLOATING (hours)")
		}
		if in.FloatingLength > w.MaxFloatingDuration {
			return fieldErr("floating_length", "is longer than the workflow's %d hours", w.MaxFloatingDuration)
		}
	case GrantPermanent:
		if hasWindow {
			return fieldErr("grant_start", "applies only to TIME_RESTRICTED")
		}
		if in.FloatingLength != 0 {
			return fieldErr("floating_length", "applies only to FLOATING")
		}
	}
	return nil
}
