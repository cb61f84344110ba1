package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"
)

// Just-in-time roles: the workflow engine's workflows and role requests.

const workflowEngine = "/workflow-engine/api/v1"

var workflowsResource = &resource{
	noun: "workflow", path: workflowEngine + "/workflows", nameField: "name",
	columns: []column{{"ID", "id"}, {"NAME", "name"}, {"GRANT TYPES", "grant_types"}, {"TARGET ROLES", "target_roles"},
		{"REQUESTER ROLES", "requester_roles"}, {"JUSTIFICATION", "requires_justification"}},
}

var requestsResource = &resource{
	noun: "request", path: workflowEngine + "/requests",
	columns: []column{{"ID", "id"}, {"STATUS", "status"}, {"ROLE", "requested_role.name"}, {"USER", "target_user.display_name"},
		{"REQUESTER", "requester.display_name"}, {"GRANT", "grant_type"}, {"START", "grant_start"}, {"END", "grant_end"}},
}

type workflowsCmd struct {
	List listCmd `cmd:"" help:"List workflows: the roles that can be requested, by whom, and who approves."`
	Get  getCmd  `cmd:"" help:"Show a workflow with its steps."`
}

// ProvideResource hands the workflows resource to the generic subcommands.
func (*workflowsCmd) ProvideResource() *resource { return workflowsResource }

type requestsCmd struct {
	Create  requestCreateCmd  `cmd:"" help:"Request a role through a workflow."`
	List    requestListCmd    `cmd:"" help:"List role requests: yours, or those you approve (--filter)."`
	Get     getCmd            `cmd:"" help:"Show a request with its steps and decisions."`
	Approve requestApproveCmd `cmd:"" help:"Approve the current step of a request."`
	Reject  requestRejectCmd  `cmd:"" help:"Reject a request."`
	Revoke  requestRevokeCmd  `cmd:"" help:"Take back the role an approved request granted; the user's sessions with it end at once."`
}

// ProvideResource hands the requests resource to the generic subcommands.
func (*requestsCmd) ProvideResource() *resource { return requestsResource }

type requestCreateCmd struct {
	bodyFlag
	Role          string `help:"Role to request (id or name)."`
	Workflow      string `help:"Workflow to request it through (id or name); by default the one that grants the role to you."`
	For           string `name:"for" help:"Request the role for this user (id or name) instead of yourself; needs workflows-requests-on-behalf."`
	Grant         string `name:"grant" enum:",PERMANENT,TIME_RESTRICTED,FLOATING" default:"" help:"Grant type: PERMANENT, TIME_RESTRICTED (with --start and --end) or FLOATING (with --hours). Default: TIME_RESTRICTED when --start or --end is given."`
	Start         string `help:"Start of the window (RFC 3339, or a duration from now such as 10m)."`
	End           string `help:"End of the window (RFC 3339, or a duration from now such as 2h)."`
	Hours         int64  `help:"Length of a FLOATING grant, in hours from approval."`
	Justification string `help:"Why you need the role (some workflows require it)."`
	outputFlags
}

// when reads an RFC 3339 time or a duration from now.
func when(v string, now time.Time) (string, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(d).UTC().Format(time.RFC3339), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return "", fmt.Errorf("%q is neither an RFC 3339 time nor a duration", v)
	}
	return t.UTC().Format(time.RFC3339), nil
}

