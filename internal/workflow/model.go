// Package workflow holds the rules of just-in-time roles: workflows that name the roles users may request and who
// approves them, the requests made through them, and the decisions on those requests. It is pure: no I/O and no
// clock of its own (every rule takes the time it runs at), so that each rule is table-tested. The JSON shapes are
// those of PrivX's workflow engine (/workflow-engine/api/v1).
package workflow

import "time"

// Grant types: how long an approved request holds its role.
const (
	// GrantPermanent holds the role from approval until an approver revokes it.
	GrantPermanent = "PERMANENT"
	// GrantTimeRestricted holds the role from the request's grant_start to its grant_end.
	GrantTimeRestricted = "TIME_RESTRICTED"
	// GrantFloating holds the role for floating_length hours from approval.
	GrantFloating = "FLOATING"
)

// Step matches: how many of a step's approvers must approve.
const (
	// MatchAll needs an approval for every approver of the step, each from a different user.
	MatchAll = "all"
	// MatchAny needs one approval from any approver of the step.
	MatchAny = "any"
)

// Request statuses.
const (
	StatusPending  = "PENDING"
	StatusApproved = "APPROVED"
	StatusRejected = "REJECTED"
	// StatusExpired is a request whose window ended, granted or not.
	StatusExpired = "EXPIRED"
	// StatusRevoked is an approved request whose role an approver took back.
	StatusRevoked = "REVOKED"
)

// Decisions of an approver.
const (
	DecisionPending  = "pending"
	DecisionApproved = "approved"
	DecisionRejected = "rejected"
)

// ActionGrant is the only workflow action Gatehouse runs: requests that add a role. PrivX's "REMOVE" workflows
// (requests to take one away) are refused.
const ActionGrant = "GRANT"

// Units of the duration fields, as PrivX counts them.
const (
	// FloatingUnit is the unit of floating_length and max_floating_duration.
	FloatingUnit = time.Hour
	// TimeRestrictedUnit is the unit of max_time_restricted_duration.
	TimeRestrictedUnit = 24 * time.Hour
	// MaxSteps is the most approval steps a workflow may have.
	MaxSteps = 3
)

// Role is a reference to a role by id; Name is filled in on reads and Deleted marks a role that no longer exists.
type Role struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Deleted bool   `json:"deleted,omitempty"`
}

// Is says whether the reference r names other: by id, or by name when r has no id (a requester may name a role
// without being allowed to read roles).
func (r *Role) Is(other Role) bool {
	if r.ID != "" {
		return r.ID == other.ID
	}
	return r.Name != "" && r.Name == other.Name && !other.Deleted
}

// User is a reference to a user.
type User struct {
	ID          string `json:"id"`
	DisplayName string `json:"display_name,omitempty"`
	Deleted     bool   `json:"deleted"`
}

// Approver is one approver of a step: whoever holds Role may decide for it.
type Approver struct {
	ID   string `json:"id,omitempty"`
	Role Role   `json:"role"`
}

// Step is one approval step of a workflow; a request passes the steps in order.
type Step struct {
	ID        string     `json:"id,omitempty"`
	Name      string     `json:"name,omitempty"`
	Match     string     `json:"match"`
	Approvers []Approver `json:"approvers"`
}

// Workflow names roles that can be requested, by whom, with which grants, and who approves.
type Workflow struct {
	ID        string    `json:"id"`
	Author    string    `json:"author"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
	UpdatedBy string    `json:"updated_by"`
	Name      string    `json:"name"`
	// GrantTypes are the grant types a request may ask for.
	GrantTypes []string `json:"grant_types"`
	// MaxTimeRestrictedDuration is the longest TIME_RESTRICTED window, in days.
	MaxTimeRestrictedDuration int64 `json:"max_time_restricted_duration,omitempty"`
	// MaxFloatingDuration is the longest FLOATING length, in hours.
	MaxFloatingDuration int64 `json:"max_floating_duration,omitempty"`
	// MaxActiveRequests caps a user's requests through this workflow that are pending or hold their role; 0
	// means no cap.
	MaxActiveRequests int64  `json:"max_active_requests"`
	TargetRoles       []Role `json:"target_roles"`
	RequesterRoles    []Role `json:"requester_roles"`
	Action            string `json:"action,omitempty"`
	CanBypassRevokeWF bool   `json:"can_bypass_revoke_workflow"`
	Comment           string `json:"comment,omitempty"`
	Steps             []Step `json:"steps"`
	// RequiresJustification refuses requests without a request_justification.
	RequiresJustification bool `json:"requires_justification"`
}

// RequestApprover is an approver slot of a request's step and the decision taken in it.
type RequestApprover struct {
	ID           string     `json:"id"`
	Role         Role       `json:"role"`
	Decision     string     `json:"decision"`
	User         *User      `json:"user,omitempty"`
	DecisionTime *time.Time `json:"decision_time,omitempty"`
	Comment      string     `json:"comment"`
}

// RequestStep is a step of a request, copied from its workflow when the request was made: a later change to the
// workflow does not change what a request needs.
type RequestStep struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Match     string            `json:"match"`
	Approvers []RequestApprover `json:"approvers"`
}

// Request is a request for a role through a workflow.
type Request struct {
	ID        string    `json:"id"`
	Author    string    `json:"author"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
	UpdatedBy string    `json:"updated_by"`
	Name      string    `json:"name,omitempty"`
	// WorkflowID is the workflow the request goes through.
	WorkflowID           string `json:"workflow"`
	Requester            *User  `json:"requester,omitempty"`
	RequestedRole        *Role  `json:"requested_role,omitempty"`
	RequestJustification string `json:"request_justification"`
	GrantType            string `json:"grant_type,omitempty"`
	// GrantStart and GrantEnd are the window asked for (TIME_RESTRICTED) and, once approved, the window granted;
	// a zero GrantEnd of an approved request means it holds until revoked.
	GrantStart     *time.Time `json:"grant_start,omitempty"`
	GrantEnd       *time.Time `json:"grant_end,omitempty"`
	FloatingLength int64      `json:"floating_length,omitempty"`
	// TargetUser is who gets the role: the requester unless made on behalf of another user.
	TargetUser           *User         `json:"target_user,omitempty"`
	Action               string        `json:"action,omitempty"`
	Status               string        `json:"status"`
	Comment              string        `json:"comment,omitempty"`
	Steps                []RequestStep `json:"steps"`
	ApproverCanRevoke    bool          `json:"approver_can_revoke"`
	TargetRoleRevoked    bool          `json:"target_role_revoked"`
	TargetRoleRevokeTime *time.Time    `json:"target_role_revocation_time,omitempty"`
	TargetRoleRevokedBy  *User         `json:"target_role_revoked_by,omitempty"`
}

// Decision is an approver's answer to the current step of a request.
type Decision struct {
	Step     int    `json:"step"`
	Decision string `json:"decision"`
	Comment  string `json:"comment,omitempty"`
}

// Search is the body of requests/search.
type Search struct {
	Keywords  string `json:"keywords,omitempty"`
	StartTime string `json:"start_time,omitempty"`
	EndTime   string `json:"end_time,omitempty"`
	Filter    string `json:"filter,omitempty"`
}
