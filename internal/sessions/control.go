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
)

// Terminate ends an open session with TERMINATED, aborts its in-flight requests and refuses its credential from
// that client address for the cool-down period.
func (m *Manager) Terminate(ctx context.Context, id, reason string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.byID[id]
	if s == nil {
		return ErrNotActive
	}
	m.endWithCooldown(s, store.SessionTerminated, reason)
	return nil
}

// TerminateUser terminates every open session of a user and returns how many there were.
func (m *Manager) TerminateUser(ctx context.Context, userID, reason string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, s := range m.byID {
		if s.row.UserID == userID {
			m.endWithCooldown(s, store.SessionTerminated, reason)
			n++
		}
	}
	return n
}

func (m *Manager) endWithCooldown(s *Session, status, reason string) {
	now := m.now()
	if cd := m.Settings().SessionCooldown; cd > 0 {
		m.cooldown[s.row.Key] = now.Add(time.Duration(cd) * time.Second)
	}
	m.closeLocked(s, status, reason, now)
}

// Recheck re-evaluates every open session's credential, from the session's client address, after a policy change;
// one that is no longer authorized becomes UNAUTHORIZED and enters the cool-down, as when an admin terminates it.
func (m *Manager) Recheck(check func(credentialID string, client netip.Addr) (reason string, ok bool)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.byID {
		if s.row.CredentialID == "" {
			continue
		}
		addr, _ := netip.ParseAddr(s.row.ClientAddress)
		if reason, ok := check(s.row.CredentialID, addr); !ok {
			m.endWithCooldown(s, store.SessionUnauthorized, reason)
		}
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
	m.mu.Unlock()
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
		Started: ex.Start, DurationMS: float64(ex.Duration.Microseconds()) / 1000, Method: ex.Method, URL: ex.URL,
		Proto: ex.Proto, Status: ex.Status, RequestHeaders: ex.RequestHeader, ResponseHeaders: ex.ResponseHeader,
		RequestBody: ex.RequestBody, ResponseBody: ex.ResponseBody, RequestBodyTruncated: ex.RequestBodyTruncated,
		ResponseBodyTruncated: ex.ResponseBodyTruncated, RequestBytes: ex.RequestBytes, ResponseBytes: ex.ResponseBytes,
		Error: ex.Error, Decision: ex.Decision, ID: ex.ID,
	}
	if rec.Decision == "" {
		rec.Decision = "allowed"
	}
	if err := s.writer.Append(context.WithoutCancel(ctx), rec); err != nil {
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
