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

// denialAuditor turns the proxy's policy denials of a known credential into audit events, off the request path: a
// bounded queue that a single writer drains at most auditRate events a second; what does not fit is dropped and
// counted in the log, so a flood of refused requests never stalls the proxy, grows memory or fills the database.
// Denials that name no credential (a connection policy refusing an address, say) are left to the access log, which
// has every denial regardless: an anonymous peer must not be able to write the audit table.
//
// Sessions opening and closing go through the same queue (enqueueEvent): each needs a credential, so they are
// bounded by what authenticated users do.
type denialAuditor struct {
	store   *store.Store
	log     *slog.Logger
	ch      chan *model.AuditEvent
	dropped atomic.Int64
}

// auditRate bounds the denial events written per second.
const auditRate = 100

func newDenialAuditor(st *store.Store, log *slog.Logger) *denialAuditor {
	return &denialAuditor{store: st, log: log, ch: make(chan *model.AuditEvent, 1024)}
}

// enqueue is proxy.Server.Denied.
func (a *denialAuditor) enqueue(d proxy.DeniedRequest) {
	if d.Session.CredentialID == "" {
		return
	}
	actor := d.Session.UserName
	if actor == "" {
		actor = "anonymous"
	}
	a.enqueueEvent(&model.AuditEvent{Time: d.Time, Actor: actor, ActorID: d.Session.UserID, Action: "proxy-request-denied",
		ObjectType: "api-target", ObjectID: d.TargetID, SourceAddress: d.Client.Addr().String(), Outcome: "failure",
		Diff: map[string]any{"request_id": d.RequestID, "method": d.Method, "host": d.Host, "path": d.Path,
			"reason": d.Reason, "credential": d.Session.CredentialName, "credential_id": d.Session.CredentialID,
			"target": d.Session.TargetName}})
}

// enqueueEvent queues e for the writer, or drops and counts it when the queue is full; it never blocks.
func (a *denialAuditor) enqueueEvent(e *model.AuditEvent) {
	select {
	case a.ch <- e:
	default:
		a.dropped.Add(1)
	}
}

func (a *denialAuditor) run(ctx context.Context) {
	pace := &window{limit: auditRate}
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if n := a.dropped.Swap(0); n > 0 {
				a.log.Warn("proxy audit events dropped: the audit writer fell behind (each is in the access log)", "dropped", n)
			}
		case e := <-a.ch:
			if !pace.allow(time.Now()) {
				a.dropped.Add(1)
				continue
			}
			if err := a.store.AppendAudit(ctx, e); err != nil && ctx.Err() == nil {
				a.log.Error("writing a proxy audit event failed", "action", e.Action, "err", err)
			}
		}
	}
}

// window admits at most limit events per one-second window.
type window struct {
	limit int
	start time.Time
	n     int
}

func (w *window) allow(now time.Time) bool {
	if now.Sub(w.start) >= time.Second {
		w.start, w.n = now, 0
	}
	w.n++
	return w.n <= w.limit
}
