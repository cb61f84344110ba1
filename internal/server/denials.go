package server

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/proxy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// denialAuditor turns the proxy's policy denials into audit events off the request path: a bounded queue that a
// single writer drains, and when the database cannot keep up the excess is dropped and counted in the log, so a
// flood of refused requests never stalls the proxy or grows memory. The access log has every denial regardless.
type denialAuditor struct {
	store   *store.Store
	log     *slog.Logger
	ch      chan proxy.DeniedRequest
	dropped atomic.Int64
}

func newDenialAuditor(st *store.Store, log *slog.Logger) *denialAuditor {
	return &denialAuditor{store: st, log: log, ch: make(chan proxy.DeniedRequest, 1024)}
}

// enqueue is proxy.Server.Denied.
func (a *denialAuditor) enqueue(d proxy.DeniedRequest) {
	select {
	case a.ch <- d:
	default:
		a.dropped.Add(1)
	}
}

func (a *denialAuditor) run(ctx context.Context) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if n := a.dropped.Swap(0); n > 0 {
				a.log.Warn("proxy denials not audited: the audit writer fell behind (each is in the access log)", "dropped", n)
			}
		case d := <-a.ch:
			actor := d.Session.UserName
			if actor == "" {
				actor = "anonymous"
			}
			e := &model.AuditEvent{Time: d.Time, Actor: actor, ActorID: d.Session.UserID, Action: "proxy-request-denied",
				ObjectType: "api-target", ObjectID: d.TargetID, SourceAddress: d.Client.Addr().String(), Outcome: "failure",
				Diff: map[string]any{"request_id": d.RequestID, "method": d.Method, "host": d.Host, "path": d.Path,
					"reason": d.Reason, "credential": d.Session.CredentialName, "credential_id": d.Session.CredentialID,
					"target": d.Session.TargetName}}
			if err := a.store.AppendAudit(ctx, e); err != nil && ctx.Err() == nil {
				a.log.Error("auditing a proxy denial failed", "request_id", d.RequestID, "err", err)
			}
		}
	}
}