func (c *requestCreateCmd) Run(g *Globals) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	flags := map[string]any{}
	if c.Role != "" {
		// Requesters seldom may read roles, so a name goes to the server, which finds it among the roles the
		// workflows let the caller request.
		ref := map[string]string{"name": c.Role}
		if _, err := uuid.Parse(c.Role); err == nil {
			ref = map[string]string{"id": c.Role}
		}
		flags["requested_role"] = ref
	}
	if c.Workflow != "" {
		id, err := workflowsResource.resolve(g.Ctx, api, c.Workflow)
		if isForbidden(err) {
			id, err = c.Workflow, nil // an id, from a caller who may not list workflows
		}
		if err != nil {
			return err
		}
		flags["workflow"] = id
	}
	if c.For != "" {
		id, err := usersResource.resolve(g.Ctx, api, c.For)
		if err != nil {
			return err
		}
		flags["target_user"] = map[string]string{"id": id}
	}
	grant := c.Grant
	if grant == "" && (c.Start != "" || c.End != "") {
		grant = "TIME_RESTRICTED"
	} else if grant == "" && c.Hours != 0 {
		grant = "FLOATING"
	}
	setIf(flags, "grant_type", grant)
	now := time.Now()
	for _, w := range []struct{ flag, field, v string }{{"--start", "grant_start", c.Start}, {"--end", "grant_end", c.End}} {
		if w.v == "" {
			continue
		}
		t, err := when(w.v, now)
		if err != nil {
			return fmt.Errorf("%s: %w", w.flag, err)
		}
		flags[w.field] = t
	}
	if c.Hours != 0 {
		flags["floating_length"] = c.Hours
	}
	setIf(flags, "request_justification", c.Justification)
	body, err := c.body(g, flags)
	if err != nil {
		return err
	}
	var res struct {
		ID string `json:"id"`
	}
	if err := api.call(g.Ctx, http.MethodPost, requestsResource.path, body, &res); err != nil {
		return err
	}
	if c.json() {
		return printJSON(g.Stdout, res)
	}
	fmt.Fprintln(g.Stdout, res.ID)
	return nil
}

type requestListCmd struct {
	Filter string `enum:"requests,active_requests,approvals,active_approvals,all" default:"requests" help:"requests (yours), active_requests (yours, pending), approvals (those you approve or approved), active_approvals (those you may decide now), all (needs workflows-view)."`
	outputFlags
}

func (c *requestListCmd) Run(g *Globals, r *resource) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	items, err := api.listAll(g.Ctx, r.path, url.Values{"filter": {c.Filter}})
	if err != nil {
		return err
	}
	return printList(g.Stdout, c.outputFlags, items, r.columns)
}

type requestDecisionCmd struct {
	ID      string `arg:"" help:"Id of the request."`
	Comment string `help:"A comment kept with the decision."`
	outputFlags
}

type requestApproveCmd struct{ requestDecisionCmd }

func (c *requestApproveCmd) Run(g *Globals, r *resource) error { return c.decide(g, r, "approved") }

type requestRejectCmd struct{ requestDecisionCmd }

func (c *requestRejectCmd) Run(g *Globals, r *resource) error { return c.decide(g, r, "rejected") }

// decide sends the decision on the request's current step.
func (c *requestDecisionCmd) decide(g *Globals, r *resource, decision string) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	var req struct {
		Steps []struct {
			Match     string `json:"match"`
			Approvers []struct {
				Decision string `json:"decision"`
			} `json:"approvers"`
		} `json:"steps"`
	}
	if err := api.get(g.Ctx, r.item(c.ID), nil, &req); err != nil {
		return err
	}
	var raw map[string]any
	body := map[string]any{"step": currentStep(req.Steps), "decision": decision, "comment": c.Comment}
	if err := api.call(g.Ctx, http.MethodPost, r.item(c.ID)+"/decision", body, &raw); err != nil {
		return err
	}
	return c.print(g, raw)
}

// currentStep is the first step not yet approved, as the server counts it (an "any" step needs one approval, an
// "all" step every approver's).
func currentStep(steps []struct {
	Match     string `json:"match"`
	Approvers []struct {
		Decision string `json:"decision"`
	} `json:"approvers"`
}) int {
	for i, s := range steps {
		n := 0
		for _, a := range s.Approvers {
			if a.Decision == "approved" {
				n++
			}
		}
		if (s.Match == "any" && n == 0) || (s.Match != "any" && n < len(s.Approvers)) {
			return i
		}
	}
	return len(steps)
}

func (c *requestDecisionCmd) print(g *Globals, raw map[string]any) error {
	if c.json() {
		return printJSON(g.Stdout, raw)
	}
	fmt.Fprintf(g.Stdout, "%s: %v\n", c.ID, raw["status"])
	return nil
}

type requestRevokeCmd struct {
	ID string `arg:"" help:"Id of the request."`
	outputFlags
}

func (c *requestRevokeCmd) Run(g *Globals, r *resource) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	var raw map[string]any
	if err := api.call(g.Ctx, http.MethodPost, r.item(c.ID)+"/role/revoke", nil, &raw); err != nil {
		return err
	}
	if c.json() {
		return printJSON(g.Stdout, raw)
	}
	fmt.Fprintf(g.Stdout, "%s: %v\n", c.ID, raw["status"])
	return nil
}
