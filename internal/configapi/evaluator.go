package configapi

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Sentinel errors of Admit. Callers check them with errors.Is; the error text names the policy where there is one.
var (
	// ErrNoPolicy means no active connection policy matches the client, target and port.
	ErrNoPolicy = errors.New("no active connection policy admits this connection")
	// ErrRateLimited means the matching policy's connections-per-minute limit is used up.
	ErrRateLimited = errors.New("connection rate limit of the connection policy reached")
	// ErrServiceDisabled means /api/configuration/http/options has the HTTP service disabled.
	ErrServiceDisabled = errors.New("the HTTP proxy service is disabled in the configuration")
)

// ConnectionPolicies is an immutable snapshot of the committed connection policies with everything they refer to,
// ready to evaluate without I/O. Admit is safe for concurrent use.
type ConnectionPolicies struct {
	enabled bool
	conns   []*compiledConn
	rates   *rateCounter
}

type compiledConn struct {
	key, name string
	clients   []netip.Prefix
	targets   []targetEntry
	ports     []int
	rateLimit int // per minute, 0 = none
	decision  *Decision
}

// Decision is what a matching connection policy says about a connection and the API sessions in it.
type Decision struct {
	// PolicyKey and PolicyName identify the matching connection policy.
	PolicyKey, PolicyName string
	// IdleTimeout and SessionTimeout come from the settings policy; SessionTimeout 0 means no lifetime limit.
	IdleTimeout, SessionTimeout time.Duration
	// ClientTLSMinVersion applies to the client side of intercepted TLS, ServerTLSMinVersion to the upstream side
	// (tls.VersionTLS12 or tls.VersionTLS13).
	ClientTLSMinVersion, ServerTLSMinVersion uint16
	// Record, BodyLimit and RedactHeaders come from the audit policy: whether to record the session's trail, how
	// many bytes of each body, and which extra headers to redact.
	Record        bool
	BodyLimit     int64
	RedactHeaders []string

	rules     []compiledRule
	userlists map[string]*userlist
}

type compiledRule struct {
	channels  []string
	roles     []string
	userlists []string
}

