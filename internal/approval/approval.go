// Package approval is the pure model of four-eyes approval of API sessions (SPS access_control): which sessions
// need an authorizer's approval, who may decide, and what a decision does to a request. It does no I/O; the hold
// package keeps requests in the store and holds the proxy's first request until a decision.
package approval

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// State is where an approval request stands. Only StatePending changes, once, to one of the others.
type State string

// The states of an approval request.
const (
	StatePending  State = "pending"
	StateApproved State = "approved"
	StateRejected State = "rejected"
	StateExpired  State = "expired"
)

// Final reports whether s can no longer change.
func (s State) Final() bool { return s == StateApproved || s == StateRejected || s == StateExpired }

// ParseState accepts one of the four states by name.
func ParseState(s string) (State, error) {
	switch st := State(s); st {
	case StatePending, StateApproved, StateRejected, StateExpired:
		return st, nil
	}
	return "", fmt.Errorf("state %q: must be one of pending, approved, rejected, expired", s)
}

// The permissions of an access_control entry, as in the reference.
const (
	PermAudit             = "audit"
	PermAuthorize         = "authorize"
	PermAuditAndAuthorize = "audit_and_authorize"
)

// Rule is one access_control entry of a connection policy. Authorizer and SubjectGroup are Gatehouse role names
// (the configuration API's usergroups are roles); an empty SubjectGroup means everybody.
type Rule struct {
	Authorizer               string `json:"authorizer"`
	Permission               string `json:"permission"`
	SubjectGroup             string `json:"subject_group,omitempty"`
	RequireDifferentIP       bool   `json:"require_different_ip,omitempty"`
	RequireDifferentUsername bool   `json:"require_different_username,omitempty"`
}

// Authorizes reports whether the rule's authorizers decide on connections.
func (r Rule) Authorizes() bool {
	return r.Permission == PermAuthorize || r.Permission == PermAuditAndAuthorize
}

// Audits reports whether the rule's authorizers may watch the connections and read their trails.
func (r Rule) Audits() bool {
	return r.Permission == PermAudit || r.Permission == PermAuditAndAuthorize
}

// Covers reports whether a user holding roles is a subject of the rule.
func (r Rule) Covers(roles []string) bool {
	return r.SubjectGroup == "" || slices.Contains(roles, r.SubjectGroup)
}

// Name describes the rule in errors and audit events: which role authorizes whom.
func (r Rule) Name() string {
	subj := "everybody"
	if r.SubjectGroup != "" {
		subj = "role " + r.SubjectGroup
	}
	return fmt.Sprintf("access_control %s of %s by role %s", r.Permission, subj, r.Authorizer)
}

// Check validates a rule; the error names the field.
func (r Rule) Check() error {
	switch {
	case strings.TrimSpace(r.Authorizer) == "":
		return &FieldError{Field: "authorizer", Msg: "must name a role"}
	case r.Permission != PermAudit && r.Permission != PermAuthorize && r.Permission != PermAuditAndAuthorize:
		return &FieldError{Field: "permission", Msg: "must be audit, authorize or audit_and_authorize"}
	case r.Permission == PermAudit && (r.RequireDifferentIP || r.RequireDifferentUsername):
		return &FieldError{Field: "permission", Msg: "require_different_ip and require_different_username only apply to rules that authorize"}
	}
	return nil
}

