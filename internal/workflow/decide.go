package workflow

import (
	"slices"
	"strconv"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
)

// Rules a request or a decision can break; a RuleError names the one it broke.
const (
	RuleSelfApproval  = "self-approval"   // nobody decides on a request by or for themselves
	RuleDecidedTwice  = "already-decided" // one decision per user per request, whatever roles they hold
	RuleNotApprover   = "not-an-approver" // the decider holds no undecided approver role of the step
	RuleNotPending    = "not-pending"     // decided, expired or revoked requests take no more decisions
	RuleWrongStep     = "wrong-step"      // decisions apply to the current step only
	RuleNotRequester  = "not-a-requester" // the requester holds none of the workflow's requester roles
	RuleOnBehalf      = "on-behalf"       // requesting for another user needs workflows-requests-on-behalf
	RuleNotGranted    = "not-granted"     // only an approved request's role can be revoked
	RuleNotRevoker    = "not-a-revoker"   // revoking needs an approver role of the request, or being its user
	RuleActiveLimited = "max-active-requests"
)

// RuleError is a refusal by one of the rules above.
type RuleError struct {
	Rule  string
	Field string
	Msg   string
}

func (e *RuleError) Error() string { return e.Rule + ": " + e.Msg }

// Forbidden says whether the rule is about who the actor is (403) rather than the request's state (409).
func (e *RuleError) Forbidden() bool {
	switch e.Rule {
	case RuleSelfApproval, RuleNotApprover, RuleNotRequester, RuleOnBehalf, RuleNotRevoker:
		return true
	}
	return false
}

// CurrentStep is the index of the first step not yet approved, or len(Steps) when all are.
func (r *Request) CurrentStep() int {
	for i, s := range r.Steps {
		if !s.approved() {
			return i
		}
	}
	return len(r.Steps)
}

func (s RequestStep) approved() bool {
	n := 0
	for _, a := range s.Approvers {
		if a.Decision == DecisionApproved {
			n++
		}
	}
	if s.Match == MatchAny {
		return n > 0
	}
	return n == len(s.Approvers)
}

func (r *Request) decidedBy(userID string) bool {
	for _, s := range r.Steps {
		for _, a := range s.Approvers {
			if a.User != nil && a.User.ID == userID && a.Decision != DecisionPending {
				return true
			}
		}
	}
	return false
}

// slot finds the approver slot of the current step that p may decide in, or the rule that stops p.
func (r *Request) slot(p Principal, step int) (int, error) {
	if r.decidedBy(p.ID) {
		return 0, &RuleError{Rule: RuleDecidedTwice, Field: "decision", Msg: "you have already decided on this request"}
	}
	if r.Status != StatusPending {
		return 0, &RuleError{Rule: RuleNotPending, Field: "decision", Msg: "the request is " + r.Status + ", not PENDING"}
	}
	if (r.Requester != nil && r.Requester.ID == p.ID) || (r.TargetUser != nil && r.TargetUser.ID == p.ID) {
		return 0, &RuleError{Rule: RuleSelfApproval, Field: "decision", Msg: "you cannot decide on a request made by you or for you"}
	}
	cur := r.CurrentStep()
	if step != cur {
		return 0, &RuleError{Rule: RuleWrongStep, Field: "step", Msg: "the request is at step " + strconv.Itoa(cur)}
	}
	for i, a := range r.Steps[cur].Approvers {
		if a.Decision == DecisionPending && p.holds(a.Role.ID) {
			return i, nil
		}
	}
	return 0, &RuleError{Rule: RuleNotApprover, Field: "decision", Msg: "you hold no undecided approver role of step " + strconv.Itoa(cur)}
}

// CanDecide reports whether p may decide on the request's current step now.
func (r *Request) CanDecide(p Principal) bool {
	_, err := r.slot(p, r.CurrentStep())
	return err == nil
}

// Decide applies p's decision at now. A rejection rejects the request; the approval that completes the last step
// approves it and sets the granted window (see approve).
func (r *Request) Decide(p Principal, d Decision, now time.Time) error {
	if d.Decision != DecisionApproved && d.Decision != DecisionRejected {
		return &model.FieldError{Field: "decision", Msg: "must be approved or rejected"}
	}
	i, err := r.slot(p, d.Step)
	if err != nil {
		return err
	}
	a := &r.Steps[d.Step].Approvers[i]
	t := now
	a.Decision, a.User, a.DecisionTime, a.Comment = d.Decision, p.ref(), &t, d.Comment
	r.Updated, r.UpdatedBy = now, p.Name
	if d.Decision == DecisionRejected {
		r.Status = StatusRejected
		return nil
	}
	if r.CurrentStep() == len(r.Steps) {
		r.approve(now)
	}
	return nil
}

