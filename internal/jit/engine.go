// Package jit runs just-in-time roles: it takes role requests through their workflows, applies decisions and
// revocations, and ends grants when their windows close, on the store and with an injectable clock. The rules
// themselves are internal/workflow's; this package is their I/O.
package jit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/workflow"
)

// Event kinds, one per change of a request that someone may want to hear about.
const (
	EventRequested = "requested"
	EventApproved  = "approved"
	EventRejected  = "rejected"
	EventExpired   = "expired"
	EventRevoked   = "revoked"
)

// Event is a change of a request, after it is stored.
type Event struct {
	Kind    string
	Time    time.Time
	Request workflow.Request
	// Actor is the user who caused the change; the zero value means the clock (an expiry).
	Actor workflow.User
}

// Engine is the workflow engine. Store is required; the zero value of every other field works.
type Engine struct {
	Store *store.Store
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Log receives failures of the background job; nil discards.
	Log *slog.Logger
	// OnEvent, if set, receives every event after its change is stored (notifications hang here). It runs on the
	// caller's goroutine, so it must hand slow work off; nil drops events.
	OnEvent func(ctx context.Context, e Event)
	// OnChange, if set, runs after Tick changed who holds a role, so the proxy rebuilds its policy and re-checks
	// its open sessions at once. Changes through the API need none: the API's own OnChange runs after every write.
	OnChange func(ctx context.Context)
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

func (e *Engine) log() *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Log
}

func (e *Engine) emit(ctx context.Context, kind string, r *workflow.Request, actor workflow.User, at time.Time) {
	if e.OnEvent != nil {
		e.OnEvent(ctx, Event{Kind: kind, Time: at, Request: *r, Actor: actor})
	}
}

// Roles returns a lookup of the roles that exist now, for workflow.Validate.
func (e *Engine) Roles(ctx context.Context) (workflow.RoleLookup, error) {
	names, err := e.Store.RoleNames(ctx)
	if err != nil {
		return nil, err
	}
	return func(id string) (string, bool) { n, ok := names[id]; return n, ok }, nil
}

// Create makes a request for requester. in.WorkflowID names the workflow; when it is empty the workflow is the
// one whose target roles include the requested role and whose requester roles the requester holds (a choice
// between several must be made by the client). onBehalf says whether the requester may ask for another user.
func (e *Engine) Create(ctx context.Context, in *workflow.Request, requester workflow.Principal, onBehalf bool) (*workflow.Request, error) {
	w, err := e.workflowFor(ctx, in, requester)
	if err != nil {
		return nil, err
	}
	if in.RequestedRole != nil && in.RequestedRole.ID == "" {
		// Named, for requesters who may not read roles: the workflow's target roles say which one it is.
		for _, r := range w.TargetRoles {
			if in.RequestedRole.Is(r) {
				in.RequestedRole = &workflow.Role{ID: r.ID, Name: r.Name}
			}
		}
	}
	target := &workflow.User{ID: requester.ID, DisplayName: requester.Name}
	if in.TargetUser != nil && in.TargetUser.ID != "" && in.TargetUser.ID != requester.ID {
		if !onBehalf {
			// Before the lookup, so that the answer does not tell who exists.
			return nil, &workflow.RuleError{Rule: workflow.RuleOnBehalf, Field: "target_user.id",
				Msg: "requesting a role for another user needs the workflows-requests-on-behalf permission"}
		}
		u, err := e.Store.User(ctx, in.TargetUser.ID)
		if errors.Is(err, store.ErrNotExist) {
			return nil, &model.FieldError{Field: "target_user.id", Msg: "user " + in.TargetUser.ID + " does not exist", Code: "BAD_REFERENCE"}
		} else if err != nil {
			return nil, err
		}
		target = &workflow.User{ID: u.ID, DisplayName: u.Username}
	}
	now := e.now()
	r, err := workflow.NewRequest(w, in, requester, target, onBehalf, now)
	if err != nil {
		return nil, err
	}
	if err := e.Store.CreateRequest(ctx, r, w.MaxActiveRequests, now); err != nil {
		return nil, err
	}
	e.emit(ctx, EventRequested, r, workflow.User{ID: requester.ID, DisplayName: requester.Name}, now)
	return r, nil
}

