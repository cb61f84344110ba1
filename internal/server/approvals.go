package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/gatehouse-dev/gatehouse/internal/approval/hold"
	"github.com/gatehouse-dev/gatehouse/internal/jit"
	"github.com/gatehouse-dev/gatehouse/internal/notify"
	"github.com/gatehouse-dev/gatehouse/internal/sessions"
)

// newApprovals wires four-eyes session approval: the proxy holds sessions that access_control makes wait, both
// APIs decide, the notifier tells people. It needs the data plane and the configuration API.
func (s *Server) newApprovals(log *slog.Logger) {
	s.notifier = notify.New(notify.Stored(s.store), log.With("component", "notify"))
	s.approvals = &hold.Service{
		Store: s.store,
		Rules: func(key string) []approval.Rule {
			ac := s.cfgapi.Policies().AccessControl(key)
			if len(ac) == 0 {
				return nil
			}
			out := make([]approval.Rule, len(ac))
			for i, r := range ac {
				out[i] = approval.Rule(r)
			}
			return out
		},
		PolicyKeys: func() []string { return s.cfgapi.Policies().AccessControlKeys() },
		Roles: func(ctx context.Context, userID string) ([]string, error) {
			roles, err := s.store.UserRoles(ctx, userID)
			names := make([]string, 0, len(roles))
			for _, r := range roles {
				names = append(names, r.Name)
			}
			return names, err
		},
		SessionID: sessions.SessionID,
		Trail:     s.dp.sessions.Record,
		Notifier:  s.notifier,
		Wait:      s.cfg.ApprovalWait,
		Timeout:   s.cfg.ApprovalTimeout,
		Node:      s.node.ID,
		Log:       log.With("component", "approval"),
	}
	s.dp.proxy.Approvals = s.approvals
	s.api.Approvals = s.approvals
	s.cfgapi.Approvals = s.approvals
}

// Notifier is the server's notifier, for other features (role requests) that announce events.
func (s *Server) Notifier() *notify.Notifier { return s.notifier }

// workflowEvent is the notification of a just-in-time role request's event (jit.Engine.OnEvent).
func workflowEvent(e jit.Event) notify.Event {
	r := e.Request
	ev := notify.Event{Kind: e.Kind, Source: "workflow", RequestID: r.ID, Comment: r.Comment, Time: e.Time,
		Decider: e.Actor.DisplayName}
	if r.Requester != nil {
		ev.Requester = r.Requester.DisplayName
	}
	if r.RequestedRole != nil {
		ev.Role = r.RequestedRole.Name
	}
	if r.GrantEnd != nil {
		ev.Until = *r.GrantEnd
	}
	return ev
}

// runApprovals delivers notifications and expires approval requests that nobody waits for any more.
func (s *Server) runApprovals(ctx context.Context) {
	s.notifier.Start(ctx)
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.approvals.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("expiring approval requests failed", "err", err)
			}
		}
	}
}
