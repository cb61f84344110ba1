package gate

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/connpolicy"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/proxy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Gate implements proxy.Authorizer over the snapshot.
type Gate struct {
	store *store.Store
	log   *slog.Logger
	// Limiter refuses sources that keep presenting bad secrets; New sets one allowing 20 failures a minute. The
	// gate records its failures there and, unless Limiter.Now is set, consults it only while a failure it
	// recorded may still count, so requests skip the limiter's lock while nobody is guessing.
	Limiter *auth.FailureLimiter
	// Now returns the current time; nil means time.Now. Tests set it to check validity windows.
	Now func() time.Time
	// Connections returns the committed connection policies of the configuration API, which admit connections
	// before, and in addition to, the target rules; nil admits every connection.
	Connections func() *connpolicy.Policies
	// OnReload, if set, is called with a checker after every rebuild, so open API sessions can be re-checked
	// against the new rules (a lost role, a disabled credential).
	OnReload func(check func(credentialID string, client netip.Addr) (reason string, ok bool))
	// Shared, if set, counts bad secrets for the cluster as a whole, so that Limiter's burst holds across all
	// nodes, not per node; nil counts on this node only.
	Shared SharedCounts

	conns    connCacheHolder
	snap     atomic.Pointer[snapshot]
	reloadMu sync.Mutex

	// lastFail is when this gate last recorded a failure, in nanoseconds after start (monotonic), 0 for never.
	lastFail atomic.Int64
	start    time.Time

	usedMu sync.Mutex
	used   []*credential // credentials whose lastUsed went from 0 to set since the last flush
}

var _ proxy.Authorizer = (*Gate)(nil)

// SharedCounts counts events over the last minute on every node of a cluster.
type SharedCounts interface {
	Add(scope, key string)
	Active() bool
	Total(scope, key string) int
}

// scopeBadSecret is the scope of SharedCounts under which bad proxy secrets are counted by source.
const scopeBadSecret = "proxy-bad-secret"

// New builds the first snapshot.
func New(ctx context.Context, st *store.Store, log *slog.Logger) (*Gate, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Gate{store: st, log: log, Limiter: &auth.FailureLimiter{Burst: 20}, start: time.Now()}
	if err := g.Reload(ctx); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *Gate) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// Reload rebuilds the snapshot from the store and swaps it in. Requests in flight finish on the old one.
func (g *Gate) Reload(ctx context.Context) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	s, err := build(ctx, g.store)
	if err != nil {
		return err
	}
	g.snap.Store(s)
	g.log.Debug("policy snapshot rebuilt", "snapshot", s.String(), "took", time.Since(s.built))
	if g.OnReload != nil {
		g.OnReload(func(credentialID string, client netip.Addr) (string, bool) {
			return g.checkCredential(s, credentialID, client)
		})
	}
	return nil
}

