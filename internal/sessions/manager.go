// Package sessions groups the proxy's authorized requests into API sessions (one per credential and client
// address), enforces idle timeout, maximum lifetime and the cool-down after termination, and owns each session's
// recording. It implements proxy.Sessions and proxy.Recorder.
package sessions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/proxy"
	"github.com/gatehouse-dev/gatehouse/internal/recording"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/trailindex"
	"github.com/google/uuid"
)

// ErrNotActive is returned when terminating a session that is not open.
var ErrNotActive = errors.New("session is not active")

// Manager is the registry of open API sessions.
type Manager struct {
	store *store.Store
	rec   *recording.Store
	log   *slog.Logger
	// Settings returns the current proxy settings (timeouts, cool-down, recording); it is called often and must be
	// cheap.
	Settings func() model.Settings
	// Now returns the current time; nil means time.Now. Tests use a fake clock.
	Now func() time.Time
	// NodeID names this node in a cluster: its sessions carry it, so that another node can ask for their
	// termination and a restart recovers only its own. Empty is a node of its own.
	NodeID string
	// Notify announces a change to the other nodes ("cooldown", "terminate"); nil announces nothing.
	Notify func(ctx context.Context, topic string)
	// Index, if set, receives every recorded exchange of sessions whose connection policy has indexing enabled,
	// redacted as in the trail. Enqueue must not block.
	Index interface {
		EnqueueExchange(trailindex.Session, *recording.Exchange) bool
	}
	// OnClose, if set, is called for every session that closes, with its target's name and final status
	// (DISCONNECTED, TERMINATED, UNAUTHORIZED); it runs under the manager's lock and must be quick (a counter).
	OnClose func(target, status string)
	// Audit, if set, receives an audit event for every session that opens or closes (for the audit log and its
	// export to a SIEM); it runs under the manager's lock and must not block (a bounded queue).
	Audit func(*model.AuditEvent)
	// OnRecordingFailure, if set, is called for every failed trail write or trail creation.
	OnRecordingFailure func()

	mu       sync.Mutex
	active   map[sessionKey]*Session
	byID     map[string]*Session
	opening  map[sessionKey]*openCall // sessions being opened
	cooldown map[string]time.Time     // cool-down subject (store.Cooldown*) -> its end
	ticks    int

	recErr atomic.Pointer[error]
	// pending counts closed sessions whose outcome is still being stored.
	pending sync.WaitGroup
}

var (
	_ proxy.Sessions = (*Manager)(nil)
	_ proxy.Recorder = (*Manager)(nil)
)

// Session is one open API session.
type Session struct {
	row    store.APISession
	key    sessionKey // row.Key is its String
	writer *recording.Writer
	index  bool // recorded exchanges go to the trail index

	mu       sync.Mutex
	inflight int
	reqs     map[*request]struct{} // the requests in flight, which a close cancels
	dirty    bool
	closing  *closeInfo // set once the session is closed; finish runs when inflight reaches 0

	// idle and lifetime are fixed when the session opens, from the settings and its connection policy.
	idle, lifetime time.Duration
	requests       atomic.Int64
	bytesIn        atomic.Int64
	bytesOut       atomic.Int64
	lastNano       atomic.Int64
}

