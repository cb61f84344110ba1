package sessions

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/proxy"
	"github.com/gatehouse-dev/gatehouse/internal/recording"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/trailindex"
)

// Terminate ends an open session with TERMINATED, aborts its in-flight requests and refuses its credential, from
// every client address and on every node, for the cool-down period. A session served by another node is terminated
// by that node: the request is stored and announced, and Terminate returns once it is stored.
func (m *Manager) Terminate(ctx context.Context, id, reason string) error {
	m.mu.Lock()
	s := m.byID[id]
	if s == nil {
		m.mu.Unlock()
		return m.terminateRemote(ctx, id, reason)
	}
	until, subs := m.endWithCooldown(s, store.SessionTerminated, reason, false)
	m.mu.Unlock()
	m.storeCooldown(ctx, until, subs)
	return nil
}

// terminateRemote asks the node serving session id to terminate it, and cools its credential down from here at
// once, so that the cool-down holds on every node even before the owner acts.
func (m *Manager) terminateRemote(ctx context.Context, id, reason string) error {
	row, err := m.store.Session(ctx, id)
	if errors.Is(err, store.ErrNotExist) || (err == nil && (row.Status != store.SessionConnected || row.NodeID == m.NodeID)) {
		return ErrNotActive
	} else if err != nil {
		return err
	}
	if _, err := m.store.RequestTermination(ctx, id, reason); errors.Is(err, store.ErrNotExist) {
		return ErrNotActive
	} else if err != nil {
		return err
	}
	if cd := m.Settings().SessionCooldown; cd > 0 && row.CredentialID != "" {
		m.storeCooldown(ctx, m.now().Add(time.Duration(cd)*time.Second), []string{store.CooldownCredential(row.CredentialID)})
	}
	m.notify(ctx, "terminate")
	return nil
}

// TerminateUser terminates every open session of a user, on this node and (through the database and the change
// feed) on every other, and cools the user down everywhere. It returns how many sessions there were.
func (m *Manager) TerminateUser(ctx context.Context, userID, reason string) int {
	m.mu.Lock()
	n := 0
	var until time.Time
	var subs []string
	for _, s := range m.byID {
		if s.row.UserID == userID {
			u, sub := m.endWithCooldown(s, store.SessionTerminated, reason, true)
			until, subs = u, append(subs, sub...)
			n++
		}
	}
	m.mu.Unlock()
	remote, err := m.store.RequestUserTermination(ctx, userID, reason, m.NodeID)
	if err != nil {
		m.log.Error("asking other nodes to terminate a user's sessions failed", "user", userID, "err", err)
	}
	if cd := m.Settings().SessionCooldown; cd > 0 {
		until = m.now().Add(time.Duration(cd) * time.Second)
		subs = append(subs, store.CooldownUser(userID))
		m.mu.Lock()
		m.cooldown[store.CooldownUser(userID)] = until
		m.mu.Unlock()
	}
	m.storeCooldown(ctx, until, subs)
	if remote > 0 {
		m.notify(ctx, "terminate")
	}
	return n + remote
}

// endWithCooldown closes s and cools its credential (and, for a terminate/user, its user) down here; the caller
// stores the returned cool-down once m.mu is released. Called with m.mu held.
func (m *Manager) endWithCooldown(s *Session, status, reason string, user bool) (time.Time, []string) {
	now := m.now()
	var until time.Time
	var subs []string
	if cd := m.Settings().SessionCooldown; cd > 0 {
		until = now.Add(time.Duration(cd) * time.Second)
		if s.row.CredentialID != "" {
			subs = append(subs, store.CooldownCredential(s.row.CredentialID))
		} else {
			subs = append(subs, "session:"+s.row.Key)
		}
		if user && s.row.UserID != "" {
			subs = append(subs, store.CooldownUser(s.row.UserID))
		}
		for _, sub := range subs {
			m.cooldown[sub] = until
		}
	}
	m.closeLocked(s, status, reason, now)
	return until, subs
}

// storeCooldown writes a cool-down to the database and announces it, so that it holds on every node and across
// restarts. A failure is logged: the cool-down still holds on this node.
func (m *Manager) storeCooldown(ctx context.Context, until time.Time, subs []string) {
	if len(subs) == 0 {
		return
	}
	if err := m.store.SetCooldown(context.WithoutCancel(ctx), until, subs...); err != nil {
		m.log.Error("storing a cool-down failed; it holds on this node only", "subjects", subs, "err", err)
		return
	}
	m.notify(ctx, "cooldown")
}

func (m *Manager) notify(ctx context.Context, topic string) {
	if m.Notify != nil {
		m.Notify(context.WithoutCancel(ctx), topic)
	}
}

