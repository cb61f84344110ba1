package workflow

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

var knownRoles = map[string]string{"r-ops": "ops", "r-dev": "dev", "r-lead": "leads", "r-sec": "security"}

func lookup(id string) (string, bool) { n, ok := knownRoles[id]; return n, ok }

// valid is a workflow that passes: devs request ops; step 1 any lead, step 2 all of lead and security.
func valid() *Workflow {
	return &Workflow{
		Name: "ops on call", GrantTypes: []string{GrantTimeRestricted, GrantFloating, GrantPermanent},
		MaxTimeRestrictedDuration: 2, MaxFloatingDuration: 8,
		TargetRoles: []Role{{ID: "r-ops"}}, RequesterRoles: []Role{{ID: "r-dev"}},
		Steps: []Step{
			{Name: "lead", Match: MatchAny, Approvers: []Approver{{Role: Role{ID: "r-lead"}}}},
			{Name: "four eyes", Match: MatchAll, Approvers: []Approver{{Role: Role{ID: "r-lead"}}, {Role: Role{ID: "r-sec"}}}},
		},
	}
}

func TestValidateWorkflow(t *testing.T) {
	cases := []struct {
		name   string
		change func(w *Workflow)
		field  string // "" means valid
		code   string
	}{
		{"valid", func(w *Workflow) {}, "", ""},
		{"no name", func(w *Workflow) { w.Name = " " }, "name", ""},
		{"missing target role", func(w *Workflow) { w.TargetRoles = []Role{{ID: "r-ops"}, {ID: "r-gone"}} }, "target_roles[1].id", "BAD_REFERENCE"},
		{"missing requester role", func(w *Workflow) { w.RequesterRoles[0].ID = "r-gone" }, "requester_roles[0].id", "BAD_REFERENCE"},
		{"missing approver role", func(w *Workflow) { w.Steps[1].Approvers[1].Role.ID = "r-gone" }, "steps[1].approvers[1].role.id", "BAD_REFERENCE"},
		{"no target roles", func(w *Workflow) { w.TargetRoles = nil }, "target_roles", ""},
		{"no requester roles", func(w *Workflow) { w.RequesterRoles = nil }, "requester_roles", ""},
		{"duplicate role", func(w *Workflow) { w.TargetRoles = []Role{{ID: "r-ops"}, {ID: "r-ops"}} }, "target_roles[1].id", ""},
		{"no steps", func(w *Workflow) { w.Steps = nil }, "steps", ""},
		{"four steps", func(w *Workflow) { w.Steps = append(w.Steps, w.Steps...) }, "steps", ""},
		{"bad match", func(w *Workflow) { w.Steps[0].Match = "most" }, "steps[0].match", ""},
		{"no approvers", func(w *Workflow) { w.Steps[1].Approvers = nil }, "steps[1].approvers", ""},
		{"no grant types", func(w *Workflow) { w.GrantTypes = nil }, "grant_types", ""},
		{"bad grant type", func(w *Workflow) { w.GrantTypes = []string{GrantPermanent, "FOREVER"} }, "grant_types[1]", ""},
		{"twice grant type", func(w *Workflow) { w.GrantTypes = []string{GrantPermanent, GrantPermanent} }, "grant_types[1]", ""},
		{"time restricted without max", func(w *Workflow) { w.MaxTimeRestrictedDuration = 0 }, "max_time_restricted_duration", ""},
		{"floating without max", func(w *Workflow) { w.MaxFloatingDuration = 0 }, "max_floating_duration", ""},
		{"max for a type not offered", func(w *Workflow) { w.GrantTypes = []string{GrantPermanent} }, "max_time_restricted_duration", ""},
		{"negative active", func(w *Workflow) { w.MaxActiveRequests = -1 }, "max_active_requests", ""},
		{"remove action", func(w *Workflow) { w.Action = "REMOVE" }, "action", model.CodeNotSupported},
		{"bypass revoke", func(w *Workflow) { w.CanBypassRevokeWF = true }, "can_bypass_revoke_workflow", model.CodeNotSupported},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := valid()
			c.change(w)
			err := w.Validate(lookup)
			if c.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if w.Action != ActionGrant || w.TargetRoles[0].Name != "ops" || w.Steps[1].Approvers[1].ID != "step-2-approver-2" {
					t.Fatalf("not filled in: %+v", w)
				}
				return
			}
			var fe *model.FieldError
			if !errors.As(err, &fe) || fe.Field != c.field || fe.Code != c.code {
				t.Fatalf("Validate = %v (%#v), want field %q code %q", err, fe, c.field, c.code)
			}
		})
	}
}

