package serviceapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/workflow"
)

// The workflow engine (/workflow-engine/api/v1): workflows, role requests, decisions and revocations, and the
// engine's settings, in PrivX's shapes. The rules are internal/workflow's and the engine internal/jit's; these
// handlers only authenticate, decode, audit and answer.

// WorkflowMail takes the SMTP part of the workflow settings for notification e-mail, refusing (with a
// *model.FieldError naming the field) what it cannot use.
type WorkflowMail func(ctx context.Context, m workflow.SMTP) error

// workflowInput is a workflow as clients write it. PrivX's SDK sends the server-set times as strings (empty on
// create), so they are accepted here as anything and ignored.
type workflowInput struct {
	workflow.Workflow
	Created json.RawMessage `json:"created"`
	Updated json.RawMessage `json:"updated"`
}

// requestInput is a role request as clients write it; server-set fields are accepted and ignored as for workflows.
type requestInput struct {
	workflow.Request
	Created              json.RawMessage `json:"created"`
	Updated              json.RawMessage `json:"updated"`
	TargetRoleRevokeTime json.RawMessage `json:"target_role_revocation_time"`
}

func (a *API) engineReady() error {
	if a.Workflows == nil {
		return &Error{Status: http.StatusNotFound, Code: "NOT_SUPPORTED", Message: "the workflow engine is not running"}
	}
	return nil
}

// requester turns the caller into a workflow principal: only users request and decide, as in PrivX.
func requester(r *http.Request) (workflow.Principal, error) {
	p := principal(r.Context())
	if p.Kind != auth.KindUser {
		return workflow.Principal{}, &Error{Status: http.StatusForbidden, Code: "FORBIDDEN", Message: "role requests and decisions are made by users, not API clients"}
	}
	wp := workflow.Principal{ID: p.ID, Name: p.Name}
	for _, role := range p.Roles {
		wp.RoleIDs = append(wp.RoleIDs, role.ID)
	}
	return wp, nil
}

// ruleCode spells a workflow rule ("self-approval") as a PrivX error code ("SELF_APPROVAL") for the error's details.
func ruleCode(rule string) string { return strings.ToUpper(strings.ReplaceAll(rule, "-", "_")) }

// ruleError answers a broken workflow rule, naming it in details.rule.
func ruleError(err error) error {
	var re *workflow.RuleError
	if !errors.As(err, &re) {
		return err
	}
	e := &Error{Status: http.StatusConflict, Code: "CONFLICT", Message: re.Error(), Property: re.Field, Details: []errorDetail{{Code: ruleCode(re.Rule), Message: re.Error(), Property: re.Field}}, Err: err}
	if re.Forbidden() {
		e.Status, e.Code = http.StatusForbidden, "FORBIDDEN"
	}
	if re.Rule == workflow.RuleWrongStep {
		e.Status, e.Code = http.StatusBadRequest, "BAD_REQUEST"
	}
	return e
}

// validWorkflow checks w against the roles that exist and the settings, and that the caller holds what the
// workflow hands out: a workflow is a standing grant of its target roles, so the delegation rule applies.
func (a *API) validWorkflow(r *http.Request, w *workflow.Workflow) error {
	roles, err := a.Workflows.Roles(r.Context())
	if err != nil {
		return err
	}
	if err := w.Validate(roles); err != nil {
		return err
	}
	set, err := a.Store.WorkflowSettings(r.Context())
	if err != nil {
		return err
	}
	if err := set.CheckApprovers(w); err != nil {
		return err
	}
	return a.mustHoldRoles(r, "target_roles", w.TargetRoles)
}

func (a *API) mustHoldRoles(r *http.Request, property string, roles []workflow.Role) error {
	refs := make([]model.Ref, 0, len(roles))
	for _, role := range roles {
		refs = append(refs, model.Ref{ID: role.ID})
	}
	perms, err := a.refsPermissions(r.Context(), refs)
	if err != nil {
		return err
	}
	return a.mustHold(r, property, perms)
}

