package approval

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

// FuzzDecide parses any body as a decision and applies it: it never panics, never lets a refused decision change
// the request, never decides a request twice, and never lets the requester decide under require_different_username.
func FuzzDecide(f *testing.F) {
	f.Add([]byte(`{"decision":"approve","comment":"ok"}`), "bob", "127.0.0.3", true, false)
	f.Add([]byte(`{"decision":"reject"}`), "alice", "127.0.0.2", true, true)
	f.Add([]byte(`{"decision":"approved","comment":"\t"}`), "", "", false, false)
	f.Add([]byte(`not json`), "bob", "::1", false, true)
	f.Fuzz(func(t *testing.T, body []byte, name, addr string, diffUser, diffIP bool) {
		in, err := ParseDecision(body)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("ParseDecision error without a field: %v", err)
			}
			return
		}
		rule := Rule{Authorizer: "approvers", Permission: PermAuthorize, RequireDifferentUsername: diffUser, RequireDifferentIP: diffIP}
		req := pending(rule)
		a, _ := netip.ParseAddr(addr)
		d := Decider{ID: "id-" + name, Name: name, Roles: []string{"approvers"}, Address: a}
		got, err := Decide(req, d, in.Approve, in.Comment, t0)
		if err != nil {
			if got.State != StatePending {
				t.Fatalf("refused decision changed state to %s", got.State)
			}
			return
		}
		if diffUser && sameUser(req, d) {
			t.Fatalf("requester %q decided under require_different_username", name)
		}
		if diffIP && sameAddress(req, d) {
			t.Fatalf("decider at %q decided under require_different_ip", addr)
		}
		if want := map[bool]State{true: StateApproved, false: StateRejected}[in.Approve]; got.State != want {
			t.Fatalf("state %s, want %s", got.State, want)
		}
		if _, err := Decide(got, d, !in.Approve, "", t0.Add(time.Second)); !errors.Is(err, ErrDecided) {
			t.Fatalf("second decision: %v", err)
		}
	})
}