var (
	alice = Principal{ID: "u-alice", Name: "alice", RoleIDs: []string{"r-dev"}}
	lead1 = Principal{ID: "u-lead1", Name: "lead1", RoleIDs: []string{"r-lead"}}
	lead2 = Principal{ID: "u-lead2", Name: "lead2", RoleIDs: []string{"r-lead"}}
	sec   = Principal{ID: "u-sec", Name: "sec", RoleIDs: []string{"r-sec"}}
	both  = Principal{ID: "u-both", Name: "both", RoleIDs: []string{"r-lead", "r-sec"}}
	// devLead is a lead who is also a requester, to try approving their own request.
	devLead = Principal{ID: "u-devlead", Name: "devlead", RoleIDs: []string{"r-dev", "r-lead"}}
)

func tp(t time.Time) *time.Time { return &t }

func newReq(t *testing.T, who Principal, in Request) *Request {
	t.Helper()
	w := valid()
	if err := w.Validate(lookup); err != nil {
		t.Fatal(err)
	}
	r, err := NewRequest(w, &in, who, who.ref(), false, t0)
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	return r
}

func timed(start, end time.Duration) Request {
	return Request{RequestedRole: &Role{ID: "r-ops"}, GrantType: GrantTimeRestricted, GrantStart: tp(t0.Add(start)), GrantEnd: tp(t0.Add(end))}
}

func TestNewRequest(t *testing.T) {
	cases := []struct {
		name     string
		who      Principal
		in       Request
		target   *User
		onBehalf bool
		require  bool
		field    string
		rule     string
	}{
		{name: "timed", who: alice, in: timed(0, time.Hour)},
		{name: "floating", who: alice, in: Request{RequestedRole: &Role{ID: "r-ops"}, GrantType: GrantFloating, FloatingLength: 8}},
		{name: "permanent", who: alice, in: Request{RequestedRole: &Role{ID: "r-ops"}, GrantType: GrantPermanent}},
		{name: "role not in workflow", who: alice, in: Request{RequestedRole: &Role{ID: "r-sec"}, GrantType: GrantPermanent}, field: "requested_role.id"},
		{name: "no role", who: alice, in: Request{GrantType: GrantPermanent}, field: "requested_role.id"},
		{name: "not a requester", who: lead1, in: timed(0, time.Hour), rule: RuleNotRequester},
		{name: "for another user", who: alice, target: &User{ID: "u-bob"}, in: timed(0, time.Hour), rule: RuleOnBehalf},
		{name: "for another user with permission", who: alice, target: &User{ID: "u-bob"}, onBehalf: true, in: timed(0, time.Hour)},
		{name: "bad grant type", who: alice, in: Request{RequestedRole: &Role{ID: "r-ops"}, GrantType: "FOREVER"}, field: "grant_type"},
		{name: "window too long", who: alice, in: timed(0, 49*time.Hour), field: "grant_end"},
		{name: "window backwards", who: alice, in: timed(time.Hour, 0), field: "grant_end"},
		{name: "window over", who: alice, in: timed(-2*time.Hour, -time.Hour), field: "grant_end"},
		{name: "no start", who: alice, in: Request{RequestedRole: &Role{ID: "r-ops"}, GrantType: GrantTimeRestricted, GrantEnd: tp(t0.Add(time.Hour))}, field: "grant_start"},
		{name: "floating too long", who: alice, in: Request{RequestedRole: &Role{ID: "r-ops"}, GrantType: GrantFloating, FloatingLength: 9}, field: "floating_length"},
		{name: "floating zero", who: alice, in: Request{RequestedRole: &Role{ID: "r-ops"}, GrantType: GrantFloating}, field: "floating_length"},
		{name: "window on permanent", who: alice, in: Request{RequestedRole: &Role{ID: "r-ops"}, GrantType: GrantPermanent, GrantEnd: tp(t0)}, field: "grant_start"},
		{name: "justification required", who: alice, require: true, in: timed(0, time.Hour), field: "request_justification"},
		{name: "status set by client", who: alice, in: func() Request { r := timed(0, time.Hour); r.Status = StatusApproved; return r }(), field: "status"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := valid()
			w.RequiresJustification = c.require
			if err := w.Validate(lookup); err != nil {
				t.Fatal(err)
			}
			target := c.target
			if target == nil {
				target = c.who.ref()
			}
			r, err := NewRequest(w, &c.in, c.who, target, c.onBehalf, t0)
			var fe *model.FieldError
			var re *RuleError
			switch {
			case c.field != "":
				if !errors.As(err, &fe) || fe.Field != c.field {
					t.Fatalf("NewRequest = %v, want field %s", err, c.field)
				}
			case c.rule != "":
				if !errors.As(err, &re) || re.Rule != c.rule || !re.Forbidden() {
					t.Fatalf("NewRequest = %v, want rule %s", err, c.rule)
				}
			case err != nil:
				t.Fatalf("NewRequest: %v", err)
			default:
				if r.Status != StatusPending || len(r.Steps) != 2 || r.Steps[1].Approvers[1].Decision != DecisionPending || r.TargetUser.ID != target.ID {
					t.Fatalf("request = %+v", r)
				}
			}
		})
	}
}