// Channel reports whether the channel policy allows kind ("http" or "websocket") for this user, who holds roles
// (Gatehouse role names). A rule allows when it lists the channel, the user holds one of its gateway_groups (or it
// names none), and every user list it names admits the username.
func (d *Decision) Channel(kind, username string, roles []string) bool {
	for _, r := range d.rules {
		if !slices.Contains(r.channels, kind) {
			continue
		}
		if len(r.roles) > 0 && !slices.ContainsFunc(roles, func(x string) bool { return slices.Contains(r.roles, x) }) {
			continue
		}
		ok := true
		for _, key := range r.userlists {
			if l := d.userlists[key]; l == nil || !l.admits(username) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// Admit finds the first active connection policy (custom policies in creation order, then the built-in default)
// matching the client address, the target (an IP literal or a host name as the client asked for it) and port,
// and counts the connection against that policy's rate limit.
func (p *ConnectionPolicies) Admit(client netip.Addr, targetHost string, targetPort int) (*Decision, error) {
	return p.find(client, targetHost, targetPort, true)
}

// Match is Admit without counting: for the requests inside a tunnel that Admit let in, so that a commit applies
// to them at their next request without charging the rate limit again.
func (p *ConnectionPolicies) Match(client netip.Addr, targetHost string, targetPort int) (*Decision, error) {
	return p.find(client, targetHost, targetPort, false)
}

func (p *ConnectionPolicies) find(client netip.Addr, targetHost string, targetPort int, count bool) (*Decision, error) {
	if !p.enabled {
		return nil, ErrServiceDisabled
	}
	client = client.Unmap().WithZone("")
	host := strings.ToLower(strings.TrimSuffix(strings.Trim(targetHost, "[]"), "."))
	addr, err := netip.ParseAddr(host)
	if err == nil {
		addr = addr.Unmap().WithZone("")
	}
	for _, c := range p.conns {
		if !c.matches(client, host, addr, targetPort) {
			continue
		}
		if count && c.rateLimit > 0 && p.rates != nil && !p.rates.allow(c.key, c.rateLimit) {
			return nil, fmt.Errorf("%w: policy %q allows %d per minute", ErrRateLimited, c.name, c.rateLimit)
		}
		return c.decision, nil
	}
	return nil, ErrNoPolicy
}

func (c *compiledConn) matches(client netip.Addr, host string, addr netip.Addr, port int) bool {
	if !slices.ContainsFunc(c.clients, func(p netip.Prefix) bool { return p.Contains(client) }) {
		return false
	}
	if len(c.ports) > 0 && !slices.Contains(c.ports, port) {
		return false
	}
	return slices.ContainsFunc(c.targets, func(t targetEntry) bool { return t.matches(host, addr) })
}

// buildPolicies compiles a configuration view into a snapshot. The view has been validated; an error here means a
// body that no longer decodes, which is refused at commit.
func buildPolicies(v *configView) (*ConnectionPolicies, error) {
	var opts httpOptions
	if err := json.Unmarshal(v.get(kindOptions, singletonKey), &opts); err != nil {
		return nil, fmt.Errorf("http options: %w", err)
	}
	p := &ConnectionPolicies{enabled: opts.Service.Enabled}
	lists := map[string]*userlist{}
	for _, key := range v.keys[kindUserlists.name] {
		var l userlist
		if err := json.Unmarshal(v.get(kindUserlists, key), &l); err != nil {
			return nil, fmt.Errorf("user list %s: %w", key, err)
		}
		lists[key] = &l
	}
	var custom, builtins []*compiledConn
	for _, key := range v.keys[kindConnections.name] {
		var c connection
		if err := json.Unmarshal(v.get(kindConnections, key), &c); err != nil {
			return nil, fmt.Errorf("connection %s: %w", key, err)
		}
		if !c.Active {
			continue
		}
		cc, err := compileConn(v, key, &c, lists)
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(key, "-") {
			builtins = append(builtins, cc)
		} else {
			custom = append(custom, cc)
		}
	}
	// The built-in default admits everything, so it goes last: custom policies are tried first.
	p.conns = append(custom, builtins...)
	return p, nil
}

func compileConn(v *configView, key string, c *connection, lists map[string]*userlist) (*compiledConn, error) {
	cc := &compiledConn{key: key, name: c.Name, ports: c.Network.Ports}
	for _, s := range c.Network.Clients {
		pfx, err := parseClient(s)
		if err != nil {
			return nil, fmt.Errorf("connection %s: %w", key, err)
		}
		cc.clients = append(cc.clients, pfx)
	}
	for _, s := range c.Network.Targets {
		t, err := parseTarget(s)
		if err != nil {
			return nil, fmt.Errorf("connection %s: %w", key, err)
		}
		cc.targets = append(cc.targets, t)
	}
	if c.RateLimit.Enabled {
		cc.rateLimit = c.RateLimit.Value
	}
	d := &Decision{PolicyKey: key, PolicyName: c.Name, userlists: lists}
	var set settingsPolicy
	var aud auditPolicy
	var ch channelPolicy
	for _, x := range []struct {
		k   *kind
		ref *Ref
		out any
	}{{kindSettingsPolicies, c.Policies.Settings, &set}, {kindAuditPolicies, c.Policies.AuditPolicy, &aud}, {kindChannelPolicies, c.Policies.ChannelPolicy, &ch}} {
		if x.ref == nil {
			return nil, fmt.Errorf("connection %s: missing %s", key, x.k.name)
		}
		b := v.get(x.k, x.ref.Key)
		if b == nil {
			return nil, fmt.Errorf("connection %s: %s %s does not exist", key, x.k.name, x.ref.Key)
		}
		if err := json.Unmarshal(b, x.out); err != nil {
			return nil, fmt.Errorf("connection %s: %s: %w", key, x.k.name, err)
		}
	}
	d.IdleTimeout = time.Duration(set.IdleTimeout) * time.Second
	d.SessionTimeout = time.Duration(set.SessionTimeout) * time.Second
	d.ClientTLSMinVersion, d.ServerTLSMinVersion = tlsVersion(set.ClientTLSMinVersion), tlsVersion(set.ServerTLSMinVersion)
	d.Record, d.BodyLimit, d.RedactHeaders = aud.Record, int64(aud.BodyLimit), slices.Clone(aud.RedactHeaders)
	for _, r := range ch.Rules {
		cr := compiledRule{channels: r.Channels, roles: r.AllowedFor.GatewayGroups}
		for _, u := range r.AllowedFor.Userlists {
			cr.userlists = append(cr.userlists, u.Key)
		}
		d.rules = append(d.rules, cr)
	}
	cc.decision = d
	return cc, nil
}

func tlsVersion(s string) uint16 {
	if s == "TLSv1_3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// Reload rebuilds the policy snapshot from the committed configuration. Commits call it; in a cluster, call it
// periodically (or on a change notification) so other nodes' commits take effect.
func (s *Service) Reload(ctx context.Context) error {
	s.init()
	v, err := s.committed(ctx)
	if err != nil {
		return fmt.Errorf("reload connection policies: %w", err)
	}
	p, err := buildPolicies(v)
	if err != nil {
		return fmt.Errorf("reload connection policies: %w", err)
	}
	p.rates = s.rates
	s.policies.Store(p)
	return nil
}

// Policies returns the current committed snapshot. Before the first Reload it is the built-in defaults.
func (s *Service) Policies() *ConnectionPolicies {
	if p := s.policies.Load(); p != nil {
		return p
	}
	s.init()
	p, err := buildPolicies(buildView(nil))
	if err != nil {
		panic("configapi: built-in defaults do not compile: " + err.Error())
	}
	p.rates = s.rates
	s.policies.CompareAndSwap(nil, p)
	return s.policies.Load()
}

// rateCounter counts connections per policy over a sliding minute. It outlives snapshots, so a commit does not
// reset a policy's count.
type rateCounter struct {
	now func() time.Time
	mu  sync.Mutex
	hit map[string][]time.Time
}

func newRateCounter(now func() time.Time) *rateCounter {
	return &rateCounter{now: now, hit: map[string][]time.Time{}}
}

// allow counts one connection for key if fewer than limit were counted in the last minute.
func (r *rateCounter) allow(key string, limit int) bool {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	list := r.hit[key]
	i := 0
	for i < len(list) && now.Sub(list[i]) >= time.Minute {
		i++
	}
	list = list[i:]
	if len(list) >= limit {
		r.hit[key] = list
		return false
	}
	r.hit[key] = append(list, now)
	return true
}
