// Package hold puts four-eyes approval into the request path: the first request of a new API session that a
// connection policy's access_control makes wait is held until an authorizer decides (or a wait runs out), and
// decisions made through either API, on any node, release it. Decisions go to the audit log, the session's trail
// and the notifier.
package hold

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/notify"
	"github.com/gatehouse-dev/gatehouse/internal/proxy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Defaults of the Service's durations.
const (
	DefaultWait    = 30 * time.Second
	DefaultTimeout = 15 * time.Minute
	DefaultPoll    = 250 * time.Millisecond
)

// Service holds sessions awaiting approval and decides on them. Store, Rules, Roles and SessionID are required;
// the rest may be left zero.
type Service struct {
	Store *store.Store
	// Rules returns the access_control rules of the connection policy with key; none means no approval.
	Rules func(policyKey string) []approval.Rule
	// PolicyKeys, if set, lists the keys of the connection policies that have access_control rules; without it
	// nobody audits whole lists of sessions (AuditedPolicies is empty).
	PolicyKeys func() []string
	// Roles returns the names of the roles a user holds now.
	Roles func(ctx context.Context, userID string) ([]string, error)
	// SessionID names the API session of a request context (sessions.SessionID).
	SessionID func(ctx context.Context) string
	// Trail, if set, writes a note into the session's trail (sessions.Manager.Record); it writes nothing for
	// unaudited targets.
	Trail func(ctx context.Context, g *proxy.Grant, ex *proxy.Exchange) error
	// Notifier, if set, is told of every request and decision.
	Notifier *notify.Notifier
	// Wait is how long the first request is held for a decision before it is refused as pending (DefaultWait).
	Wait time.Duration
	// Timeout is how long a request stays pending before it expires (DefaultTimeout).
	Timeout time.Duration
	// Poll is how often a held request looks in the store for a decision made on another node (DefaultPoll).
	Poll time.Duration
	// Node names this node; a request remembers the node holding its session.
	Node string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Log receives failures; nil discards.
	Log *slog.Logger

	mu sync.Mutex
	// settled caches, per session id, the final request this node has seen and noted in the trail.
	settled map[string]approval.Request
	// exempt lists the sessions whose user no rule covers.
	exempt map[string]bool
	// wake has a channel per approval request with held requests on this node, closed by a local decision.
	wake map[string]chan struct{}
}

var _ proxy.Approvals = (*Service)(nil)

// maxCache bounds the per-session caches; past it they start over (the store remains the truth).
const maxCache = 100_000

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Admit implements proxy.Approvals.
func (s *Service) Admit(ctx context.Context, g *proxy.Grant, client netip.AddrPort, requestLine string) error {
	if g == nil || g.Target == nil || g.Policy == nil || s.Rules == nil {
		return nil
	}
	rules := s.Rules(g.Policy.Key)
	if !anyAuthorizes(rules) {
		return nil
	}
	sid := s.SessionID(ctx)
	if sid == "" {
		return &proxy.DeniedError{Reason: "the connection policy requires approval and the request has no API session", Grant: g}
	}
	s.mu.Lock()
	done, isDone := s.settled[sid]
	exempt := s.exempt[sid]
	s.mu.Unlock()
	if exempt {
		return nil
	}
	if isDone {
		return outcome(done)
	}
	var roles []string
	if g.Session.UserID != "" {
		var err error
		if roles, err = s.Roles(ctx, g.Session.UserID); err != nil {
			return fmt.Errorf("approval: roles of %s: %w", g.Session.UserName, err)
		}
	}
	required := approval.Required(rules, roles)
	if len(required) == 0 {
		s.remember(func() { s.exempt[sid] = true })
		return nil
	}
	req, err := s.requestFor(ctx, g, sid, client, requestLine, required)
	if err != nil {
		return err
	}
	return s.await(ctx, g, req)
}

func anyAuthorizes(rules []approval.Rule) bool {
	for _, r := range rules {
		if r.Authorizes() {
			return true
		}
	}
	return false
}

// requestFor finds the session's approval request or makes it.
func (s *Service) requestFor(ctx context.Context, g *proxy.Grant, sid string, client netip.AddrPort, line string, rules []approval.Rule) (approval.Request, error) {
	req, err := s.Store.ApprovalOfSession(ctx, sid)
	if err == nil || !errors.Is(err, store.ErrNotExist) {
		return req, err
	}
	now := s.now()
	requester := g.Session.UserName
	if requester == "" {
		requester = "(unauthenticated)"
	}
	req = approval.Request{SessionID: sid, PolicyKey: g.Policy.Key, PolicyName: g.Policy.Name, RequesterID: g.Session.UserID,
		Requester: requester, ClientAddress: client.String(), TargetID: g.Target.ID, Target: g.Target.Name,
		RequestLine: line, Node: s.Node, State: approval.StatePending, Rules: rules, Created: now,
		Expires: now.Add(orDefault(s.Timeout, DefaultTimeout))}
	if err := s.Store.CreateApproval(ctx, &req); err != nil {
		if errors.Is(err, store.ErrConflict) { // a concurrent first request of the same session made it
			return s.Store.ApprovalOfSession(ctx, sid)
		}
		return req, err
	}
	authorizers := make([]string, 0, len(rules))
	for _, r := range rules {
		authorizers = append(authorizers, r.Authorizer)
	}
	s.audit(ctx, &model.AuditEvent{Time: now, Actor: requester, ActorID: req.RequesterID, Action: "approval-request",
		ObjectType: "approval-request", ObjectID: req.ID, SourceAddress: client.Addr().String(), Outcome: "success",
		Diff: map[string]any{"session": sid, "target": req.Target, "policy": req.PolicyName, "request_line": line, "authorizers": authorizers}})
	s.note(ctx, g, req, "approval: requested (approval request "+req.ID+"), waiting for role "+strings.Join(authorizers, " or "))
	s.send(ctx, notify.KindRequested, req)
	s.log().Info("api session waits for approval", "approval_request", req.ID, "session", sid, "user", requester, "target", req.Target)
	return req, nil
}

