package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

const approvalsPath = "/api-proxy/api/v1/approvals"

var approvalColumns = []column{{"ID", "id"}, {"STATE", "state"}, {"REQUESTER", "requester"}, {"FROM", "client_address"},
	{"TARGET", "target"}, {"FIRST REQUEST", "request_line"}, {"CREATED", "created"}, {"DECIDER", "decider"}, {"COMMENT", "comment"}}

// approvalsCmd is `gatehouse approvals`: API sessions waiting for an authorizer (access_control authorize).
type approvalsCmd struct {
	List    approvalListCmd    `cmd:"" help:"List approval requests you may decide (all of them with connections-view), newest first."`
	Approve approvalApproveCmd `cmd:"" help:"Approve a pending request: its session's held request goes on to the target."`
	Reject  approvalRejectCmd  `cmd:"" help:"Reject a pending request: its session is refused for good."`
}

type approvalListCmd struct {
	State string `placeholder:"STATE" enum:",pending,approved,rejected,expired" default:"" help:"Only requests in this state: pending, approved, rejected, expired."`
	outputFlags
}

func (c *approvalListCmd) Run(g *Globals) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	q := url.Values{}
	if c.State != "" {
		q.Set("state", c.State)
	}
	var page struct {
		Count int               `json:"count"`
		Items []json.RawMessage `json:"items"`
	}
	if err := api.get(g.Ctx, approvalsPath, q, &page); err != nil {
		return err
	}
	if c.json() {
		return printJSON(g.Stdout, map[string]any{"count": page.Count, "items": page.Items})
	}
	return printList(g.Stdout, c.outputFlags, page.Items, approvalColumns)
}

type approvalDecideCmd struct {
	ID      string `arg:"" name:"request-id" help:"The approval request (its id is in the client's refusal and in the list)."`
	Comment string `short:"m" help:"Why; kept with the decision, in the audit log and the session's trail."`
	outputFlags
}

type approvalApproveCmd struct{ approvalDecideCmd }

func (c *approvalApproveCmd) Run(g *Globals) error { return c.decide(g, "approve") }

type approvalRejectCmd struct{ approvalDecideCmd }

func (c *approvalRejectCmd) Run(g *Globals) error { return c.decide(g, "reject") }

func (c *approvalDecideCmd) decide(g *Globals, decision string) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	var out json.RawMessage
	body := map[string]string{"decision": decision, "comment": c.Comment}
	if err := api.call(g.Ctx, http.MethodPost, approvalsPath+"/"+url.PathEscape(c.ID)+"/decision", body, &out); err != nil {
		return err
	}
	if c.json() {
		return printObject(g.Stdout, c.outputFlags, out)
	}
	var r struct{ State, Requester, Target string }
	json.Unmarshal(out, &r)
	fmt.Fprintf(g.Stdout, "%s: %s (%s to %s)\n", c.ID, r.State, r.Requester, r.Target)
	return nil
}