func (e *Engine) workflowFor(ctx context.Context, in *workflow.Request, requester workflow.Principal) (*workflow.Workflow, error) {
	if in.WorkflowID != "" {
		w, err := e.Store.Workflow(ctx, in.WorkflowID)
		if errors.Is(err, store.ErrNotExist) {
			return nil, &model.FieldError{Field: "workflow", Msg: "workflow " + in.WorkflowID + " does not exist", Code: "BAD_REFERENCE"}
		}
		return w, err
	}
	if in.RequestedRole == nil || (in.RequestedRole.ID == "" && in.RequestedRole.Name == "") {
		return nil, &model.FieldError{Field: "requested_role.id", Msg: "is required"}
	}
	all, _, err := e.Store.ListWorkflows(ctx, store.ListOptions{Limit: store.MaxLimit})
	if err != nil {
		return nil, err
	}
	var fits []*workflow.Workflow
	for _, w := range all {
		grants := slices.ContainsFunc(w.TargetRoles, in.RequestedRole.Is)
		may := slices.ContainsFunc(w.RequesterRoles, func(r workflow.Role) bool { return slices.Contains(requester.RoleIDs, r.ID) })
		if grants && may {
			fits = append(fits, w)
		}
	}
	switch len(fits) {
	case 0:
		return nil, &model.FieldError{Field: "requested_role.id", Msg: "no workflow lets you request role " + in.RequestedRole.ID + in.RequestedRole.Name}
	case 1:
		return fits[0], nil
	}
	return nil, &model.FieldError{Field: "workflow", Msg: fmt.Sprintf("%d workflows grant this role to you; name one", len(fits))}
}

// Decide applies p's decision on the request with id.
func (e *Engine) Decide(ctx context.Context, id string, p workflow.Principal, d workflow.Decision) (*workflow.Request, error) {
	now := e.now()
	r, err := e.Store.MutateRequest(ctx, id, now, func(r *workflow.Request) error { return r.Decide(p, d, now) })
	if err != nil {
		return nil, err
	}
	actor := workflow.User{ID: p.ID, DisplayName: p.Name}
	switch r.Status {
	case workflow.StatusApproved:
		e.emit(ctx, EventApproved, r, actor, now)
	case workflow.StatusRejected:
		e.emit(ctx, EventRejected, r, actor, now)
	case workflow.StatusExpired:
		// Approved after its window had closed.
		e.emit(ctx, EventExpired, r, actor, now)
	}
	return r, nil
}

// Revoke takes the role of an approved request back; admin says p may revoke any request.
func (e *Engine) Revoke(ctx context.Context, id string, p workflow.Principal, admin bool) (*workflow.Request, error) {
	now := e.now()
	r, err := e.Store.MutateRequest(ctx, id, now, func(r *workflow.Request) error { return r.Revoke(p, admin, now) })
	if err != nil {
		return nil, err
	}
	e.emit(ctx, EventRevoked, r, workflow.User{ID: p.ID, DisplayName: p.Name}, now)
	return r, nil
}

// Tick applies what time did to the requests that are due: grants whose window opened start, and requests whose
// window closed expire and lose their role. It is idempotent, so running it on two nodes at once does no harm;
// in a cluster it runs on the leader.
func (e *Engine) Tick(ctx context.Context) error {
	now := e.now()
	ids, err := e.Store.DueRequests(ctx, now)
	if err != nil || len(ids) == 0 {
		return err
	}
	var errs []error
	for _, id := range ids {
		expired, old := false, ""
		r, err := e.Store.MutateRequest(ctx, id, now, func(r *workflow.Request) error {
			old, expired = r.Status, r.Advance(now)
			return nil
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if expired {
			e.auditExpiry(ctx, r, old, now)
			e.emit(ctx, EventExpired, r, workflow.User{}, now)
		}
	}
	if e.OnChange != nil {
		e.OnChange(ctx)
	}
	return errors.Join(errs...)
}

// auditExpiry records an expiry, which no API request causes, in the audit log.
func (e *Engine) auditExpiry(ctx context.Context, r *workflow.Request, old string, now time.Time) {
	ev := &model.AuditEvent{Time: now, Actor: "gatehouse", Action: "expire", ObjectType: "workflow-request", ObjectID: r.ID,
		Outcome: "success", Diff: map[string]any{"status": map[string]any{"old": old, "new": r.Status},
			"user": r.TargetUser.ID, "role": r.RequestedRole.ID}}
	if err := e.Store.AppendAudit(context.WithoutCancel(ctx), ev); err != nil {
		e.log().Error("audit event lost", "action", ev.Action, "object_id", r.ID, "err", err)
	}
}

// Run calls Tick until ctx is done: at the next time a request is due, so a grant ends on time, and at least
// every interval, to pick up requests approved through other nodes.
func (e *Engine) Run(ctx context.Context, interval time.Duration) {
	failed := false
	for {
		wait := interval
		// After a failure, wait the full interval: a due request that cannot be changed must not spin the loop.
		if next, err := e.Store.NextRequestDue(ctx); err == nil && !next.IsZero() && !failed {
			wait = min(wait, max(next.Sub(e.now()), 0))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		err := e.Tick(ctx)
		failed = err != nil
		if failed && ctx.Err() == nil {
			e.log().Error("ending role grants failed; retrying on the next tick", "err", err)
		}
	}
}