// ReloadCooldowns takes the running cool-downs from the database (set through any node) and closes this node's
// sessions whose credential or user is cooling down.
func (m *Manager) ReloadCooldowns(ctx context.Context) error {
	now := m.now()
	cds, err := m.store.Cooldowns(ctx, now)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for sub, until := range cds {
		if until.After(m.cooldown[sub]) {
			m.cooldown[sub] = until
		}
	}
	for _, s := range m.byID {
		subs := []string{"session:" + s.row.Key}
		if s.row.CredentialID != "" {
			subs = []string{store.CooldownCredential(s.row.CredentialID), store.CooldownUser(s.row.UserID)}
		}
		if m.coolingLocked(subs, now) {
			m.closeLocked(s, store.SessionTerminated, "cool-down of its credential or user", now)
		}
	}
	return nil
}

// ApplyTerminationRequests terminates the sessions of this node that another node was asked to terminate.
func (m *Manager) ApplyTerminationRequests(ctx context.Context) error {
	reqs, err := m.store.TerminationRequests(ctx, m.NodeID)
	if err != nil || len(reqs) == 0 {
		return err
	}
	var all []string
	var until time.Time
	m.mu.Lock()
	for _, r := range reqs {
		if s := m.byID[r.SessionID]; s != nil {
			u, subs := m.endWithCooldown(s, store.SessionTerminated, r.Reason, false)
			until, all = u, append(all, subs...)
		}
	}
	m.mu.Unlock()
	if len(all) > 0 {
		m.log.Info("terminated sessions as asked through another node", "sessions", len(reqs))
	}
	m.storeCooldown(ctx, until, all)
	return nil
}

// Recheck re-evaluates every open session's credential, from the session's client address, after a policy change;
// one that is no longer authorized becomes UNAUTHORIZED and enters the cool-down, as when an admin terminates it.
func (m *Manager) Recheck(check func(credentialID string, client netip.Addr) (reason string, ok bool)) {
	var all []string
	var until time.Time
	m.mu.Lock()
	for _, s := range m.byID {
		if s.row.CredentialID == "" {
			continue
		}
		addr, _ := netip.ParseAddr(s.row.ClientAddress)
		if reason, ok := check(s.row.CredentialID, addr); !ok {
			u, subs := m.endWithCooldown(s, store.SessionUnauthorized, reason, false)
			until, all = u, append(all, subs...)
		}
	}
	m.mu.Unlock()
	if len(all) > 0 {
		// Recheck runs on the reload path; the store write must not hold it up.
		go m.storeCooldown(context.Background(), until, all)
	}
}

// Active returns the ids of the open sessions.
func (m *Manager) Active() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.byID))
	for id := range m.byID {
		ids = append(ids, id)
	}
	return ids
}

// Live returns the current counters of an open session, which may be ahead of the store's.
func (m *Manager) Live(id string) (store.APISession, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.byID[id]
	if s == nil {
		return store.APISession{}, false
	}
	return s.snapshotRow(), true
}

// OpenByTarget counts the open sessions of each target, by target name, for metrics.
func (m *Manager) OpenByTarget() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int)
	for _, s := range m.byID {
		out[s.row.TargetName]++
	}
	return out
}

// Run closes idle and over-age sessions, flushes counters in one batch and forgets finished cool-downs, every
// interval until ctx is done; then it closes every open session.
func (m *Manager) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			m.CloseAll(cctx, "gatehouse shut down")
			cancel()
			return
		case <-t.C:
			m.Tick(ctx)
		}
	}
}

// Tick runs one round of Run's housekeeping; tests call it with a fake clock.
func (m *Manager) Tick(ctx context.Context) {
	now := m.now()
	var batch []store.SessionActivity
	m.mu.Lock()
	for _, s := range m.byID {
		if reason := expiry(s, now); reason != "" {
			m.closeLocked(s, store.SessionDisconnected, reason, now)
			continue
		}
		s.mu.Lock()
		dirty := s.dirty
		s.dirty = false
		s.mu.Unlock()
		if dirty {
			row := s.snapshotRow()
			batch = append(batch, store.SessionActivity{ID: row.ID, LastActivity: row.LastActivity, Requests: row.Requests, BytesIn: row.BytesIn, BytesOut: row.BytesOut})
		}
	}
	for k, until := range m.cooldown {
		if !now.Before(until) {
			delete(m.cooldown, k)
		}
	}
	m.ticks++
	resync := m.ticks%5 == 0
	m.mu.Unlock()
	// The safety net under the change feed: termination requests every round, cool-downs every fifth.
	if err := m.ApplyTerminationRequests(ctx); err != nil && ctx.Err() == nil {
		m.log.Error("reading termination requests failed", "err", err)
	}
	if resync {
		if err := m.ReloadCooldowns(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("reading cool-downs failed", "err", err)
		}
	}
	if err := m.store.UpdateSessionActivity(ctx, batch); err != nil && ctx.Err() == nil {
		m.log.Error("flushing session activity failed", "sessions", len(batch), "err", err)
	}
	m.probeRecording()
}

