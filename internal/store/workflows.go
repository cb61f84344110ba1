package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/workflow"
	"github.com/google/uuid"
)

// Workflows and role requests (just-in-time roles). The rules live in internal/workflow; the store keeps the
// documents and, in MutateRequest, keeps the roles a request grants (user_workflow_roles) in step with its state,
// in the transaction that changes it, ending the management sessions of a user who loses a role as every other
// role loss does.

// CreateWorkflow stores w, assigning its id and times.
func (s *Store) CreateWorkflow(ctx context.Context, w *workflow.Workflow, actor string) error {
	w.ID = uuid.NewString()
	now := s.now()
	w.Created, w.Updated, w.Author, w.UpdatedBy = now, now, actor, actor
	body, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("create workflow: %w", err)
	}
	_, err = s.conn().exec(ctx, `INSERT INTO workflows (id, name, body, created, author, updated, updated_by) VALUES (?,?,?,?,?,?,?)`,
		w.ID, w.Name, string(body), micros(now), actor, micros(now), actor)
	if err != nil {
		return fmt.Errorf("create workflow: %w", err)
	}
	return nil
}

// UpdateWorkflow replaces the workflow's definition. Requests already made keep the steps they were made with.
func (s *Store) UpdateWorkflow(ctx context.Context, w *workflow.Workflow, actor string) error {
	old, err := s.Workflow(ctx, w.ID)
	if err != nil {
		return fmt.Errorf("update workflow %s: %w", w.ID, err)
	}
	now := s.now()
	w.Created, w.Author, w.Updated, w.UpdatedBy = old.Created, old.Author, now, actor
	body, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("update workflow: %w", err)
	}
	res, err := s.conn().exec(ctx, `UPDATE workflows SET name = ?, body = ?, updated = ?, updated_by = ? WHERE id = ?`,
		w.Name, string(body), micros(now), actor, w.ID)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("update workflow %s: %w", w.ID, err)
	}
	return nil
}

// DeleteWorkflow removes the workflow; its requests stay, with the steps they were made with.
func (s *Store) DeleteWorkflow(ctx context.Context, id string) error {
	res, err := s.conn().exec(ctx, `DELETE FROM workflows WHERE id = ?`, id)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("delete workflow %s: %w", id, err)
	}
	return nil
}

// Workflow returns the workflow with id; roles deleted since it was written are marked deleted.
func (s *Store) Workflow(ctx context.Context, id string) (*workflow.Workflow, error) {
	var body string
	if err := s.conn().queryRow(ctx, `SELECT body FROM workflows WHERE id = ?`, id).Scan(&body); err != nil {
		return nil, fmt.Errorf("get workflow %s: %w", id, mapErr(err))
	}
	names, err := s.RoleNames(ctx)
	if err != nil {
		return nil, err
	}
	return decodeWorkflow(body, names)
}

func decodeWorkflow(body string, names map[string]string) (*workflow.Workflow, error) {
	var w workflow.Workflow
	if err := json.Unmarshal([]byte(body), &w); err != nil {
		return nil, fmt.Errorf("decode workflow: %w", err)
	}
	mark := func(r *workflow.Role) {
		if n, ok := names[r.ID]; ok {
			r.Name, r.Deleted = n, false
		} else {
			r.Deleted = true
		}
	}
	for i := range w.TargetRoles {
		mark(&w.TargetRoles[i])
	}
	for i := range w.RequesterRoles {
		mark(&w.RequesterRoles[i])
	}
	for i := range w.Steps {
		for j := range w.Steps[i].Approvers {
			mark(&w.Steps[i].Approvers[j].Role)
		}
	}
	return &w, nil
}

var workflowSortKeys = map[string]string{"name": "name", "created": "created", "updated": "updated"}

// ListWorkflows returns a page of workflows and the total count matching opts.Filter (a substring of the name).
func (s *Store) ListWorkflows(ctx context.Context, opts ListOptions) ([]*workflow.Workflow, int, error) {
	tail, err := opts.clause(workflowSortKeys, "name")
	if err != nil {
		return nil, 0, err
	}
	where, args := "", []any{}
	if opts.Filter != "" {
		where, args = ` WHERE LOWER(name) LIKE ? ESCAPE '\'`, []any{likePattern(opts.Filter)}
	}
	c := s.conn()
	var total int
	if err := c.queryRow(ctx, `SELECT COUNT(*) FROM workflows`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count workflows: %w", mapErr(err))
	}
	names, err := s.RoleNames(ctx)
	if err != nil {
		return nil, 0, err
	}
	rows, err := c.query(ctx, `SELECT body FROM workflows`+where+tail, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("list workflows: %w", err)
	}
	defer rows.Close()
	out := []*workflow.Workflow{}
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, 0, mapErr(err)
		}
		w, err := decodeWorkflow(body, names)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, w)
	}
	return out, total, mapErr(rows.Err())
}

