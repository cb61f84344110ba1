package approval

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func pending(rules ...Rule) Request {
	return Request{ID: "r1", SessionID: "s1", RequesterID: "u-alice", Requester: "alice", ClientAddress: "127.0.0.2:40000",
		State: StatePending, Rules: rules, Created: t0, Expires: t0.Add(time.Hour)}
}

func TestDecide(t *testing.T) {
	auth := Rule{Authorizer: "approvers", Permission: PermAuthorize}
	strict := Rule{Authorizer: "approvers", Permission: PermAuditAndAuthorize, RequireDifferentUsername: true, RequireDifferentIP: true}
	bob := Decider{ID: "u-bob", Name: "bob", Roles: []string{"approvers"}, Address: netip.MustParseAddr("127.0.0.3")}
	aliceSelf := Decider{ID: "u-alice", Name: "alice", Roles: []string{"approvers"}, Address: netip.MustParseAddr("127.0.0.9")}
	bobSameIP := bob
	bobSameIP.Address = netip.MustParseAddr("::ffff:127.0.0.2")
	auditorOnly := Rule{Authorizer: "auditors", Permission: PermAudit}
	carol := Decider{ID: "u-carol", Name: "carol", Roles: []string{"auditors"}, Address: netip.MustParseAddr("127.0.0.4")}
	approved := pending(auth)
	approved.State, approved.Decider = StateApproved, "bob"

	cases := []struct {
		name    string
		req     Request
		d       Decider
		approve bool
		now     time.Time
		want    State
		err     error
		errHas  string
	}{
		{name: "authorizer approves", req: pending(auth), d: bob, approve: true, now: t0, want: StateApproved},
		{name: "authorizer rejects", req: pending(auth), d: bob, now: t0, want: StateRejected},
		{name: "own request allowed without the rule", req: pending(auth), d: aliceSelf, approve: true, now: t0, want: StateApproved},
		{name: "own request refused by require_different_username", req: pending(strict), d: aliceSelf, approve: true, now: t0,
			err: ErrSameUser, errHas: "by role approvers"},
		{name: "same username other case", req: pending(strict), d: Decider{ID: "x", Name: "ALICE", Roles: []string{"approvers"},
			Address: netip.MustParseAddr("127.0.0.5")}, approve: true, now: t0, err: ErrSameUser},
		{name: "same address refused by require_different_ip", req: pending(strict), d: bobSameIP, approve: true, now: t0, err: ErrSameAddress},
		{name: "unknown decider address refused by require_different_ip", req: pending(strict), d: Decider{ID: "u-bob", Name: "bob",
			Roles: []string{"approvers"}}, approve: true, now: t0, err: ErrSameAddress},
		{name: "different user and address pass strict", req: pending(strict), d: bob, approve: true, now: t0, want: StateApproved},
		{name: "a second lenient rule admits", req: pending(strict, auth), d: aliceSelf, approve: true, now: t0, want: StateApproved},
		{name: "not an authorizer", req: pending(auth), d: Decider{ID: "u-eve", Name: "eve", Roles: []string{"users"}}, approve: true,
			now: t0, err: ErrNotAuthorizer},
		{name: "audit permission does not authorize", req: pending(auth, auditorOnly), d: carol, approve: true, now: t0, err: ErrNotAuthorizer},
		{name: "deciding twice", req: approved, d: bob, now: t0, err: ErrDecided, errHas: "approved by bob"},
		{name: "too late", req: pending(auth), d: bob, approve: true, now: t0.Add(time.Hour), want: StateExpired, err: ErrExpired},
		{name: "comment too long", req: pending(auth), d: bob, approve: true, now: t0, err: &FieldError{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			comment := "ok"
			if strings.HasPrefix(c.name, "comment") {
				comment = strings.Repeat("x", MaxComment+1)
			}
			got, err := Decide(c.req, c.d, c.approve, comment, c.now)
			var fe *FieldError
			switch {
			case c.err == nil && err != nil:
				t.Fatalf("Decide: %v", err)
			case c.err != nil && errors.As(c.err, &fe):
				if !errors.As(err, &fe) || fe.Field != "comment" {
					t.Fatalf("err = %v, want a comment field error", err)
				}
				return
			case c.err != nil && !errors.Is(err, c.err):
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if c.errHas != "" && !strings.Contains(err.Error(), c.errHas) {
				t.Errorf("err %q does not name %q", err, c.errHas)
			}
			if c.want != "" && got.State != c.want {
				t.Errorf("state = %s, want %s", got.State, c.want)
			}
			if c.err == nil && (got.Decider != c.d.Name || got.Comment != comment || !got.Decided.Equal(c.now)) {
				t.Errorf("decision not recorded: %+v", got)
			}
			if c.err != nil && c.want == "" && got.State != c.req.State {
				t.Errorf("a refused decision changed the state to %s", got.State)
			}
		})
	}
}

func TestRequiredAndAuditor(t *testing.T) {
	rules := []Rule{
		{Authorizer: "approvers", Permission: PermAuthorize, SubjectGroup: "contractors"},
		{Authorizer: "auditors", Permission: PermAudit},
		{Authorizer: "leads", Permission: PermAuditAndAuthorize, SubjectGroup: "interns"},
	}
	cases := []struct {
		roles []string
		want  int
	}{{nil, 0}, {[]string{"staff"}, 0}, {[]string{"contractors"}, 1}, {[]string{"contractors", "interns"}, 2}}
	for _, c := range cases {
		if got := Required(rules, c.roles); len(got) != c.want {
			t.Errorf("Required(%v) = %d rules, want %d", c.roles, len(got), c.want)
		}
	}
	if !Auditor(rules, []string{"auditors"}, []string{"staff"}) {
		t.Error("an audit rule for everybody does not make its role an auditor")
	}
	if Auditor(rules, []string{"approvers"}, []string{"contractors"}) {
		t.Error("authorize alone made an auditor")
	}
	if !Auditor(rules, []string{"leads"}, []string{"interns"}) || Auditor(rules, []string{"leads"}, []string{"staff"}) {
		t.Error("audit_and_authorize must audit its subjects only")
	}
	for _, c := range []struct {
		roles []string
		want  bool
	}{{nil, false}, {[]string{"approvers"}, false}, {[]string{"auditors"}, true}, {[]string{"staff", "leads"}, true}} {
		if got := AuditsSome(rules, c.roles); got != c.want {
			t.Errorf("AuditsSome(%v) = %v, want %v", c.roles, got, c.want)
		}
	}
}

func TestRuleCheck(t *testing.T) {
	cases := []struct {
		r     Rule
		field string
	}{
		{Rule{Authorizer: "a", Permission: PermAuthorize}, ""},
		{Rule{Authorizer: "", Permission: PermAuthorize}, "authorizer"},
		{Rule{Authorizer: "a", Permission: "approve"}, "permission"},
		{Rule{Authorizer: "a", Permission: PermAudit, RequireDifferentIP: true}, "permission"},
	}
	for _, c := range cases {
		err := c.r.Check()
		var fe *FieldError
		if c.field == "" && err != nil || c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field) {
			t.Errorf("Check(%+v) = %v, want field %q", c.r, err, c.field)
		}
	}
}