func (a *API) listWorkflows(w http.ResponseWriter, r *http.Request) error {
	if err := a.engineReady(); err != nil {
		return err
	}
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	items, total, err := a.Store.ListWorkflows(r.Context(), opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(items, total))
	return nil
}

func (a *API) createWorkflow(w http.ResponseWriter, r *http.Request) error {
	if err := a.engineReady(); err != nil {
		return err
	}
	var in workflowInput
	if err := decode(r, &in); err != nil {
		return err
	}
	wf := in.Workflow
	if err := a.validWorkflow(r, &wf); err != nil {
		return err
	}
	if err := a.Store.CreateWorkflow(r.Context(), &wf, principal(r.Context()).Name); err != nil {
		return err
	}
	a.audit(r, "create", "workflow", wf.ID, nil, wf)
	writeJSON(w, http.StatusCreated, created{ID: wf.ID})
	return nil
}

func (a *API) getWorkflow(w http.ResponseWriter, r *http.Request) error {
	if err := a.engineReady(); err != nil {
		return err
	}
	wf, err := a.Store.Workflow(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wf)
	return nil
}

func (a *API) updateWorkflow(w http.ResponseWriter, r *http.Request) error {
	if err := a.engineReady(); err != nil {
		return err
	}
	old, err := a.Store.Workflow(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	var in workflowInput
	if err := decode(r, &in); err != nil {
		return err
	}
	wf := in.Workflow
	wf.ID = old.ID
	if err := a.validWorkflow(r, &wf); err != nil {
		return err
	}
	// Changing who may request or approve a role is handing it out as much as creating the workflow was.
	if err := a.mustHoldRoles(r, "target_roles", old.TargetRoles); err != nil {
		return err
	}
	if err := a.Store.UpdateWorkflow(r.Context(), &wf, principal(r.Context()).Name); err != nil {
		return err
	}
	a.audit(r, "update", "workflow", wf.ID, old, wf)
	writeJSON(w, http.StatusOK, wf)
	return nil
}

func (a *API) deleteWorkflow(w http.ResponseWriter, r *http.Request) error {
	if err := a.engineReady(); err != nil {
		return err
	}
	id := r.PathValue("id")
	old, err := a.Store.Workflow(r.Context(), id)
	if err != nil {
		return err
	}
	if err := a.Store.DeleteWorkflow(r.Context(), id); err != nil {
		return err
	}
	a.audit(r, "delete", "workflow", id, old, nil)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (a *API) createRequest(w http.ResponseWriter, r *http.Request) error {
	if err := a.engineReady(); err != nil {
		return err
	}
	var in requestInput
	if err := decode(r, &in); err != nil {
		return err
	}
	p, err := requester(r)
	if err != nil {
		return err
	}
	onBehalf := principal(r.Context()).Permissions.Has(auth.WorkflowsRequestsOnBehalf)
	req, err := a.Workflows.Create(r.Context(), &in.Request, p, onBehalf)
	if err != nil {
		return ruleError(err)
	}
	a.audit(r, "create", "workflow-request", req.ID, nil, req)
	writeJSON(w, http.StatusCreated, created{ID: req.ID})
	return nil
}

// Request filters, as PrivX names them.
var requestFilters = map[string]bool{"requests": true, "active_requests": true, "approvals": true, "active_approvals": true, "all": true}

// visibleRequests lists the requests filter selects for the caller, newest first: their own (requests,
// active_requests: pending ones), those they approve or approved (approvals, active_approvals: those they may
// decide now), or every request (all, which needs workflows-view).
func (a *API) visibleRequests(r *http.Request, filter string, f store.RequestFilter, keywords string) ([]*workflow.Request, error) {
	if filter == "" {
		filter = "requests"
	}
	if !requestFilters[filter] {
		return nil, badRequest("filter", "filter must be requests, active_requests, approvals, active_approvals or all")
	}
	p := principal(r.Context())
	if filter == "all" && !p.Permissions.Has(auth.WorkflowsView) {
		return nil, permissionDenied(auth.WorkflowsView)
	}
	wp, err := requester(r)
	if err != nil && filter != "all" {
		return nil, err
	}
	if filter == "requests" || filter == "active_requests" {
		f.UserID = p.ID
	}
	all, err := a.Store.ListRequests(r.Context(), f)
	if err != nil {
		return nil, err
	}
	out := []*workflow.Request{}
	for _, req := range all {
		own, approver := req.Concerns(wp)
		keep := false
		switch filter {
		case "requests":
			keep = own
		case "active_requests":
			keep = own && req.Status == workflow.StatusPending
		case "approvals":
			keep = approver
		case "active_approvals":
			keep = req.CanDecide(wp)
		case "all":
			keep = true
		}
		if keep && matchesKeywords(req, keywords) {
			out = append(out, req)
		}
	}
	return out, nil
}

func matchesKeywords(req *workflow.Request, keywords string) bool {
	if keywords == "" {
		return true
	}
	hay := strings.ToLower(strings.Join([]string{req.Name, req.RequestJustification, req.Comment, req.Status, req.GrantType,
		req.Requester.DisplayName, req.TargetUser.DisplayName, req.RequestedRole.Name}, "\n"))
	for _, k := range strings.Fields(strings.ToLower(keywords)) {
		if !strings.Contains(hay, k) {
			return false
		}
	}
	return true
}

// page answers a slice of items with offset and limit from the query; requests have one order, newest first.
func writePage(w http.ResponseWriter, r *http.Request, items []*workflow.Request) error {
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	if opts.SortKey != "" {
		return badRequest("sortkey", "requests are listed newest first; sortkey is not supported")
	}
	if opts.Limit == 0 {
		opts.Limit = store.DefaultLimit
	}
	total := len(items)
	lo := min(opts.Offset, total)
	hi := min(lo+opts.Limit, total)
	writeJSON(w, http.StatusOK, newList(items[lo:hi], total))
	return nil
}

func (a *API) listRequests(w http.ResponseWriter, r *http.Request) error {
	if err := a.engineReady(); err != nil {
		return err
	}
	items, err := a.visibleRequests(r, r.URL.Query().Get("filter"), store.RequestFilter{}, "")
	if err != nil {
		return err
	}
	return writePage(w, r, items)
}

func (a *API) searchRequests(w http.ResponseWriter, r *http.Request) error {
	if err := a.engineReady(); err != nil {
		return err
	}
	var in workflow.Search
	if err := decode(r, &in); err != nil {
		return err
	}
	var f store.RequestFilter
	for _, b := range []struct {
		field string
		v     string
		dst   *time.Time
	}{{"start_time", in.StartTime, &f.From}, {"end_time", in.EndTime, &f.To}} {
		if b.v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, b.v)
		if err != nil {
			return badRequest(b.field, b.field+" must be an RFC 3339 time")
		}
		*b.dst = t
	}
	filter := in.Filter
	if q := r.URL.Query().Get("filter"); filter == "" {
		filter = q
	}
	items, err := a.visibleRequests(r, filter, f, in.Keywords)
	if err != nil {
		return err
	}
	return writePage(w, r, items)
}

// readableRequest returns the request if the caller may see it: their own, one they approve, or any with
// workflows-view. Others are answered as not found.
func (a *API) readableRequest(r *http.Request) (*workflow.Request, error) {
	req, err := a.Store.Request(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	p := principal(r.Context())
	if p.Permissions.Has(auth.WorkflowsView) {
		return req, nil
	}
	if wp, err := requester(r); err == nil {
		if own, approver := req.Concerns(wp); own || approver {
			return req, nil
		}
	}
	return nil, notFound("request")
}

func (a *API) getRequest(w http.ResponseWriter, r *http.Request) error {
	if err := a.engineReady(); err != nil {
		return err
	}
	req, err := a.readableRequest(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, req)
	return nil
}

func (a *API) decideRequest(w http.ResponseWriter, r *http.Request) error {
	if err := a.engineReady(); err != nil {
		return err
	}
	if _, err := a.readableRequest(r); err != nil {
		return err
	}
	var d workflow.Decision
	if err := decode(r, &d); err != nil {
		return err
	}
	p, err := requester(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	req, err := a.Workflows.Decide(r.Context(), id, p, d)
	if err != nil {
		var re *workflow.RuleError
		if errors.As(err, &re) {
			a.auditRefused(r, "decide", "workflow-request", id, re.Rule)
		}
		return ruleError(err)
	}
	a.recordDecision(r, req, d)
	writeJSON(w, http.StatusOK, req)
	return nil
}

// recordDecision audits a decision with what was decided and what it did to the request.
func (a *API) recordDecision(r *http.Request, req *workflow.Request, d workflow.Decision) {
	p := principal(r.Context())
	a.record(r.Context(), &model.AuditEvent{Actor: p.Name, ActorID: p.ID, Action: "decide", ObjectType: "workflow-request",
		ObjectID: req.ID, SourceAddress: clientIP(r), Outcome: "success", Diff: map[string]any{
			"decision": d.Decision, "step": d.Step, "comment": d.Comment, "status": req.Status,
			"user": req.TargetUser.ID, "role": req.RequestedRole.ID}})
}

func (a *API) revokeRequestRole(w http.ResponseWriter, r *http.Request) error {
	if err := a.engineReady(); err != nil {
		return err
	}
	if _, err := a.readableRequest(r); err != nil {
		return err
	}
	p, err := requester(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	admin := principal(r.Context()).Permissions.Has(auth.WorkflowsManage)
	req, err := a.Workflows.Revoke(r.Context(), id, p, admin)
	if err != nil {
		var re *workflow.RuleError
		if errors.As(err, &re) {
			a.auditRefused(r, "revoke", "workflow-request", id, re.Rule)
		}
		return ruleError(err)
	}
	a.audit(r, "revoke", "workflow-request", id, map[string]any{"status": workflow.StatusApproved}, map[string]any{"status": req.Status})
	writeJSON(w, http.StatusOK, req)
	return nil
}

// settingsAnswer hides the SMTP password, which is write-only.
func settingsAnswer(s workflow.Settings) workflow.Settings {
	s.Password = ""
	return s
}

func (a *API) getWorkflowSettings(w http.ResponseWriter, r *http.Request) error {
	set, err := a.Store.WorkflowSettings(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, settingsAnswer(set))
	return nil
}

func (a *API) putWorkflowSettings(w http.ResponseWriter, r *http.Request) error {
	old, err := a.Store.WorkflowSettings(r.Context())
	if err != nil {
		return err
	}
	var in workflow.Settings
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Password == "" {
		in.Password = old.Password // write-only: leaving it out keeps it
	}
	if err := in.Validate(); err != nil {
		return err
	}
	if a.WorkflowMail == nil {
		// Nothing would send the mail: SMTP settings would be stored and ignored.
		if f := in.SMTP.FirstSet(); f != "" {
			return model.NotSupported(f, "e-mail notifications are not available; leave the SMTP settings at their defaults")
		}
	} else if err := a.WorkflowMail(r.Context(), in.SMTP); err != nil {
		return err
	}
	if err := a.Store.SaveWorkflowSettings(r.Context(), in); err != nil {
		return err
	}
	a.audit(r, "update", "workflow-settings", "workflow-engine", settingsAnswer(old), settingsAnswer(in))
	writeJSON(w, http.StatusOK, settingsAnswer(in))
	return nil
}