// CloseAll closes every open session and waits (bounded by ctx) until their outcomes are stored, for shutdown.
func (m *Manager) CloseAll(ctx context.Context, reason string) {
	m.mu.Lock()
	now := m.now()
	for _, s := range m.byID {
		m.closeLocked(s, store.SessionDisconnected, reason, now)
	}
	m.mu.Unlock()
	done := make(chan struct{})
	go func() { m.pending.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		m.log.Warn("shutdown: some closed sessions were not stored in time")
	}
}

// Record implements proxy.Recorder: it appends the exchange to the trail of the request's session.
func (m *Manager) Record(ctx context.Context, g *proxy.Grant, ex *proxy.Exchange) error {
	s, _ := ctx.Value(sessionCtxKey{}).(*Session)
	if s == nil || s.writer == nil {
		if g != nil && g.Target != nil && g.Target.AuditEnabled {
			// An audited exchange with nowhere to go must not pass silently.
			err := errors.New("record exchange: no open trail for this audited request")
			m.failRecording(err)
			return err
		}
		return nil
	}
	rec := &recording.Exchange{
		Started: ex.Start, DurationMS: float64(ex.Duration.Microseconds()) / 1000, WaitMS: float64(ex.Wait.Microseconds()) / 1000,
		Method: ex.Method, URL: ex.URL,
		Proto: ex.Proto, Status: ex.Status, RequestHeaders: ex.RequestHeader, ResponseHeaders: ex.ResponseHeader,
		RequestBody: ex.RequestBody, ResponseBody: ex.ResponseBody, RequestBodyTruncated: ex.RequestBodyTruncated,
		ResponseBodyTruncated: ex.ResponseBodyTruncated, RequestBytes: ex.RequestBytes, ResponseBytes: ex.ResponseBytes,
		Error: ex.Error, Decision: ex.Decision, ID: ex.ID, WebSocket: ex.WebSocket, WSBytesToTarget: ex.UpgradeBytesIn,
		WSBytesToClient: ex.UpgradeBytesOut, WSMessages: ex.WSMessages, WSMessagesDropped: ex.WSMessagesDropped,
	}
	if rec.Decision == "" {
		rec.Decision = "allowed"
	}
	written, err := s.writer.AppendRedacted(ctx, rec) // which no cancellation stops
	if err != nil {
		if errors.Is(err, recording.ErrClosed) {
			// The session was closed (terminated, say) while this request was in flight and its trail is already
			// sealed. That is not a broken recorder: failing here would close every audited target.
			m.log.Warn("exchange finished after its session's trail was sealed; not recorded", "session", s.row.ID,
				"method", ex.Method, "status", ex.Status)
			return nil
		}
		m.failRecording(err)
		return fmt.Errorf("record exchange: %w", err)
	}
	if s.index && m.Index != nil {
		r := &s.row
		m.Index.EnqueueExchange(trailindex.Session{ID: r.ID, UserID: r.UserID, UserName: r.UserName, TargetID: r.TargetID,
			TargetName: r.TargetName, ClientAddress: r.ClientAddress}, &written)
	}
	return nil
}

// Healthy implements proxy.Recorder: an error from the last write or probe keeps audited targets closed until a
// probe write succeeds again.
func (m *Manager) Healthy() error {
	if p := m.recErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (m *Manager) failRecording(err error) {
	if m.OnRecordingFailure != nil {
		m.OnRecordingFailure()
	}
	if m.recErr.Load() == nil {
		m.log.Error("recording failed; audited targets are closed until it recovers", "err", err)
	}
	m.recErr.Store(&err)
}

// probeRecording checks whether the trail directory takes writes again after a failure.
func (m *Manager) probeRecording() {
	if m.recErr.Load() == nil || m.rec == nil {
		return
	}
	path := filepath.Join(m.rec.Dir(), ".probe")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err == nil {
		_, err = f.Write([]byte("probe"))
		err = errors.Join(err, f.Sync(), f.Close())
		os.Remove(path)
	}
	if err == nil {
		m.recErr.Store(nil)
		m.log.Info("recording recovered; audited targets are open again")
	}
}

// archive copies a sealed trail into the cluster's database, so that every node can read it and it outlives this
// node's disk. On SQLite, whose database shares the disk with the trails, there is nothing to gain. A failure is
// logged: the trail stays readable on this node.
func (m *Manager) archive(ctx context.Context, id string) {
	if m.rec == nil || !m.store.Clustered() {
		return
	}
	f, err := m.rec.OpenLocal(id)
	if err == nil {
		err = m.store.PutTrail(ctx, id, f)
		f.Close()
	}
	if err != nil {
		m.log.Error("copying a sealed trail to the database failed; only this node can read it", "session", id, "err", err)
	}
}