// TestDecide plays sequences of decisions; the last one is checked for its error and the request's status.
func TestDecide(t *testing.T) {
	type move struct {
		who  Principal
		step int
		dec  string
	}
	cases := []struct {
		name   string
		moves  []move
		rule   string // of the last move
		status string // after the last move
	}{
		{"one step of two", []move{{lead1, 0, DecisionApproved}}, "", StatusPending},
		{"all three needed", []move{{lead1, 0, DecisionApproved}, {lead2, 1, DecisionApproved}}, "", StatusPending},
		{"quorum met", []move{{lead1, 0, DecisionApproved}, {lead2, 1, DecisionApproved}, {sec, 1, DecisionApproved}}, "", StatusApproved},
		{"rejection ends it", []move{{lead1, 0, DecisionRejected}}, "", StatusRejected},
		{"reject at the last step", []move{{lead1, 0, DecisionApproved}, {sec, 1, DecisionRejected}}, "", StatusRejected},
		{"self approval", []move{{alice, 0, DecisionApproved}}, RuleSelfApproval, StatusPending},
		{"deciding twice", []move{{lead1, 0, DecisionApproved}, {lead1, 1, DecisionApproved}}, RuleDecidedTwice, StatusPending},
		{"one user cannot fill two slots", []move{{lead1, 0, DecisionApproved}, {both, 1, DecisionApproved}, {both, 1, DecisionApproved}}, RuleDecidedTwice, StatusPending},
		{"step taken by another lead", []move{{lead1, 0, DecisionApproved}, {lead2, 1, DecisionApproved}, {lead1, 1, DecisionApproved}}, RuleDecidedTwice, StatusPending},
		{"slot already filled", []move{{lead1, 0, DecisionApproved}, {lead2, 1, DecisionApproved}, {devLead, 1, DecisionApproved}}, RuleNotApprover, StatusPending},
		{"not an approver of the step", []move{{sec, 0, DecisionApproved}}, RuleNotApprover, StatusPending},
		{"wrong step", []move{{lead1, 1, DecisionApproved}}, RuleWrongStep, StatusPending},
		{"after rejection", []move{{lead1, 0, DecisionRejected}, {lead2, 0, DecisionApproved}}, RuleNotPending, StatusRejected},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newReq(t, alice, timed(time.Hour, 3*time.Hour))
			var err error
			for i, m := range c.moves {
				err = r.Decide(m.who, Decision{Step: m.step, Decision: m.dec, Comment: "ok"}, t0.Add(time.Duration(i)*time.Minute))
				if i < len(c.moves)-1 && err != nil {
					t.Fatalf("move %d: %v", i, err)
				}
			}
			var re *RuleError
			if c.rule == "" && err != nil {
				t.Fatalf("last move: %v", err)
			}
			if c.rule != "" && (!errors.As(err, &re) || re.Rule != c.rule) {
				t.Fatalf("last move = %v, want rule %s", err, c.rule)
			}
			if r.Status != c.status {
				t.Fatalf("status = %s, want %s", r.Status, c.status)
			}
		})
	}
}