// FieldError is bad input in one named field.
type FieldError struct{ Field, Msg string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Required returns the rules that make a session of a user holding roles wait for approval: those that authorize
// and cover the user. None means the session needs no approval.
func Required(rules []Rule, roles []string) []Rule {
	var out []Rule
	for _, r := range rules {
		if r.Authorizes() && r.Covers(roles) {
			out = append(out, r)
		}
	}
	return out
}

// Auditor reports whether a user holding roles may watch and read the trails of sessions under rules: an audit
// rule that covers the session's user names one of the roles.
func Auditor(rules []Rule, roles, requesterRoles []string) bool {
	return slices.ContainsFunc(rules, func(r Rule) bool {
		return r.Audits() && r.Covers(requesterRoles) && slices.Contains(roles, r.Authorizer)
	})
}

// AuditsSome reports whether rules make a holder of roles an auditor of at least some sessions under them: an
// audit rule names one of the roles, whatever its subject. Auditor then decides per session.
func AuditsSome(rules []Rule, roles []string) bool {
	return slices.ContainsFunc(rules, func(r Rule) bool { return r.Audits() && slices.Contains(roles, r.Authorizer) })
}

// Request is one approval request: a new API session waiting for an authorizer.
type Request struct {
	ID string `json:"id"`
	// SessionID is the API session the approval covers, and only that one.
	SessionID string `json:"session_id"`
	// PolicyKey and PolicyName name the connection policy whose access_control asked for approval.
	PolicyKey  string `json:"policy_key"`
	PolicyName string `json:"policy_name"`
	// RequesterID and Requester are the user who opened the session; ClientAddress is where from.
	RequesterID   string `json:"requester_id"`
	Requester     string `json:"requester"`
	ClientAddress string `json:"client_address"`
	// TargetID and Target name the API target; RequestLine is the session's first request ("GET https://...").
	TargetID    string `json:"target_id"`
	Target      string `json:"target"`
	RequestLine string `json:"request_line"`
	// Node is the cluster node holding the session's first request.
	Node  string `json:"node,omitempty"`
	State State  `json:"state"`
	// Rules are the authorizing rules that applied when the request was made; they decide who may decide.
	Rules []Rule `json:"rules"`
	// DeciderID, Decider and DeciderAddress say who approved or rejected, and from where; Comment is theirs.
	DeciderID      string    `json:"decider_id,omitempty"`
	Decider        string    `json:"decider,omitempty"`
	DeciderAddress string    `json:"decider_address,omitempty"`
	Comment        string    `json:"comment,omitempty"`
	Created        time.Time `json:"created"`
	// Expires is when a pending request becomes expired.
	Expires time.Time `json:"expires"`
	// Decided is when the state left pending (approved, rejected or expired); zero while pending.
	Decided time.Time `json:"decided,omitzero"`
}

// Decider is who asks to decide: a user with the roles they hold now, and the address they call from.
type Decider struct {
	ID, Name string
	Roles    []string
	Address  netip.Addr
}

// Errors of Decide; each decision refused is one of these, wrapped with the rule or state that refused it.
var (
	// ErrNotAuthorizer means the decider holds no authorizer role of the request's rules.
	ErrNotAuthorizer = errors.New("not an authorizer of this connection")
	// ErrSameUser means a rule with require_different_username refused the requester deciding on their own session.
	ErrSameUser = errors.New("require_different_username: the requester cannot decide on their own session")
	// ErrSameAddress means a rule with require_different_ip refused a decider at the requester's address.
	ErrSameAddress = errors.New("require_different_ip: the decider must call from another address than the requester")
	// ErrDecided means the request is no longer pending.
	ErrDecided = errors.New("approval request already decided")
	// ErrExpired means the request ran out of time before a decision.
	ErrExpired = errors.New("approval request expired")
)

// MaxComment is the longest comment a decision may carry, in bytes.
const MaxComment = 2000

// Decide applies an approval (approve true) or a rejection by d to a copy of req at now. The decider must hold the
// authorizer role of at least one of the request's rules and pass that rule's requirements; the error names the
// rule that refused otherwise. A request decides once: a second decision is ErrDecided, a late one ErrExpired
// (the returned copy is then marked expired, for the caller to store).
func Decide(req Request, d Decider, approve bool, comment string, now time.Time) (Request, error) {
	if err := CheckComment(comment); err != nil {
		return req, err
	}
	if req.State != StatePending {
		by := ""
		if req.Decider != "" {
			by = " by " + req.Decider
		}
		return req, fmt.Errorf("%w: it is %s%s", ErrDecided, req.State, by)
	}
	if next, ok := Expire(req, now); ok {
		return next, ErrExpired
	}
	var refused error
	admitted := false
	for _, r := range req.Rules {
		if !r.Authorizes() || !slices.Contains(d.Roles, r.Authorizer) {
			continue
		}
		switch {
		case r.RequireDifferentUsername && sameUser(req, d):
			refused = fmt.Errorf("%w (%s)", ErrSameUser, r.Name())
		case r.RequireDifferentIP && sameAddress(req, d):
			refused = fmt.Errorf("%w (%s)", ErrSameAddress, r.Name())
		default:
			admitted = true
		}
		if admitted {
			break
		}
	}
	if !admitted {
		if refused != nil {
			return req, refused
		}
		return req, ErrNotAuthorizer
	}
	req.State = StateRejected
	if approve {
		req.State = StateApproved
	}
	req.DeciderID, req.Decider, req.Comment, req.Decided = d.ID, d.Name, comment, now
	if d.Address.IsValid() {
		req.DeciderAddress = d.Address.Unmap().String()
	}
	return req, nil
}

// Expire marks a pending request whose time is up as expired; ok reports whether it did.
func Expire(req Request, now time.Time) (Request, bool) {
	if req.State != StatePending || now.Before(req.Expires) {
		return req, false
	}
	req.State, req.Decided = StateExpired, now
	return req, true
}

func sameUser(req Request, d Decider) bool {
	return (req.RequesterID != "" && req.RequesterID == d.ID) || strings.EqualFold(req.Requester, d.Name)
}

// sameAddress compares addresses without port or IPv4-in-IPv6 mapping; an address that does not parse is taken
// to be the same, so a rule that cannot be checked refuses.
func sameAddress(req Request, d Decider) bool {
	ap, err := netip.ParseAddrPort(req.ClientAddress)
	var a netip.Addr
	if err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(req.ClientAddress); err != nil {
		return true
	}
	return !d.Address.IsValid() || a.Unmap().WithZone("") == d.Address.Unmap().WithZone("")
}

// CheckComment refuses a comment that is too long or carries control characters (it goes into logs, e-mail and
// the trail).
func CheckComment(c string) error {
	if len(c) > MaxComment {
		return &FieldError{Field: "comment", Msg: fmt.Sprintf("must be at most %d bytes", MaxComment)}
	}
	for _, r := range c {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
			return &FieldError{Field: "comment", Msg: "must not contain control characters"}
		}
	}
	return nil
}

// MayDecide reports whether a user holding roles is an authorizer of the request (before the requirements of
// Decide): the authorizer role of one of its authorizing rules.
func (r Request) MayDecide(roles []string) bool {
	return slices.ContainsFunc(r.Rules, func(x Rule) bool { return x.Authorizes() && slices.Contains(roles, x.Authorizer) })
}