// approve sets the window the role is held for: TIME_RESTRICTED keeps the window asked for (and expires at once if
// it has passed), FLOATING runs floating_length hours from now, PERMANENT from now until revoked.
func (r *Request) approve(now time.Time) {
	r.Status = StatusApproved
	start := now
	switch r.GrantType {
	case GrantTimeRestricted:
		if !now.Before(*r.GrantEnd) {
			r.Status = StatusExpired
		}
		return
	case GrantFloating:
		end := now.Add(time.Duration(r.FloatingLength) * FloatingUnit)
		r.GrantEnd = &end
	default:
		r.GrantEnd = nil
	}
	r.GrantStart = &start
}

// Revoke takes an approved request's role back. An approver of the request may do it, and so may its user, who
// gives the role up; admin is a caller allowed to revoke any request (workflows-manage).
func (r *Request) Revoke(p Principal, admin bool, now time.Time) error {
	if r.Status != StatusApproved {
		return &RuleError{Rule: RuleNotGranted, Field: "status", Msg: "the request is " + r.Status + ", not APPROVED"}
	}
	mayRevoke := admin || (r.TargetUser != nil && r.TargetUser.ID == p.ID)
	for _, s := range r.Steps {
		mayRevoke = mayRevoke || slices.ContainsFunc(s.Approvers, func(a RequestApprover) bool { return p.holds(a.Role.ID) })
	}
	if !mayRevoke {
		return &RuleError{Rule: RuleNotRevoker, Field: "id", Msg: "only an approver of the request or its user may revoke its role"}
	}
	t := now
	r.Status, r.TargetRoleRevoked, r.TargetRoleRevokeTime, r.TargetRoleRevokedBy = StatusRevoked, true, &t, p.ref()
	r.Updated, r.UpdatedBy = now, p.Name
	return nil
}

// Advance applies what time does to the request at now and reports whether it changed: a pending
// TIME_RESTRICTED request whose window ended, or an approved request whose grant ended, expires.
func (r *Request) Advance(now time.Time) bool {
	ended := r.GrantEnd != nil && !now.Before(*r.GrantEnd)
	switch {
	case r.Status == StatusPending && r.GrantType == GrantTimeRestricted && ended,
		r.Status == StatusApproved && ended:
		r.Status, r.Updated, r.UpdatedBy = StatusExpired, now, ""
		return true
	}
	return false
}

// Holds says whether the request gives its user the role at now.
func (r *Request) Holds(now time.Time) bool {
	return r.Status == StatusApproved && r.GrantStart != nil && !now.Before(*r.GrantStart) &&
		(r.GrantEnd == nil || now.Before(*r.GrantEnd))
}

// NextDue is the next time after now at which Holds or Advance may change their answer without a decision, or the
// zero time when none will.
func (r *Request) NextDue(now time.Time) time.Time {
	switch {
	case r.Status == StatusPending && r.GrantType == GrantTimeRestricted:
		return *r.GrantEnd
	case r.Status != StatusApproved:
		return time.Time{}
	case r.GrantStart != nil && now.Before(*r.GrantStart):
		return *r.GrantStart
	case r.GrantEnd != nil:
		return *r.GrantEnd
	}
	return time.Time{}
}

// Active says whether the request counts against its workflow's max_active_requests: pending, or approved.
func (r *Request) Active() bool { return r.Status == StatusPending || r.Status == StatusApproved }

// Concerns says whether the request is p's own (made by or for p), or one p may decide or has decided on.
func (r *Request) Concerns(p Principal) (own, approver bool) {
	own = (r.Requester != nil && r.Requester.ID == p.ID) || (r.TargetUser != nil && r.TargetUser.ID == p.ID)
	for _, s := range r.Steps {
		for _, a := range s.Approvers {
			if p.holds(a.Role.ID) || (a.User != nil && a.User.ID == p.ID) {
				approver = true
			}
		}
	}
	return own, approver
}