// CreateRequest stores a new request, assigning its id, unless its user already has maxActive requests through the
// workflow that are pending or hold their role (0 means no limit).
func (s *Store) CreateRequest(ctx context.Context, r *workflow.Request, maxActive int64, now time.Time) error {
	r.ID = uuid.NewString()
	err := s.inTx(ctx, func(c conn) error {
		if maxActive > 0 {
			var n int64
			if err := c.queryRow(ctx, `SELECT COUNT(*) FROM workflow_requests WHERE workflow_id = ? AND target_user_id = ? AND status IN (?, ?)`,
				r.WorkflowID, r.TargetUser.ID, workflow.StatusPending, workflow.StatusApproved).Scan(&n); err != nil {
				return mapErr(err)
			}
			if n >= maxActive {
				return &workflow.RuleError{Rule: workflow.RuleActiveLimited, Field: "workflow",
					Msg: fmt.Sprintf("the user already has %d active requests through this workflow, its maximum", n)}
			}
		}
		body, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = c.exec(ctx, `INSERT INTO workflow_requests (id, workflow_id, requester_id, target_user_id, role_id, status, due, body, created, updated)
			VALUES (?,?,?,?,?,?,?,?,?,?)`, r.ID, r.WorkflowID, r.Requester.ID, r.TargetUser.ID, r.RequestedRole.ID, r.Status,
			micros(r.NextDue(now)), string(body), micros(r.Created), micros(r.Updated))
		return err
	})
	if err != nil {
		return fmt.Errorf("create request: %w", err)
	}
	return nil
}

// Request returns the request with id.
func (s *Store) Request(ctx context.Context, id string) (*workflow.Request, error) {
	r, err := scanRequest(s.conn().queryRow(ctx, `SELECT body FROM workflow_requests WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("get request %s: %w", id, err)
	}
	return r, nil
}

func scanRequest(row interface{ Scan(...any) error }) (*workflow.Request, error) {
	var body string
	if err := row.Scan(&body); err != nil {
		return nil, mapErr(err)
	}
	var r workflow.Request
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return nil, fmt.Errorf("decode request: %w", err)
	}
	return &r, nil
}

// RequestFilter selects requests; zero fields match everything.
type RequestFilter struct {
	// UserID matches requests made by or for the user.
	UserID   string
	Statuses []string
	// From and To bound the creation time.
	From, To time.Time
}

// ListRequests returns the requests matching f, newest first. The callers filter further by what the reader may
// see, so paging is theirs.
func (s *Store) ListRequests(ctx context.Context, f RequestFilter) ([]*workflow.Request, error) {
	where, args := ` WHERE 1=1`, []any{}
	if f.UserID != "" {
		where += ` AND (requester_id = ? OR target_user_id = ?)`
		args = append(args, f.UserID, f.UserID)
	}
	if len(f.Statuses) > 0 {
		where += ` AND status IN (?` + strings.Repeat(",?", len(f.Statuses)-1) + `)`
		for _, st := range f.Statuses {
			args = append(args, st)
		}
	}
	if !f.From.IsZero() {
		where += ` AND created >= ?`
		args = append(args, micros(f.From))
	}
	if !f.To.IsZero() {
		where += ` AND created <= ?`
		args = append(args, micros(f.To))
	}
	rows, err := s.conn().query(ctx, `SELECT body FROM workflow_requests`+where+` ORDER BY created DESC, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	defer rows.Close()
	out := []*workflow.Request{}
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return nil, fmt.Errorf("list requests: %w", err)
		}
		out = append(out, r)
	}
	return out, mapErr(rows.Err())
}

// DueRequests lists the ids of pending or approved requests that change by themselves at or before now.
func (s *Store) DueRequests(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := s.conn().query(ctx, `SELECT id FROM workflow_requests WHERE status IN (?, ?) AND due > 0 AND due <= ? ORDER BY due`,
		workflow.StatusPending, workflow.StatusApproved, micros(now))
	if err != nil {
		return nil, fmt.Errorf("due requests: %w", err)
	}
	return scanStrings(rows)
}

// MutateRequest changes the request with fn in a transaction that holds it against concurrent changes, then makes
// the role it grants match what it says at now: granted while its window is open, taken away (ending the user's
// management sessions) when not. fn returning an error changes nothing. It returns the request as stored.
func (s *Store) MutateRequest(ctx context.Context, id string, now time.Time, fn func(r *workflow.Request) error) (*workflow.Request, error) {
	var out *workflow.Request
	lock := ""
	if s.pg {
		lock = " FOR UPDATE"
	}
	err := s.inTx(ctx, func(c conn) error {
		r, err := scanRequest(c.queryRow(ctx, `SELECT body FROM workflow_requests WHERE id = ?`+lock, id))
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
		body, err := json.Marshal(r)
		if err != nil {
			return err
		}
		res, err := c.exec(ctx, `UPDATE workflow_requests SET status = ?, due = ?, body = ?, updated = ? WHERE id = ?`,
			r.Status, micros(r.NextDue(now)), string(body), micros(r.Updated), id)
		if err := affectedOne(res, err); err != nil {
			return err
		}
		out = r
		return s.endSessionsOnRoleLoss(ctx, c, func() error { return syncGrant(ctx, c, r, now) })
	})
	if err != nil {
		return nil, fmt.Errorf("change request %s: %w", id, err)
	}
	return out, nil
}