// await holds the request until the approval request is decided, expires, or the wait runs out.
func (s *Service) await(ctx context.Context, g *proxy.Grant, req approval.Request) error {
	// Waiters share the channel until a decision closes and drops it; one left behind by a client that went away
	// is dropped with the decision or the expiry.
	wake := s.waker(req.ID)
	wait := orDefault(s.Wait, DefaultWait)
	if left := req.Expires.Sub(s.now()); left < wait {
		wait = max(left, 0)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	tick := time.NewTicker(orDefault(s.Poll, DefaultPoll))
	defer tick.Stop()
	timedOut := false
	for {
		if req.State == approval.StatePending {
			if next, ok := approval.Expire(req, s.now()); ok {
				req = s.expire(ctx, next)
			}
		}
		if req.State.Final() {
			return s.settle(ctx, g, req)
		}
		if timedOut {
			return &proxy.ApprovalError{RequestID: req.ID, State: string(approval.StatePending), RetryAfter: 5 * time.Second}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
			wake = nil // closed: from here the ticker looks
		case <-tick.C:
		case <-timer.C:
			timedOut = true
		}
		cur, err := s.Store.Approval(ctx, req.ID)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("approval: %w", err)
		}
		req = cur
	}
}

// settle notes a final request in the session's trail once, remembers it, and answers the held request.
func (s *Service) settle(ctx context.Context, g *proxy.Grant, req approval.Request) error {
	first := false
	s.remember(func() {
		if _, ok := s.settled[req.SessionID]; !ok {
			s.settled[req.SessionID], first = req, true
		}
	})
	if first {
		switch req.State {
		case approval.StateApproved:
			s.note(ctx, g, req, fmt.Sprintf("approval: approved by %s from %s (approval request %s): %s", req.Decider, req.DeciderAddress, req.ID, req.Comment))
		case approval.StateRejected:
			s.note(ctx, g, req, fmt.Sprintf("denied: approval rejected by %s from %s (approval request %s): %s", req.Decider, req.DeciderAddress, req.ID, req.Comment))
		default:
			s.note(ctx, g, req, "denied: approval expired (approval request "+req.ID+")")
		}
	}
	return outcome(req)
}

func outcome(req approval.Request) error {
	if req.State == approval.StateApproved {
		return nil
	}
	return &proxy.ApprovalError{RequestID: req.ID, State: string(req.State)}
}

// remember runs fn on the caches under the lock, starting them over when they grew past maxCache.
func (s *Service) remember(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.settled == nil || len(s.settled)+len(s.exempt) > maxCache {
		s.settled, s.exempt = map[string]approval.Request{}, map[string]bool{}
	}
	fn()
}

func (s *Service) waker(id string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wake == nil {
		s.wake = map[string]chan struct{}{}
	}
	ch := s.wake[id]
	if ch == nil {
		ch = make(chan struct{})
		s.wake[id] = ch
	}
	return ch
}

// release wakes the requests held on this node for id.
func (s *Service) release(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.wake[id]; ch != nil {
		close(ch)
		delete(s.wake, id)
	}
}

// note writes a line into the session's trail (only audited targets have one).
func (s *Service) note(ctx context.Context, g *proxy.Grant, req approval.Request, decision string) {
	if s.Trail == nil || g == nil {
		return
	}
	method, url, _ := strings.Cut(req.RequestLine, " ")
	client, _ := netip.ParseAddrPort(req.ClientAddress)
	ex := &proxy.Exchange{ID: "approval-" + req.ID, Decision: decision, Start: s.now(), Client: client, Method: method, URL: url}
	if err := s.Trail(context.WithoutCancel(ctx), g, ex); err != nil {
		s.log().Error("writing an approval into the session's trail failed", "approval_request", req.ID, "err", err)
	}
}

func (s *Service) send(ctx context.Context, kind string, req approval.Request) {
	if s.Notifier == nil {
		return
	}
	ev := notify.Event{Kind: kind, Source: "session", RequestID: req.ID, Requester: req.Requester, ClientAddress: req.ClientAddress,
		Target: req.Target, RequestLine: req.RequestLine, Decider: req.Decider, Comment: req.Comment, Time: s.now()}
	_ = s.Notifier.Send(ctx, ev) // a full queue is logged by the notifier
}

func (s *Service) audit(ctx context.Context, e *model.AuditEvent) {
	if err := s.Store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		s.log().Error("writing an approval audit event failed", "action", e.Action, "object", e.ObjectID, "err", err)
	}
}