// New returns a manager. Call Start before serving.
func New(st *store.Store, rec *recording.Store, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{store: st, rec: rec, log: log, Settings: model.DefaultSettings,
		active: map[sessionKey]*Session{}, byID: map[string]*Session{}, opening: map[sessionKey]*openCall{}, cooldown: map[string]time.Time{}}
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Start recovers from an unclean stop: trails without a close record are marked interrupted and sessions left
// CONNECTED in the store are closed as interrupted.
func (m *Manager) Start(ctx context.Context) error {
	if m.rec != nil {
		ids, err := m.rec.Recover(ctx)
		if err != nil {
			return fmt.Errorf("recover trails: %w", err)
		}
		if len(ids) > 0 {
			m.log.Warn("marked interrupted trails", "sessions", len(ids))
		}
		for _, id := range ids {
			m.archive(ctx, id)
		}
	}
	// Only this node's sessions: the others belong to nodes that are running. Sessions stored before nodes had
	// ids (node_id '') belong to no running node either.
	nodes := []string{m.NodeID}
	if m.NodeID != "" {
		nodes = append(nodes, "")
	}
	var ids []string
	for _, node := range nodes {
		got, err := m.store.MarkNodeInterrupted(ctx, node, m.now())
		if err != nil {
			return err
		}
		ids = append(ids, got...)
	}
	if len(ids) > 0 {
		m.log.Warn("closed sessions interrupted by the previous stop", "sessions", len(ids))
	}
	return m.ReloadCooldowns(ctx)
}

// sessionKey is what requests of one session share: the credential and the client address, or for an
// unauthenticated request the target and the client address. It is a map key of its own so that finding a request's
// session builds no string; String is the form stored with the session.
type sessionKey struct {
	anon   bool
	id     string // the credential, or for anon the target
	client netip.Addr
}

func keyOf(g *proxy.Grant, client netip.AddrPort) sessionKey {
	if g.Unauthenticated || g.Session.CredentialID == "" {
		return sessionKey{anon: true, id: g.Target.ID, client: client.Addr().Unmap()}
	}
	return sessionKey{id: g.Session.CredentialID, client: client.Addr().Unmap()}
}

func (k sessionKey) String() string {
	if k.anon {
		return "anon|" + k.id + "|" + k.client.String()
	}
	return k.id + "|" + k.client.String()
}

type sessionCtxKey struct{}

// SessionID returns the id of the API session whose request context Begin returned, "" for any other context.
func SessionID(ctx context.Context) string {
	if s, _ := ctx.Value(sessionCtxKey{}).(*Session); s != nil {
		return s.row.ID
	}
	return ""
}

// Begin implements proxy.Sessions. The manager's lock covers only map work: a session that must open asks the
// database for cool-downs, creates its trail and stores its row with the lock released (openOutsideLock), so that
// one slow open does not stall every other session's requests. Concurrent first requests of one key wait for the
// open in flight (m.opening) rather than opening a session each.
func (m *Manager) Begin(ctx context.Context, g *proxy.Grant, client netip.AddrPort) (context.Context, proxy.ActiveRequest, error) {
	if g == nil || g.Target == nil {
		return ctx, noopRequest{}, nil
	}
	now := m.now()
	set := m.Settings()
	key := keyOf(g, client)
	var subjects []string
	var s *Session
	for s == nil {
		m.mu.Lock()
		if len(m.cooldown) > 0 && subjects == nil {
			// Built only when some cool-down runs: a request to an open session with none costs no allocation here.
			subjects = cooldownSubjects(g, key)
		}
		if until, cooling := m.coolingUntilLocked(subjects, now); cooling {
			if s := m.active[key]; s != nil {
				m.closeLocked(s, store.SessionTerminated, "cool-down of its credential or user", now)
			}
			m.mu.Unlock()
			return nil, nil, cooldownError(until.Sub(now))
		}
		s = m.active[key]
		if s != nil {
			if reason := expiry(s, now); reason != "" {
				m.closeLocked(s, store.SessionDisconnected, reason, now)
				s = nil
			} else if s.writer != nil && s.writer.Err() != nil {
				m.closeLocked(s, store.SessionDisconnected, "recording failed", now)
				s = nil
			} else if s.row.AuditEnabled != g.Target.AuditEnabled {
				// Recording was switched on or off (the target's audit flag, or the audit policy of the connection
				// policy) since the session opened. A session's trail cannot start mid-way, and an unrecorded
				// session given audited requests would fail the recorder and close every audited target, so the
				// session ends here and the request opens one that follows the new decision.
				m.closeLocked(s, store.SessionDisconnected, "recording policy changed", now)
				s = nil
			}
		}
		if s != nil {
			break // with m.mu held
		}
		if call := m.opening[key]; call != nil {
			// Another request of this key is opening its session: use that one once it is open.
			m.mu.Unlock()
			select {
			case <-call.done:
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			if call.err != nil && !errors.Is(call.err, context.Canceled) && !errors.Is(call.err, context.DeadlineExceeded) {
				return nil, nil, call.err
			}
			continue // and find it in m.active, or open it if the opener's own context ended
		}
		if subjects == nil {
			subjects = cooldownSubjects(g, key)
		}
		var err error
		if s, err = m.openOutsideLock(ctx, key, g, client, now, set, subjects); err != nil {
			return nil, nil, err // m.mu released
		}
		// openOutsideLock returns the registered session with m.mu held again.
	}
	// The request's context carries its session (r.vctx, no allocation of its own) and is cancelled by End or by
	// the session's close, which cancels every request in s.reqs: registered here under m.mu, which closeLocked
	// holds, so that no request of a closing session escapes.
	r := &request{m: m, s: s}
	r.vctx = sessionCtx{Context: ctx, s: s}
	rctx, cancel := context.WithCancelCause(&r.vctx)
	r.cancel = cancel
	s.mu.Lock()
	s.inflight++
	s.reqs[r] = struct{}{}
	s.mu.Unlock()
	s.lastNano.Store(now.UnixNano())
	m.mu.Unlock()
	return rctx, r, nil
}

// sessionCtx is a request's context with its session as the value of sessionCtxKey.
type sessionCtx struct {
	context.Context
	s *Session
}

func (c *sessionCtx) Value(key any) any {
	if key == (sessionCtxKey{}) {
		return c.s
	}
	return c.Context.Value(key)
}

// openCall is a session open in flight, which other first requests of its key wait for.
type openCall struct {
	done chan struct{}
	err  error // set before done closes
}

// openOutsideLock opens the session of key. Called with m.mu held and no open of key in flight; it releases m.mu for
// the database and trail I/O, and returns the registered session with m.mu held again, or an error with it
// released.
func (m *Manager) openOutsideLock(ctx context.Context, key sessionKey, g *proxy.Grant, client netip.AddrPort, now time.Time, set model.Settings, subjects []string) (*Session, error) {
	call := &openCall{done: make(chan struct{})}
	m.opening[key] = call
	m.mu.Unlock()

	s, err := m.openIO(ctx, key, g, client, now, set, subjects)

	m.mu.Lock()
	delete(m.opening, key)
	call.err = err
	close(call.done)
	if err != nil {
		m.mu.Unlock()
		return nil, err
	}
	m.active[key] = s
	m.byID[s.row.ID] = s
	m.auditSession(&s.row, "api-session-open", now, map[string]any{"audit_enabled": s.row.AuditEnabled})
	// A termination of this credential or user while the session opened set a cool-down the session did not see:
	// it holds, and the new session ends as terminated (its row and trail are closed the usual way).
	if until, cooling := m.coolingUntilLocked(subjects, now); cooling {
		m.closeLocked(s, store.SessionTerminated, "cool-down of its credential or user", now)
		m.mu.Unlock()
		return nil, cooldownError(until.Sub(now))
	}
	return s, nil
}

// cooldownError refuses a request whose credential or user is in the cool-down after a termination, saying when
// it lifts (Retry-After).
func cooldownError(left time.Duration) error {
	return &proxy.DeniedError{Reason: "session in cool-down after termination; retry later", RetryAfter: left}
}

// cooldownSubjects is what a termination of this session cools down: its credential whatever the client address,
// and its user (a terminate/user); an unauthenticated session has neither, so its key stands in.
func cooldownSubjects(g *proxy.Grant, key sessionKey) []string {
	if g.Unauthenticated || g.Session.CredentialID == "" {
		return []string{"session:" + key.String()}
	}
	subs := []string{store.CooldownCredential(g.Session.CredentialID)}
	if g.Session.UserID != "" {
		subs = append(subs, store.CooldownUser(g.Session.UserID))
	}
	return subs
}

// coolingLocked says whether any subject is in a running cool-down, forgetting ended ones. Called with m.mu held.
func (m *Manager) coolingLocked(subjects []string, now time.Time) bool {
	_, cooling := m.coolingUntilLocked(subjects, now)
	return cooling
}

// coolingUntilLocked is coolingLocked that also says when the last running cool-down of the subjects ends.
func (m *Manager) coolingUntilLocked(subjects []string, now time.Time) (last time.Time, cooling bool) {
	for _, sub := range subjects {
		if until, ok := m.cooldown[sub]; ok {
			if now.Before(until) {
				cooling = true
				if until.After(last) {
					last = until
				}
				continue
			}
			delete(m.cooldown, sub)
		}
	}
	return last, cooling
}

// expiry says why an open session must close before serving another request, or "".
func expiry(s *Session, now time.Time) string {
	last := time.Unix(0, s.lastNano.Load())
	s.mu.Lock()
	busy := s.inflight > 0
	s.mu.Unlock()
	switch {
	case s.lifetime > 0 && now.Sub(s.row.Connected) >= s.lifetime:
		return "maximum session lifetime reached"
	case !busy && now.Sub(last) >= s.idle:
		return "idle timeout"
	}
	return ""
}

// limits combines the global settings with what the admitting connection policy says: the stricter wins, so
// neither dialect can loosen what the other set.
func limits(set model.Settings, p *proxy.SessionPolicy) (idle, lifetime time.Duration, bodyLimit int) {
	idle = time.Duration(set.IdleSessionTimeout) * time.Second
	lifetime = time.Duration(set.MaxSessionLifetime) * time.Second
	bodyLimit = set.RecordingBodyLimit
	if p != nil {
		if p.IdleTimeout > 0 && p.IdleTimeout < idle {
			idle = p.IdleTimeout
		}
		if p.MaxLifetime > 0 && (lifetime == 0 || p.MaxLifetime < lifetime) {
			lifetime = p.MaxLifetime
		}
		if p.BodyLimit < 0 {
			bodyLimit = 0
		} else if p.BodyLimit > 0 && p.BodyLimit < bodyLimit {
			bodyLimit = p.BodyLimit
		}
	}
	if bodyLimit == 0 {
		bodyLimit = -1 // recording's "no body"
	}
	return idle, lifetime, bodyLimit
}

// openIO does a session open's I/O, without m.mu: it asks the database for cool-downs of the subjects (one set
// through another node a moment ago holds before the change feed brings it here), then stores the session row and,
// for audited targets, creates the trail. The insert is the one synchronous write per session, not per request.
func (m *Manager) openIO(ctx context.Context, key sessionKey, g *proxy.Grant, client netip.AddrPort, now time.Time, set model.Settings, subjects []string) (*Session, error) {
	if cds, err := m.store.CooldownsOf(ctx, now, subjects...); err != nil {
		return nil, fmt.Errorf("open session: %w", err)
	} else if len(cds) > 0 {
		var last time.Time
		m.mu.Lock()
		for sub, until := range cds {
			m.cooldown[sub] = until
			if until.After(last) {
				last = until
			}
		}
		m.mu.Unlock()
		return nil, cooldownError(last.Sub(now))
	}
	row := store.APISession{
		ID: uuid.NewString(), Key: key.String(), UserID: g.Session.UserID, UserName: g.Session.UserName,
		TargetID: g.Target.ID, TargetName: g.Target.Name, CredentialID: g.Session.CredentialID,
		CredentialName: g.Session.CredentialName, ClientAddress: client.Addr().Unmap().String(),
		Status: store.SessionConnected, Connected: now, LastActivity: now, AuditEnabled: g.Target.AuditEnabled,
		NodeID: m.NodeID,
	}
	if g.Policy != nil {
		row.ConnectionPolicy = g.Policy.Key
	}
	s := &Session{row: row, key: key, index: g.Policy == nil || !g.Policy.NoIndex}
	var bodyLimit int
	s.idle, s.lifetime, bodyLimit = limits(set, g.Policy)
	if g.Target.AuditEnabled {
		if m.rec == nil {
			return nil, errRecordingUnavailable
		}
		w, err := m.rec.Create(ctx, recording.SessionMeta{SessionID: row.ID, User: row.UserName, Target: row.TargetName,
			Credential: row.CredentialName, ClientAddr: row.ClientAddress, Started: now, BodyLimit: bodyLimit}, redactor(g, set))
		if err != nil {
			m.failRecording(err)
			return nil, errRecordingUnavailable
		}
		s.writer = w
	}
	if err := m.store.InsertSession(ctx, &row); err != nil {
		if s.writer != nil {
			s.writer.Close("session could not be stored")
		}
		return nil, fmt.Errorf("open session: %w", err)
	}
	s.reqs = map[*request]struct{}{}
	m.log.Info("api session opened", "session", row.ID, "user", row.UserName, "target", row.TargetName,
		"credential", row.CredentialName, "client", row.ClientAddress, "audit", row.AuditEnabled)
	return s, nil
}

// auditSession hands Audit one session event: who (the session's user), what (the target), from where, and detail.
func (m *Manager) auditSession(row *store.APISession, action string, now time.Time, detail map[string]any) {
	if m.Audit == nil {
		return
	}
	detail["session"], detail["credential"], detail["credential_id"] = row.ID, row.CredentialName, row.CredentialID
	detail["target"], detail["node"] = row.TargetName, row.NodeID
	m.Audit(&model.AuditEvent{Time: now, Actor: row.UserName, ActorID: row.UserID, Action: action,
		ObjectType: "api-target", ObjectID: row.TargetID, SourceAddress: row.ClientAddress, Outcome: "success", Diff: detail})
}

// redactor lists everything secret about this session: the user's proxy secret and the target credential in
// each form it can appear in.
func redactor(g *proxy.Grant, set model.Settings) *recording.Redactor {
	r := &recording.Redactor{Headers: append(append([]string{}, recording.DefaultRedactedHeaders...), set.RecordingRedactHeaders...)}
	add := func(s string) {
		if len(s) >= 4 {
			r.Secrets = append(r.Secrets, []byte(s))
		}
	}
	add(g.Secret)
	c := g.Target.Credential
	add(c.Token)
	add(c.Password)
	add(c.HeaderValue)
	add(c.PrivateKeyPEM)
	if c.Type == proxy.CredentialBasicAuth {
		r.Secrets = append(r.Secrets, recording.BasicAuthForm(c.Username, c.Password))
	}
	if c.HeaderName != "" {
		r.Headers = append(r.Headers, c.HeaderName)
	}
	if g.Policy != nil {
		r.Headers = append(r.Headers, g.Policy.RedactHeaders...)
	}
	return r
}

// errRecordingUnavailable refuses an audited session that cannot get a trail: 503 like every request to an audited
// target while recording is down, not 403, which would read as a policy decision.
var errRecordingUnavailable = fmt.Errorf("%w: no trail could be opened, so this audited target is closed (fail closed)", proxy.ErrRecordingUnavailable)

// closeLocked ends a session: it leaves the registry at once and its in-flight requests are cancelled, but the
// trail is sealed and the outcome stored only when the last of them has finished, so that an exchange aborted by a
// termination is still recorded (it may have reached the target).
func (m *Manager) closeLocked(s *Session, status, reason string, now time.Time) {
	delete(m.active, s.key)
	delete(m.byID, s.row.ID)
	cause := fmt.Errorf("session %s: %s", status, reason)
	if m.OnClose != nil {
		m.OnClose(s.row.TargetName, status)
	}
	m.auditSession(&s.row, "api-session-close", now, map[string]any{"status": status, "reason": reason})
	// Counted here, under m.mu, rather than when finish runs: a request still in flight (a WebSocket, say) may
	// call finish after CloseAll started waiting, and a WaitGroup must not go up from zero during a Wait.
	m.pending.Add(1)
	s.mu.Lock()
	s.closing = &closeInfo{status: status, reason: reason, at: now}
	for r := range s.reqs {
		r.cancel(cause) // the request's own End removes it
	}
	idle := s.inflight == 0
	s.mu.Unlock()
	if idle {
		// Sealing syncs the trail to disk: do it off the manager's lock, which every request's Begin takes.
		go m.finish(s)
	}
}

// closeInfo is how a closed session ended, kept until its last request finishes.
type closeInfo struct {
	status, reason string
	at             time.Time
}

// finish seals the trail of a closed session and stores the outcome. It runs once, when the session is closed and
// idle, and ends the m.pending count that closeLocked started.
func (m *Manager) finish(s *Session) {
	s.mu.Lock()
	c := s.closing
	s.mu.Unlock()
	row := s.snapshotRow()
	row.Status, row.TerminationReason, row.Disconnected = c.status, c.reason, c.at
	if s.writer != nil {
		seal, err := s.writer.Close(c.reason)
		if err != nil {
			m.log.Error("closing trail failed", "session", row.ID, "err", err)
		}
		row.TrailHead, row.TrailRecords = seal.Head, seal.Records
	}
	// Store the outcome off the caller's path: a slow database must not stall the proxy.
	go func() {
		defer m.pending.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if s.writer != nil {
			// Before the outcome: once a session shows as closed, its trail is readable through every node.
			m.archive(ctx, row.ID)
		}
		if err := m.store.CloseSession(ctx, &row); err != nil {
			m.log.Error("storing closed session failed", "session", row.ID, "err", err)
		}
	}()
	m.log.Info("api session closed", "session", row.ID, "status", c.status, "reason", c.reason, "requests", row.Requests,
		"bytes_in", row.BytesIn, "bytes_out", row.BytesOut, "duration", c.at.Sub(row.Connected).Round(time.Millisecond))
}

func (s *Session) snapshotRow() store.APISession {
	row := s.row
	row.Requests, row.BytesIn, row.BytesOut = s.requests.Load(), s.bytesIn.Load(), s.bytesOut.Load()
	row.LastActivity = time.Unix(0, s.lastNano.Load()).UTC()
	return row
}

// request is one request accounted to a session.
type request struct {
	m      *Manager
	s      *Session
	vctx   sessionCtx
	cancel context.CancelCauseFunc
	once   sync.Once
}

func (r *request) End(bytesIn, bytesOut int64, status int) {
	r.once.Do(func() {
		r.cancel(nil)
		s := r.s
		s.requests.Add(1)
		s.bytesIn.Add(bytesIn)
		s.bytesOut.Add(bytesOut)
		s.lastNano.Store(r.m.now().UnixNano())
		s.mu.Lock()
		s.inflight--
		delete(s.reqs, r)
		s.dirty = true
		last := s.inflight == 0 && s.closing != nil
		s.mu.Unlock()
		if last {
			r.m.finish(s)
		}
	})
}

// CaptureLimit tells the proxy how much of each body to capture for this session's trail.
func (r *request) CaptureLimit() int {
	if r.s.writer == nil {
		return 0
	}
	return r.s.writer.CaptureLimit()
}

type noopRequest struct{}

func (noopRequest) End(int64, int64, int) {}
