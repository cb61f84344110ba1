package configapi

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// approvalsPath serves session approval requests (four-eyes authorization of connection policies' access_control)
// in the SPS shapes: GET lists {"items":[{"key","meta":{"href"}}],"meta"}, GET .../{key} is {"key","body","meta"},
// and POST .../{key} with {"decision":"approve"|"reject","comment"} decides. Not part of the configuration tree:
// decisions are not staged in a transaction.
const approvalsPath = "/api/approvals"

func (s *Service) approvals(w http.ResponseWriter, r *http.Request, c *caller) error {
	if s.Approvals == nil {
		return notFound("session approvals are not served by this process")
	}
	key := strings.Trim(strings.TrimPrefix(r.URL.Path, approvalsPath), "/")
	roles := make([]string, 0, len(c.Principal.Roles))
	for _, r := range c.Principal.Roles {
		roles = append(roles, r.Name)
	}
	all := c.Principal.Permissions.Has(auth.ConnectionsView)
	switch {
	case key == "" && r.Method == http.MethodGet:
		var state approval.State
		if v := r.URL.Query().Get("state"); v != "" {
			st, err := approval.ParseState(v)
			if err != nil {
				return invalidQuery("state", err.Error())
			}
			state = st
		}
		list, err := s.Approvals.List(r.Context(), roles, all, state)
		if err != nil {
			return err
		}
		items := make([]map[string]any, 0, len(list))
		for _, a := range list {
			items = append(items, map[string]any{"key": a.ID, "meta": map[string]string{"href": approvalsPath + "/" + a.ID}})
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": items, "meta": map[string]string{"href": approvalsPath, "parent": rootPath,
			"transaction": transactionPath}})
		return nil
	case key == "" || strings.Contains(key, "/"):
		return unsupportedMethod(r.Method)
	}
	req, err := s.Approvals.Get(r.Context(), key)
	if errors.Is(err, store.ErrNotExist) || err == nil && !all && !req.MayDecide(roles) {
		return notFound("no approval request with this key")
	} else if err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost:
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if err != nil {
			return syntactic("", "reading the body: "+err.Error())
		}
		in, err := approval.ParseDecision(body)
		if err != nil {
			return approvalErr(err)
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		addr, _ := netip.ParseAddr(host)
		d := approval.Decider{ID: c.Principal.ID, Name: c.Principal.Name, Roles: roles, Address: addr}
		if req, err = s.Approvals.Decide(r.Context(), key, d, in); err != nil {
			return approvalErr(err)
		}
	default:
		return unsupportedMethod(r.Method)
	}
	writeJSON(w, http.StatusOK, map[string]any{"key": req.ID, "body": req,
		"meta": map[string]string{"href": approvalsPath + "/" + req.ID, "parent": approvalsPath, "transaction": transactionPath}})
	return nil
}

// approvalErr maps the approval model's refusals to the configuration API's errors.
func approvalErr(err error) error {
	var fe *approval.FieldError
	switch {
	case errors.As(err, &fe):
		return semantic(fe.Field, fe.Msg)
	case errors.Is(err, approval.ErrSameUser):
		return &Error{Status: http.StatusForbidden, Code: CodeUnauthorized, Message: err.Error(), Field: "require_different_username", Err: err}
	case errors.Is(err, approval.ErrSameAddress):
		return &Error{Status: http.StatusForbidden, Code: CodeUnauthorized, Message: err.Error(), Field: "require_different_ip", Err: err}
	case errors.Is(err, approval.ErrNotAuthorizer):
		return &Error{Status: http.StatusForbidden, Code: CodeUnauthorized, Message: err.Error(), Err: err}
	case errors.Is(err, approval.ErrDecided), errors.Is(err, approval.ErrExpired):
		return &Error{Status: http.StatusConflict, Code: CodeSemanticError, Message: err.Error(), Field: "state", Err: err}
	}
	return err
}