func TestParseDecision(t *testing.T) {
	cases := []struct {
		body    string
		approve bool
		field   string
	}{
		{`{"decision":"approve","comment":"looks fine"}`, true, ""},
		{`{"decision":"rejected"}`, false, ""},
		{`{"decision":"maybe"}`, false, "decision"},
		{`{"comment":"x"}`, false, "decision"},
		{`{"decision":"approve","extra":1}`, false, "body"},
		{`{"decision":"approve"} {}`, false, "body"},
		{`{"decision":"approve","comment":"a\u0000b"}`, false, "comment"},
		{`[]`, false, "body"},
	}
	for _, c := range cases {
		got, err := ParseDecision([]byte(c.body))
		var fe *FieldError
		if c.field == "" {
			if err != nil || got.Approve != c.approve {
				t.Errorf("ParseDecision(%s) = %+v, %v", c.body, got, err)
			}
		} else if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("ParseDecision(%s) err = %v, want field %s", c.body, err, c.field)
		}
	}
}

func TestParseState(t *testing.T) {
	for _, s := range []string{"pending", "approved", "rejected", "expired"} {
		if st, err := ParseState(s); err != nil || string(st) != s {
			t.Errorf("ParseState(%s) = %v, %v", s, st, err)
		}
	}
	if _, err := ParseState("PENDING"); err == nil {
		t.Error("ParseState accepted a state in the wrong case")
	}
}