// Run rebuilds the snapshot every interval() (so changes made by other nodes sharing a PostgreSQL database arrive,
// and credential windows are re-evaluated for open sessions) and flushes credential last-use times, until ctx is
// done.
func (g *Gate) Run(ctx context.Context, interval func() time.Duration) {
	last := time.Now()
	for {
		// Wake at least every second to read the interval again, so that shortening it (the
		// reauthorization_interval setting) applies at once rather than after the longer wait already begun.
		t := time.NewTimer(min(interval(), time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			g.Flush(context.WithoutCancel(ctx))
			return
		case <-t.C:
		}
		if time.Since(last) < interval() {
			continue
		}
		last = time.Now()
		if err := g.Reload(ctx); err != nil && ctx.Err() == nil {
			g.log.Error("policy snapshot rebuild failed; keeping the previous one", "err", err)
		}
		g.Flush(ctx)
	}
}

// Flush writes the batched last-use times of credentials.
func (g *Gate) Flush(ctx context.Context) {
	g.usedMu.Lock()
	used := g.used
	g.used = nil
	g.usedMu.Unlock()
	batch := make(map[string]time.Time, len(used))
	for _, c := range used {
		// A use racing with this swap either lands here or queues the credential again for the next flush.
		ns := c.lastUsed.Swap(0)
		if t := time.Unix(0, ns); ns != 0 && t.After(batch[c.id]) {
			batch[c.id] = t // the same credential may be queued from an old and a new snapshot
		}
	}
	if err := g.store.TouchCredentials(ctx, batch); err != nil {
		g.log.Error("recording credential last use failed", "err", err, "credentials", len(batch))
	}
}

// checkCredential re-evaluates everything about a credential except the request itself: used to re-check open
// sessions after a change.
func (g *Gate) checkCredential(s *snapshot, id string, client netip.Addr) (string, bool) {
	c := s.credByID[id]
	if c == nil {
		return "credential deleted", false
	}
	if !c.enabled {
		return "credential disabled", false
	}
	if !g.now().Before(c.notAfter) {
		return "credential expired", false
	}
	if client.IsValid() && !policy.AddrAllowed(c.sources, client) {
		return "client address no longer allowed for the credential", false
	}
	u := s.users[c.userID]
	if u == nil || !u.enabled {
		return "user disabled or deleted", false
	}
	t := s.targets[c.targetID]
	if t == nil || t.disabled {
		return "target disabled or deleted", false
	}
	if !s.holdsRole(u, t) {
		return "user no longer holds a role of the target", false
	}
	return "", true
}

// Authorize implements proxy.Authorizer.
func (g *Gate) Authorize(ctx context.Context, r *proxy.AuthRequest) (*proxy.Grant, error) {
	s := g.snap.Load()
	// A tunnel to an authority no enabled target serves could only ever be refused, after it cost a leaf
	// certificate and a handshake: refuse it first, before it counts against a connection policy's rate limit.
	if r.Method == "CONNECT" && !anyTargetServes(s, r.Host) {
		return nil, fmt.Errorf("%w: %s", proxy.ErrNoTarget, r.Host)
	}
	conn, pc, err := g.admit(r)
	if err != nil {
		return nil, err
	}
	if r.Secret == "" {
		if r.Method == "CONNECT" {
			// The requests inside the tunnel carry their own credentials and are each authorized.
			if pc != nil {
				return &proxy.Grant{Conn: pc}, nil
			}
			return nil, nil
		}
		return g.anonymous(s, r, conn, pc)
	}
	if g.limiterActive() {
		if ok, _ := g.Limiter.Allow(limiterKey(r)); !ok {
			return nil, proxy.ErrRateLimited
		}
	}
	if g.Shared != nil && g.Shared.Active() && g.Shared.Total(scopeBadSecret, limiterKey(r)) >= max(g.Limiter.Burst, 5) {
		return nil, proxy.ErrRateLimited
	}
	index := g.store.SecretIndex(store.IndexProxySecret, r.Secret)
	c := s.credentials[index]
	// The map lookup is on a keyed hash, so its timing tells an attacker nothing about the secret; the compare
	// below keeps even a forged hash collision from matching a different id.
	if c == nil || (r.CredentialID != "" && !basicUserMatches(r.CredentialID, c, s.users[c.userID])) {
		g.fail(r)
		return nil, proxy.ErrUnauthenticated
	}
	now := g.now()
	// The credential is known from here: a denial names it (and its user and target) for the log and the audit
	// event, though the client is told nothing of it.
	deny := func(reason string) (*proxy.Grant, error) {
		who := proxy.SessionInfo{CredentialID: c.id, CredentialName: c.name, UserID: c.userID}
		if u := s.users[c.userID]; u != nil {
			who.UserName = u.name
		}
		if t := s.targets[c.targetID]; t != nil {
			who.TargetName = t.name
		}
		return nil, &proxy.DeniedError{Reason: reason, Grant: &proxy.Grant{Session: who}}
	}
	switch {
	case !c.enabled:
		return deny("credential is disabled")
	case now.Before(c.notBefore):
		return deny("credential is not valid yet")
	case !now.Before(c.notAfter):
		return deny("credential has expired")
	case !policy.AddrAllowed(c.sources, r.Client.Addr()):
		return deny("client address is not allowed for this credential")
	}
	u := s.users[c.userID]
	if u == nil || !u.enabled {
		return deny("user is disabled")
	}
	t := s.targets[c.targetID]
	if t == nil || t.disabled {
		return deny("target is disabled")
	}
	if !s.holdsRole(u, t) {
		return deny("user holds no role of the target")
	}
	grant := &proxy.Grant{Target: t.forward, Secret: r.Secret, Session: proxy.SessionInfo{
		UserID: u.id, UserName: u.name, CredentialID: c.id, CredentialName: c.name, TargetName: t.name,
	}}
	g.applyConnection(grant, conn)
	grant.Conn = pc
	// From here the credential is good and the request itself may be refused: the denial names who was refused
	// so that it is recorded in that session's trail.
	denyRequest := func(reason string) (*proxy.Grant, error) {
		return nil, &proxy.DeniedError{Reason: reason, Grant: grant}
	}
	if conn != nil && r.Method != "CONNECT" && !conn.Channel(channelKind(r), u.name, u.roleNames) {
		return denyRequest("the channel policy of connection policy " + conn.PolicyName + " does not allow this user " + channelKind(r))
	}
	if r.Method == "CONNECT" {
		// Refuse a tunnel to a host the credential's target never serves, before any TLS is set up.
		hp, err := policy.ParseAuthority(r.Host)
		if err != nil || !servesHost(s, t.id, hp) {
			return nil, &proxy.DeniedError{Reason: "the credential's target has no endpoint on " + r.Host, Grant: &proxy.Grant{Session: grant.Session}}
		}
		g.markUsed(c, now)
		return grant, nil
	}
	d := t.rules.Match(policy.Request{Scheme: r.Scheme, Host: r.Host, Method: r.Method, Path: r.Path})
	if !d.Allowed {
		return denyRequest(d.Reason)
	}
	grant.NATTargetHost = d.Endpoint.NATTargetHost
	g.markUsed(c, now)
	return grant, nil
}

// anonymous admits a request without a credential only through an endpoint that allows unauthenticated
// requests, and then injects nothing.
func (g *Gate) anonymous(s *snapshot, r *proxy.AuthRequest, conn *connpolicy.Decision, pc *proxy.Connection) (*proxy.Grant, error) {
	if conn != nil && !conn.Channel(channelKind(r), "", nil) {
		return nil, &proxy.DeniedError{Reason: "the channel policy of connection policy " + conn.PolicyName + " does not allow unauthenticated " + channelKind(r)}
	}
	hp, err := policy.ParseAuthority(r.Host)
	if err != nil {
		return nil, proxy.ErrUnauthenticated
	}
	if hp.Port == 0 {
		hp.Port = policy.DefaultPort(r.Scheme)
	}
	for _, id := range s.hosts.Lookup(hp) {
		t := s.targets[id]
		if t == nil || t.disabled {
			continue
		}
		d := t.rules.MatchUnauthenticated(policy.Request{Scheme: r.Scheme, Host: r.Host, Method: r.Method, Path: r.Path})
		if d.Allowed {
			grant := &proxy.Grant{Target: t.anonymous, Unauthenticated: true, NATTargetHost: d.Endpoint.NATTargetHost,
				Session: proxy.SessionInfo{TargetName: t.name}, Conn: pc}
			g.applyConnection(grant, conn)
			return grant, nil
		}
	}
	return nil, proxy.ErrUnauthenticated
}

// anyTargetServes reports whether an enabled target has an authorized endpoint on the CONNECT authority: its
// host as the client names it (wildcard rules included; a NAT target host is where Gatehouse connects, not a
// name clients use) and its port, 443 when none is given.
func anyTargetServes(s *snapshot, authority string) bool {
	hp, err := policy.ParseAuthority(authority)
	if err != nil {
		return false
	}
	if hp.Port == 0 {
		hp.Port = 443
	}
	for _, id := range s.hosts.Lookup(hp) {
		if t := s.targets[id]; t != nil && !t.disabled {
			return true
		}
	}
	return false
}

// TargetFor implements proxy.TargetNamer: the name of the target serving authority (a CONNECT's host:port), for
// labelling a tunnel opened before any credential is seen; "multiple" when several targets serve it, "" when none.
func (g *Gate) TargetFor(authority string) string {
	hp, err := policy.ParseAuthority(authority)
	if err != nil {
		return ""
	}
	if hp.Port == 0 {
		hp.Port = 443
	}
	s := g.snap.Load()
	name := ""
	for _, id := range s.hosts.Lookup(hp) {
		if t := s.targets[id]; t != nil && !t.disabled {
			if name != "" && name != t.name {
				return "multiple"
			}
			name = t.name
		}
	}
	return name
}

func servesHost(s *snapshot, targetID string, hp policy.HostPort) bool {
	if hp.Port == 0 {
		hp.Port = 443
	}
	for _, id := range s.hosts.Lookup(hp) {
		if id == targetID {
			return true
		}
	}
	return false
}

// markUsed notes a credential's use for the next Flush; only the first use after a flush takes the lock.
func (g *Gate) markUsed(c *credential, t time.Time) {
	if c.lastUsed.Swap(t.UnixNano()) == 0 {
		g.usedMu.Lock()
		g.used = append(g.used, c)
		g.usedMu.Unlock()
	}
}

// limiterKey is the rate limiting key of a request's source address.
func limiterKey(r *proxy.AuthRequest) string { return "ip:" + r.Client.Addr().Unmap().String() }

// failureMemory bounds how long after its last recorded failure the gate still consults the limiter: longer than
// the limiter's window (a minute unless set), so no failure that still counts is skipped.
func (g *Gate) failureMemory() time.Duration { return 2 * max(g.Limiter.Window, time.Minute) }

// fail records a bad secret from the request's source.
func (g *Gate) fail(r *proxy.AuthRequest) {
	// Mark before recording, so a concurrent request that sees the failure in the limiter also sees the mark.
	g.lastFail.Store(int64(max(time.Since(g.start), 1)))
	g.Limiter.Fail(limiterKey(r))
	if g.Shared != nil {
		g.Shared.Add(scopeBadSecret, limiterKey(r))
	}
}

// limiterActive reports whether the limiter could refuse anyone: only after a failure this gate recorded within
// failureMemory, or always when the limiter runs on a clock of its own (tests).
func (g *Gate) limiterActive() bool {
	if g.Limiter.Now != nil {
		return true
	}
	last := g.lastFail.Load()
	return last != 0 && time.Since(g.start)-time.Duration(last) < g.failureMemory()
}

var _ proxy.TargetNamer = (*Gate)(nil)

// Built is when the policy snapshot in force was built; every reload builds a new one, so its age says whether
// reloads still happen.
func (g *Gate) Built() time.Time { return g.snap.Load().built }

// Stats reports snapshot sizes for the status endpoint.
func (g *Gate) Stats() map[string]any {
	s := g.snap.Load()
	return map[string]any{"targets": len(s.targets), "credentials": len(s.credentials), "users": len(s.users),
		"policy_built": s.built.UTC().Format(time.RFC3339)}
}

// admit applies the configuration API's connection policies: a CONNECT or an absolute-form request is a new
// connection and counts against its policy's rate limit; a request inside a tunnel is matched again without
// counting, so a commit applies to open tunnels at their next request. The policy's web proxy, transport security
// and inband routing rules are checked too; pc is what the proxy needs of the policy.
func (g *Gate) admit(r *proxy.AuthRequest) (d *connpolicy.Decision, pc *proxy.Connection, err error) {
	if g.Connections == nil {
		return nil, nil, nil
	}
	policies := g.Connections()
	hp, err := policy.ParseAuthority(r.Host)
	if err != nil {
		return nil, nil, &proxy.DeniedError{Reason: "invalid target host"}
	}
	port := int(hp.Port)
	if port == 0 {
		scheme := r.Scheme
		if r.Method == "CONNECT" || scheme == "" {
			scheme = "https"
		}
		port = int(policy.DefaultPort(scheme))
	}
	if r.Tunnel {
		d, err = policies.Match(r.Client.Addr(), hp.Host, port)
	} else {
		d, err = policies.Admit(r.Client.Addr(), hp.Host, port)
	}
	switch {
	case errors.Is(err, connpolicy.ErrRateLimited):
		return nil, nil, proxy.ErrRateLimited
	case err != nil:
		return nil, nil, &proxy.DeniedError{Reason: err.Error()}
	}
	if err := d.Check(connpolicy.Request{Connect: r.Method == "CONNECT", Scheme: r.Scheme, Host: hp.Host, Port: port,
		ProxyTLS: r.ProxyTLS}); err != nil {
		return nil, nil, &proxy.DeniedError{Reason: err.Error()}
	}
	return d, g.conns.connection(policies, d), nil
}

func channelKind(r *proxy.AuthRequest) string {
	if r.WebSocket {
		return "websocket"
	}
	return "http"
}

// applyConnection carries what the connection policy says about sessions and recording into the grant. Recording
// needs both the target's audit flag and the policy's audit policy.
// The SessionPolicy is the decision's, shared by its grants: nothing changes a grant's Policy.
func (g *Gate) applyConnection(grant *proxy.Grant, d *connpolicy.Decision) {
	if d == nil {
		return
	}
	grant.Policy = g.conns.sessionPolicy(d)
	if !d.Record && grant.Target != nil && grant.Target.AuditEnabled {
		t := *grant.Target
		t.AuditEnabled = false
		grant.Target = &t
	}
}

// basicUserMatches says whether the user part of a Basic proxy credential names the credential the secret belongs
// to: its id, or its owner's username (what http://alice:SECRET@gatehouse:20080 sends). Either way the secret
// decides; the name must only not contradict it.
func basicUserMatches(name string, c *credential, owner *user) bool {
	idOK := subtle.ConstantTimeCompare([]byte(name), []byte(c.id)) == 1
	nameOK := owner != nil && subtle.ConstantTimeCompare([]byte(name), []byte(owner.name)) == 1
	return idOK || nameOK
}
