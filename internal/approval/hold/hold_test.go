package hold

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/gatehouse-dev/gatehouse/internal/proxy"
	"github.com/gatehouse-dev/gatehouse/internal/storetest"
)

type sidKey struct{}

func newService(t *testing.T, rules []approval.Rule, roles map[string][]string) *Service {
	t.Helper()
	st := storetest.SQLite(t)
	return &Service{Store: st, Rules: func(string) []approval.Rule { return rules },
		Roles:     func(_ context.Context, id string) ([]string, error) { return roles[id], nil },
		SessionID: func(ctx context.Context) string { s, _ := ctx.Value(sidKey{}).(string); return s },
		Wait:      time.Minute, Poll: 10 * time.Millisecond}
}

func grant(user string) *proxy.Grant {
	return &proxy.Grant{Target: &proxy.Target{ID: "t1", Name: "orders"}, Policy: &proxy.SessionPolicy{Key: "p1", Name: "four-eyes"},
		Session: proxy.SessionInfo{UserID: "id-" + user, UserName: user}}
}

var client = netip.MustParseAddrPort("127.0.0.2:4000")

func TestConcurrentFirstRequestsShareOneApproval(t *testing.T) {
	s := newService(t, []approval.Rule{{Authorizer: "approvers", Permission: approval.PermAuthorize}}, nil)
	ctx := context.WithValue(context.Background(), sidKey{}, "s1")
	var wg sync.WaitGroup
	var passed atomic.Int32
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Admit(ctx, grant("alice"), client, "GET https://orders.test/a"); err == nil {
				passed.Add(1)
			} else {
				t.Errorf("held request: %v", err)
			}
		}()
	}
	var req approval.Request
	for i := 0; ; i++ {
		list, total, err := s.Store.ListApprovals(context.Background(), approval.StatePending, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if total > 1 {
			t.Fatalf("%d approval requests for one session", total)
		}
		if total == 1 {
			req = list[0]
			break
		}
		if i > 500 {
			t.Fatal("no approval request was made")
		}
		time.Sleep(5 * time.Millisecond)
	}
	bob := approval.Decider{ID: "id-bob", Name: "bob", Roles: []string{"approvers"}, Address: netip.MustParseAddr("127.0.0.3")}
	if _, err := s.Decide(context.Background(), req.ID, bob, approval.DecisionInput{Approve: true}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if passed.Load() != 3 {
		t.Fatalf("%d of 3 held requests passed after the approval", passed.Load())
	}
	if _, total, _ := s.Store.ListApprovals(context.Background(), "", 0, 0); total != 1 {
		t.Fatalf("%d approval requests in all, want 1", total)
	}
}

func TestAdmitPassesOutsideTheRules(t *testing.T) {
	rules := []approval.Rule{{Authorizer: "approvers", Permission: approval.PermAuthorize, SubjectGroup: "contractors"},
		{Authorizer: "auditors", Permission: approval.PermAudit}}
	s := newService(t, rules, map[string][]string{"id-dave": {"contractors"}})
	ctx := context.WithValue(context.Background(), sidKey{}, "s1")
	if err := s.Admit(ctx, grant("alice"), client, "GET https://orders.test/a"); err != nil {
		t.Fatalf("a user outside the subject group was held: %v", err)
	}
	if _, total, _ := s.Store.ListApprovals(context.Background(), "", 0, 0); total != 0 {
		t.Fatalf("an exempt session made %d approval requests", total)
	}
	s.Wait = time.Millisecond
	var ae *proxy.ApprovalError
	if err := s.Admit(context.WithValue(context.Background(), sidKey{}, "s2"), grant("dave"), client, "GET https://orders.test/a"); !errors.As(err, &ae) || ae.State != "pending" {
		t.Fatalf("a contractor's session: %v, want pending", err)
	}
	var denied *proxy.DeniedError
	if err := s.Admit(context.Background(), grant("dave"), client, "GET /"); !errors.As(err, &denied) {
		t.Fatalf("a request without a session: %v, want a denial", err)
	}
	s.Rules = func(string) []approval.Rule { return rules[1:] } // audit only: nothing waits
	if err := s.Admit(context.WithValue(context.Background(), sidKey{}, "s3"), grant("dave"), client, "GET /"); err != nil {
		t.Fatalf("an audit-only policy held a session: %v", err)
	}
}

func TestSweepExpires(t *testing.T) {
	s := newService(t, []approval.Rule{{Authorizer: "approvers", Permission: approval.PermAuthorize}}, nil)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	s.Wait, s.Timeout = time.Millisecond, time.Hour
	ctx := context.WithValue(context.Background(), sidKey{}, "s1")
	var ae *proxy.ApprovalError
	if err := s.Admit(ctx, grant("alice"), client, "GET /"); !errors.As(err, &ae) || ae.State != "pending" {
		t.Fatalf("first request: %v", err)
	}
	if err := s.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Store.Approval(context.Background(), ae.RequestID); r.State != approval.StatePending {
		t.Fatalf("swept before its time: %s", r.State)
	}
	now = now.Add(time.Hour)
	if err := s.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Store.Approval(context.Background(), ae.RequestID); r.State != approval.StateExpired {
		t.Fatalf("after its time: %s", r.State)
	}
	if err := s.Admit(ctx, grant("alice"), client, "GET /"); !errors.As(err, &ae) || ae.State != "expired" {
		t.Fatalf("a request of the expired session: %v", err)
	}
	bob := approval.Decider{ID: "id-bob", Name: "bob", Roles: []string{"approvers"}, Address: netip.MustParseAddr("127.0.0.3")}
	if _, err := s.Decide(context.Background(), ae.RequestID, bob, approval.DecisionInput{Approve: true}); !errors.Is(err, approval.ErrDecided) {
		t.Fatalf("approving an expired request: %v", err)
	}
}

// TestAuditedPolicies: only policies with an audit rule naming one of the roles are listed, sorted; without
// PolicyKeys none are.
func TestAuditedPolicies(t *testing.T) {
	rules := map[string][]approval.Rule{
		"3": {{Authorizer: "auditors", Permission: approval.PermAudit, SubjectGroup: "contractors"}},
		"1": {{Authorizer: "auditors", Permission: approval.PermAuditAndAuthorize}},
		"2": {{Authorizer: "auditors", Permission: approval.PermAuthorize}, {Authorizer: "leads", Permission: approval.PermAudit}},
	}
	s := &Service{Rules: func(k string) []approval.Rule { return rules[k] }}
	if got := s.AuditedPolicies([]string{"auditors"}); got != nil {
		t.Fatalf("without PolicyKeys: %v", got)
	}
	s.PolicyKeys = func() []string { return []string{"3", "2", "1"} }
	for _, c := range []struct {
		roles []string
		want  string
	}{{[]string{"auditors"}, "1,3"}, {[]string{"leads"}, "2"}, {[]string{"staff"}, ""}, {nil, ""}} {
		if got := strings.Join(s.AuditedPolicies(c.roles), ","); got != c.want {
			t.Errorf("AuditedPolicies(%v) = %q, want %q", c.roles, got, c.want)
		}
	}
}