func TestSelfApprovalAsApprover(t *testing.T) {
	// devLead holds both the requester role and the approver role: holding the role does not let them approve
	// their own request.
	r := newReq(t, devLead, timed(0, time.Hour))
	err := r.Decide(devLead, Decision{Step: 0, Decision: DecisionApproved}, t0)
	var re *RuleError
	if !errors.As(err, &re) || re.Rule != RuleSelfApproval {
		t.Fatalf("Decide = %v, want %s", err, RuleSelfApproval)
	}
	if err := r.Decide(lead1, Decision{Step: 0, Decision: "maybe"}, t0); err == nil {
		t.Fatal("a decision that is neither approved nor rejected passed")
	}
}

// TestSelfApprovalOnBehalf: in a request made on behalf of another user, neither the requester nor the user who
// gets the role may decide on it, though both hold the approver role here.
func TestSelfApprovalOnBehalf(t *testing.T) {
	w := valid()
	if err := w.Validate(lookup); err != nil {
		t.Fatal(err)
	}
	otherDevLead := Principal{ID: "u-devlead2", Name: "devlead2", RoleIDs: []string{"r-dev", "r-lead"}}
	in := timed(0, time.Hour)
	r, err := NewRequest(w, &in, devLead, otherDevLead.ref(), true, t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []Principal{devLead, otherDevLead} {
		err := r.Decide(who, Decision{Step: 0, Decision: DecisionApproved}, t0)
		var re *RuleError
		if !errors.As(err, &re) || re.Rule != RuleSelfApproval {
			t.Errorf("%s deciding = %v, want %s", who.Name, err, RuleSelfApproval)
		}
	}
	if err := r.Decide(lead1, Decision{Step: 0, Decision: DecisionApproved}, t0); err != nil {
		t.Fatalf("a third lead deciding: %v", err)
	}
}

func approveAll(t *testing.T, r *Request, at time.Time) {
	t.Helper()
	for _, m := range []struct {
		p    Principal
		step int
	}{{lead1, 0}, {lead2, 1}, {sec, 1}} {
		if err := r.Decide(m.p, Decision{Step: m.step, Decision: DecisionApproved}, at); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGrantWindows(t *testing.T) {
	cases := []struct {
		name       string
		in         Request
		approvedAt time.Duration
		status     string
		holdsAt    []time.Duration // Holds is true at these offsets from t0
		notAt      []time.Duration
		expiresAt  time.Duration // Advance expires it at this offset; 0 means never
	}{
		{name: "timed, approved before its start", in: timed(time.Hour, 2*time.Hour), status: StatusApproved,
			holdsAt: []time.Duration{time.Hour, 2*time.Hour - 1}, notAt: []time.Duration{time.Hour - 1, 2 * time.Hour}, expiresAt: 2 * time.Hour},
		{name: "timed, approved inside", in: timed(0, 2*time.Hour), approvedAt: time.Hour, status: StatusApproved,
			holdsAt: []time.Duration{time.Hour}, notAt: []time.Duration{2 * time.Hour}, expiresAt: 2 * time.Hour},
		{name: "timed, approved too late", in: timed(0, time.Hour), approvedAt: time.Hour, status: StatusExpired,
			notAt: []time.Duration{time.Hour}},
		{name: "floating runs from approval", in: Request{RequestedRole: &Role{ID: "r-ops"}, GrantType: GrantFloating, FloatingLength: 3},
			approvedAt: time.Hour, status: StatusApproved, holdsAt: []time.Duration{time.Hour, 4*time.Hour - 1},
			notAt: []time.Duration{time.Hour - 1, 4 * time.Hour}, expiresAt: 4 * time.Hour},
		{name: "permanent", in: Request{RequestedRole: &Role{ID: "r-ops"}, GrantType: GrantPermanent}, status: StatusApproved,
			holdsAt: []time.Duration{0, 1000 * time.Hour}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newReq(t, alice, c.in)
			approveAll(t, r, t0.Add(c.approvedAt))
			if r.Status != c.status {
				t.Fatalf("status = %s, want %s", r.Status, c.status)
			}
			for _, d := range c.holdsAt {
				if !r.Holds(t0.Add(d)) {
					t.Errorf("does not hold at +%v", d)
				}
			}
			for _, d := range c.notAt {
				if r.Holds(t0.Add(d)) {
					t.Errorf("holds at +%v", d)
				}
			}
			if c.expiresAt == 0 {
				if r.Advance(t0.Add(10000*time.Hour)) && c.status == StatusApproved {
					t.Fatal("a grant without an end expired")
				}
				return
			}
			if due := r.NextDue(t0.Add(c.expiresAt - 1)); !due.Equal(t0.Add(c.expiresAt)) {
				t.Errorf("NextDue = %v, want +%v", due, c.expiresAt)
			}
			if r.Advance(t0.Add(c.expiresAt - 1)) {
				t.Fatal("expired early")
			}
			if !r.Advance(t0.Add(c.expiresAt)) || r.Status != StatusExpired {
				t.Fatalf("did not expire on time: %s", r.Status)
			}
			if r.Advance(t0.Add(c.expiresAt + time.Hour)) {
				t.Fatal("expired twice")
			}
		})
	}
}

func TestPendingExpires(t *testing.T) {
	r := newReq(t, alice, timed(0, time.Hour))
	if !r.Advance(t0.Add(time.Hour)) || r.Status != StatusExpired {
		t.Fatalf("pending timed request did not expire: %s", r.Status)
	}
	err := r.Decide(lead1, Decision{Step: 0, Decision: DecisionApproved}, t0.Add(time.Hour))
	var re *RuleError
	if !errors.As(err, &re) || re.Rule != RuleNotPending {
		t.Fatalf("decision on an expired request = %v", err)
	}
	p := newReq(t, alice, Request{RequestedRole: &Role{ID: "r-ops"}, GrantType: GrantPermanent})
	if p.Advance(t0.Add(1000 * time.Hour)) {
		t.Fatal("a pending permanent request expired")
	}
}

func TestRevoke(t *testing.T) {
	outsider := Principal{ID: "u-x", RoleIDs: []string{"r-dev"}}
	cases := []struct {
		name  string
		who   Principal
		admin bool
		grant bool
		rule  string
	}{
		{name: "approver", who: sec, grant: true},
		{name: "its user gives it up", who: alice, grant: true},
		{name: "admin", who: outsider, admin: true, grant: true},
		{name: "outsider", who: outsider, grant: true, rule: RuleNotRevoker},
		{name: "not approved yet", who: sec, rule: RuleNotGranted},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newReq(t, alice, Request{RequestedRole: &Role{ID: "r-ops"}, GrantType: GrantPermanent})
			if c.grant {
				approveAll(t, r, t0)
			}
			err := r.Revoke(c.who, c.admin, t0.Add(time.Hour))
			var re *RuleError
			if c.rule != "" {
				if !errors.As(err, &re) || re.Rule != c.rule {
					t.Fatalf("Revoke = %v, want %s", err, c.rule)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != StatusRevoked || !r.TargetRoleRevoked || r.TargetRoleRevokedBy.ID != c.who.ID || r.Holds(t0.Add(time.Hour)) {
				t.Fatalf("after revoke: %+v", r)
			}
			if err := r.Revoke(c.who, c.admin, t0.Add(2*time.Hour)); err == nil {
				t.Fatal("revoked twice")
			}
		})
	}
}

func TestCanDecideAndConcerns(t *testing.T) {
	r := newReq(t, alice, timed(0, time.Hour))
	if !r.CanDecide(lead1) || r.CanDecide(sec) || r.CanDecide(alice) {
		t.Fatal("CanDecide at step 0 wrong")
	}
	if own, appr := r.Concerns(alice); !own || appr {
		t.Fatalf("alice concerns = %v %v", own, appr)
	}
	if own, appr := r.Concerns(sec); own || !appr {
		t.Fatalf("sec concerns = %v %v", own, appr)
	}
}
