package hold

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/notify"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Decide approves or rejects the approval request id as d. Every attempt, refused or not, is in the audit log; a
// decision releases the held request on this node at once and on the others at their next poll.
func (s *Service) Decide(ctx context.Context, id string, d approval.Decider, in approval.DecisionInput) (approval.Request, error) {
	req, err := s.Store.Approval(ctx, id)
	if err != nil {
		return req, err
	}
	action := "approval-reject"
	if in.Approve {
		action = "approval-approve"
	}
	next, err := approval.Decide(req, d, in.Approve, in.Comment, s.now())
	if errors.Is(err, approval.ErrExpired) {
		next = s.expire(ctx, next)
	}
	if err == nil {
		if err = s.Store.DecideApproval(ctx, next); errors.Is(err, store.ErrApprovalDecided) {
			cur, _ := s.Store.Approval(ctx, id)
			next, err = cur, fmt.Errorf("%w: it is %s", approval.ErrDecided, cur.State)
		}
	}
	ev := &model.AuditEvent{Time: s.now(), Actor: d.Name, ActorID: d.ID, Action: action, ObjectType: "approval-request",
		ObjectID: id, Outcome: "success", Diff: map[string]any{"session": req.SessionID, "requester": req.Requester,
			"target": req.Target, "comment": in.Comment}}
	if d.Address.IsValid() {
		ev.SourceAddress = d.Address.String()
	}
	if err != nil {
		ev.Outcome, ev.Diff["reason"] = "failure", err.Error()
		s.audit(ctx, ev)
		return next, err
	}
	s.audit(ctx, ev)
	s.release(id)
	kind := notify.KindRejected
	if next.State == approval.StateApproved {
		kind = notify.KindApproved
	}
	s.send(ctx, kind, next)
	s.log().Info("approval decided", "approval_request", id, "state", next.State, "decider", d.Name, "session", req.SessionID)
	return next, nil
}

// expire stores an expiry (next as approval.Expire returned it) and announces it, unless another decision or
// node came first; it returns the request as it now stands.
func (s *Service) expire(ctx context.Context, next approval.Request) approval.Request {
	err := s.Store.DecideApproval(context.WithoutCancel(ctx), next)
	if err != nil {
		cur, gerr := s.Store.Approval(context.WithoutCancel(ctx), next.ID)
		if gerr != nil {
			s.log().Error("expiring an approval request failed", "approval_request", next.ID, "err", errors.Join(err, gerr))
			return next
		}
		return cur
	}
	s.audit(ctx, &model.AuditEvent{Time: next.Decided, Actor: "gatehouse", Action: "approval-expire", ObjectType: "approval-request",
		ObjectID: next.ID, Outcome: "success", Diff: map[string]any{"session": next.SessionID, "requester": next.Requester, "target": next.Target}})
	s.release(next.ID)
	s.send(ctx, notify.KindExpired, next)
	return next
}

// Sweep expires the pending requests whose time is up, whether or not a request is still held for them. Run it
// periodically (every node may: only one expiry of each request is stored and announced).
func (s *Service) Sweep(ctx context.Context) error {
	for offset := 0; ; offset += store.MaxLimit {
		list, total, err := s.Store.ListApprovals(ctx, approval.StatePending, offset, store.MaxLimit)
		if err != nil {
			return err
		}
		for _, r := range list {
			if next, ok := approval.Expire(r, s.now()); ok {
				s.expire(ctx, next)
			}
		}
		if offset+len(list) >= total || len(list) == 0 {
			return nil
		}
	}
}

// Get returns an approval request.
func (s *Service) Get(ctx context.Context, id string) (approval.Request, error) {
	return s.Store.Approval(ctx, id)
}

// List returns approval requests newest first, optionally in one state; unless all is set, only those that a
// holder of roles may decide.
func (s *Service) List(ctx context.Context, roles []string, all bool, state approval.State) ([]approval.Request, error) {
	var out []approval.Request
	for offset := 0; ; offset += store.MaxLimit {
		list, total, err := s.Store.ListApprovals(ctx, state, offset, store.MaxLimit)
		if err != nil {
			return nil, err
		}
		for _, r := range list {
			if all || r.MayDecide(roles) {
				out = append(out, r)
			}
		}
		if offset+len(list) >= total || len(list) == 0 || len(out) >= store.MaxLimit {
			return out, nil
		}
	}
}

// Auditor reports whether a holder of roles may watch and read the trail of a session: an audit rule of the
// session's connection policy names one of the roles (requesterRoles are the session user's).
func (s *Service) Auditor(policyKey string, roles, requesterRoles []string) bool {
	if s.Rules == nil || policyKey == "" {
		return false
	}
	return approval.Auditor(s.Rules(policyKey), roles, requesterRoles)
}

// AuditedPolicies returns, sorted, the keys of the connection policies with an audit rule naming one of roles:
// the only policies under which a holder of roles may audit sessions (Auditor still checks each session's user).
func (s *Service) AuditedPolicies(roles []string) []string {
	if s.Rules == nil || s.PolicyKeys == nil || len(roles) == 0 {
		return nil
	}
	var out []string
	for _, key := range s.PolicyKeys() {
		if approval.AuditsSome(s.Rules(key), roles) {
			out = append(out, key)
		}
	}
	slices.Sort(out)
	return out
}