// syncGrant makes user_workflow_roles hold the request's role exactly while the request holds it at now.
func syncGrant(ctx context.Context, c conn, r *workflow.Request, now time.Time) error {
	if !r.Holds(now) {
		_, err := c.exec(ctx, `DELETE FROM user_workflow_roles WHERE request_id = ?`, r.ID)
		return err
	}
	var one int
	err := mapErr(c.queryRow(ctx, `SELECT 1 FROM user_workflow_roles WHERE request_id = ?`, r.ID).Scan(&one))
	if err == nil {
		return nil
	}
	if !errors.Is(err, ErrNotExist) {
		return err
	}
	_, err = c.exec(ctx, `INSERT INTO user_workflow_roles (request_id, user_id, role_id) VALUES (?,?,?)`, r.ID, r.TargetUser.ID, r.RequestedRole.ID)
	if errors.Is(err, ErrReference) {
		// The user or the role was deleted since the request was made: there is nothing left to grant, and
		// failing would leave the request due again on every tick.
		return nil
	}
	return err
}

// workflowSettingsAAD binds the sealed SMTP password to its place.
const workflowSettingsAAD = "settings/workflow-engine/smtp_server_password"

// WorkflowSettings returns the workflow engine's settings (the zero value when none were saved), with the SMTP
// password opened.
func (s *Store) WorkflowSettings(ctx context.Context) (workflow.Settings, error) {
	var set workflow.Settings
	var v string
	err := mapErr(s.conn().queryRow(ctx, `SELECT value FROM settings WHERE name = 'workflow-engine'`).Scan(&v))
	if errors.Is(err, ErrNotExist) {
		return set, nil
	}
	if err != nil {
		return set, fmt.Errorf("get workflow settings: %w", err)
	}
	if err := json.Unmarshal([]byte(v), &set); err != nil {
		return set, fmt.Errorf("decode workflow settings: %w", err)
	}
	if set.Password, err = s.unseal(set.Password, workflowSettingsAAD); err != nil {
		return set, err
	}
	return set, nil
}

// SaveWorkflowSettings replaces the workflow engine's settings, sealing the SMTP password.
func (s *Store) SaveWorkflowSettings(ctx context.Context, set workflow.Settings) error {
	if set.Password != "" {
		sealed, err := s.seal(set.Password, workflowSettingsAAD)
		if err != nil {
			return err
		}
		set.Password = sealed
	}
	b, err := json.Marshal(set)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(q conn) error {
		if _, err := q.exec(ctx, `DELETE FROM settings WHERE name = 'workflow-engine'`); err != nil {
			return fmt.Errorf("save workflow settings: %w", err)
		}
		if _, err := q.exec(ctx, `INSERT INTO settings (name, value) VALUES ('workflow-engine', ?)`, string(b)); err != nil {
			return fmt.Errorf("save workflow settings: %w", err)
		}
		return nil
	})
}

// NextRequestDue is the earliest time a pending or approved request changes by itself, or the zero time if none
// will.
func (s *Store) NextRequestDue(ctx context.Context) (time.Time, error) {
	var due sql.NullInt64
	err := s.conn().queryRow(ctx, `SELECT MIN(due) FROM workflow_requests WHERE status IN (?, ?) AND due > 0`,
		workflow.StatusPending, workflow.StatusApproved).Scan(&due)
	if err != nil {
		return time.Time{}, fmt.Errorf("next request due: %w", mapErr(err))
	}
	return fromMicros(due.Int64), nil
}

// WorkflowRoleGrants returns, by role id, the approved requests through which the user holds a role now.
func (s *Store) WorkflowRoleGrants(ctx context.Context, userID string) (map[string]*workflow.Request, error) {
	rows, err := s.conn().query(ctx, `SELECT g.role_id, r.body FROM user_workflow_roles g JOIN workflow_requests r ON r.id = g.request_id
		WHERE g.user_id = ? ORDER BY r.created`, userID)
	if err != nil {
		return nil, fmt.Errorf("workflow grants of %s: %w", userID, err)
	}
	defer rows.Close()
	out := map[string]*workflow.Request{}
	for rows.Next() {
		var role, body string
		if err := rows.Scan(&role, &body); err != nil {
			return nil, mapErr(err)
		}
		var r workflow.Request
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			return nil, fmt.Errorf("decode request: %w", err)
		}
		if prev := out[role]; prev == nil || endsLater(&r, prev) {
			out[role] = &r
		}
	}
	return out, mapErr(rows.Err())
}

// endsLater says whether a's grant outlasts b's; a grant without an end outlasts every other.
func endsLater(a, b *workflow.Request) bool {
	switch {
	case b.GrantEnd == nil:
		return false
	case a.GrantEnd == nil:
		return true
	}
	return a.GrantEnd.After(*b.GrantEnd)
}
