package console

import (
	"net/http"
	"net/url"
	"time"
)

const approvalsAPI = "/api-proxy/api/v1/approvals"

// approvalItem is what the queue shows of an approval request.
type approvalItem struct {
	ID            string    `json:"id"`
	State         string    `json:"state"`
	Requester     string    `json:"requester"`
	ClientAddress string    `json:"client_address"`
	Target        string    `json:"target"`
	RequestLine   string    `json:"request_line"`
	PolicyName    string    `json:"policy_name"`
	Decider       string    `json:"decider"`
	Comment       string    `json:"comment"`
	Created       time.Time `json:"created"`
	Expires       time.Time `json:"expires"`
	Decided       time.Time `json:"decided"`
}

type approvalsPage struct {
	Pending, Decided []approvalItem
}

// approvals is the approval queue: the session approval requests the user may decide, pending first, each with
// a comment field and approve and reject buttons; the service API applies the access_control rules.
func (c *Console) approvals(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.renderApprovals(w, r, s, http.StatusOK, "", r.URL.Query().Get("done"))
}

func (c *Console) renderApprovals(w http.ResponseWriter, r *http.Request, s *session, status int, errMsg, done string) error {
	var list struct {
		Items []approvalItem `json:"items"`
	}
	if err := c.call(r.Context(), r, s, "GET", approvalsAPI, nil, &list); err != nil {
		return err
	}
	p := &approvalsPage{}
	for _, a := range list.Items {
		if a.State == "pending" {
			p.Pending = append(p.Pending, a)
		} else if len(p.Decided) < pageSize {
			p.Decided = append(p.Decided, a)
		}
	}
	v := &view{Title: "Approvals", Active: "/approvals", Data: p, Error: errMsg}
	if done != "" {
		v.Notice = "Decided approval request " + done + "."
	}
	c.render(w, r, s, status, "approvals", v)
	return nil
}

// decideApproval posts the form's decision; a refusal (a rule, a second decision) is shown on the queue.
func (c *Console) decideApproval(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	decision := r.PostFormValue("decision")
	if decision != "approve" && decision != "reject" {
		return c.renderApprovals(w, r, s, http.StatusBadRequest, "choose approve or reject", "")
	}
	body := map[string]string{"decision": decision, "comment": r.PostFormValue("comment")}
	if err := c.call(r.Context(), r, s, "POST", approvalsAPI+"/"+url.PathEscape(id)+"/decision", body, nil); err != nil {
		if ae, ok := formErr(err); ok {
			return c.renderApprovals(w, r, s, ae.Status, ae.Message, "")
		}
		return err
	}
	http.Redirect(w, r, "/approvals?done="+url.QueryEscape(id), http.StatusSeeOther)
	return nil
}
