// Package connpolicy is the pure evaluator of the configuration API's connection policies: given the client
// address, the requested target and port, it finds the policy that admits a connection and says what then
// applies (channels, session bounds, recording, transport security, routing). It does no I/O; the configuration
// API compiles its committed objects into a Config, and the gate asks the resulting Policies.
package connpolicy

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
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

// Config is everything the evaluator needs, already parsed and with references resolved.
type Config struct {
	// ServiceEnabled false refuses every connection.
	ServiceEnabled bool
	// Policies are the active connection policies in the order they are tried.
	Policies []Policy
	// Retention says how long sessions are kept; it covers inactive policies too, whose old sessions remain.
	Retention Retention
	// QuietDownloads lists the keys of policies with log_audit_trail_downloads false.
	QuietDownloads map[string]bool
}

// Retention says how long closed sessions are kept, in days; 0 means forever.
type Retention struct {
	// Global applies to sessions whose policy sets no cleanup of its own (http/options channel_database_cleanup).
	Global int
	// PerPolicy maps a connection policy key to its channel_database_cleanup days, where enabled.
	PerPolicy map[string]int
}

// Policy is one active connection policy: what it matches and what it decides.
type Policy struct {
	Key, Name string
	Clients   []netip.Prefix
	Targets   []Target
	// Ports lists target ports; empty means every port.
	Ports []int
	// RateLimit is new connections per minute, 0 for none.
	RateLimit int
	Decision  *Decision
}

// Decision is what a matching connection policy says about a connection and the API sessions in it.
type Decision struct {
	// PolicyKey and PolicyName identify the matching connection policy.
	PolicyKey, PolicyName string
	// IdleTimeout and SessionTimeout come from the settings policy; SessionTimeout 0 means no lifetime limit.
	IdleTimeout, SessionTimeout time.Duration
	// ClientTLSMinVersion applies to TLS with the client (intercepted tunnels and a TLS web proxy),
	// ServerTLSMinVersion to TLS with the target (tls.VersionTLS12 or tls.VersionTLS13).
	ClientTLSMinVersion, ServerTLSMinVersion uint16
	// Record, BodyLimit and RedactHeaders come from the audit policy: whether to record the session's trail, how
	// many bytes of each body, and which extra headers to redact.
	Record        bool
	BodyLimit     int64
	RedactHeaders []string
	// Index says whether recorded exchanges go to the searchable trail index (indexing.enabled).
	Index bool
	// Rules are the channel policy's rules.
	Rules []Rule
	// Transport is transport_security, WebProxy is web_proxy, Route is server_address.
	Transport Transport
	WebProxy  WebProxy
	Route     Route
	// SourceAddress, when valid, is the local address upstream connections are made from (source_address fix).
	SourceAddress netip.Addr
	// AccessControl is access_control: who must approve the policy's new API sessions, and who may audit them.
	// Empty means no approval and no auditors.
	AccessControl []AccessRule
}

// AccessRule is one access_control entry: Authorizer (a role) may authorize and/or audit (Permission: audit,
// authorize, audit_and_authorize) the sessions of users holding SubjectGroup (empty: everybody). Its fields are
// those of approval.Rule, which is what the data plane converts it to.
type AccessRule struct {
	Authorizer, Permission, SubjectGroup         string
	RequireDifferentIP, RequireDifferentUsername bool
}

// Rule is one channel policy rule. It allows a channel when it lists it, the user holds one of Roles (or Roles is
// empty), and every user list admits the username (a nil list, one that no longer exists, admits nobody).
type Rule struct {
	Channels  []string
	Roles     []string
	Userlists []*Userlist
}

// Userlist is a user list: AllowAll with Except as a blacklist, or no user but Except (a whitelist).
type Userlist struct {
	AllowAll bool
	Except   []string
}

// Admits applies the list to a username.
func (u *Userlist) Admits(username string) bool {
	if u == nil {
		return false
	}
	return slices.Contains(u.Except, username) != u.AllowAll
}

// Channel reports whether the channel policy allows kind ("http" or "websocket") for this user, who holds roles
// (Gatehouse role names).
func (d *Decision) Channel(kind, username string, roles []string) bool {
	for _, r := range d.Rules {
		if !slices.Contains(r.Channels, kind) {
			continue
		}
		if len(r.Roles) > 0 && !slices.ContainsFunc(roles, func(x string) bool { return slices.Contains(r.Roles, x) }) {
			continue
		}
		if !slices.ContainsFunc(r.Userlists, func(l *Userlist) bool { return !l.Admits(username) }) {
			return true
		}
	}
	return false
}

// Policies is an immutable snapshot of the committed connection policies, ready to evaluate. Admit is safe for
// concurrent use.
type Policies struct {
	enabled   bool
	conns     []Policy
	rates     *RateCounter
	retention Retention
	quiet     map[string]bool
	// access holds the access_control rules by policy key, only for policies that have some.
	access map[string][]AccessRule
}

// New builds a snapshot of cfg. rates counts connections against rate limits across snapshots; nil means a
// private counter on the system clock.
func New(cfg Config, rates *RateCounter) *Policies {
	if rates == nil {
		rates = NewRateCounter(nil)
	}
	p := &Policies{enabled: cfg.ServiceEnabled, conns: slices.Clone(cfg.Policies), rates: rates,
		retention: Retention{Global: cfg.Retention.Global, PerPolicy: maps.Clone(cfg.Retention.PerPolicy)}, quiet: maps.Clone(cfg.QuietDownloads)}
	for i := range p.conns {
		if p.conns[i].Decision == nil {
			p.conns[i].Decision = &Decision{PolicyKey: p.conns[i].Key, PolicyName: p.conns[i].Name}
		}
		if ac := p.conns[i].Decision.AccessControl; len(ac) > 0 {
			if p.access == nil {
				p.access = map[string][]AccessRule{}
			}
			p.access[p.conns[i].Key] = slices.Clone(ac)
		}
	}
	return p
}

// Decisions lists the decision of every policy in evaluation order, for callers that derive data from them once
// per snapshot.
func (p *Policies) Decisions() []*Decision {
	out := make([]*Decision, 0, len(p.conns))
	for _, c := range p.conns {
		out = append(out, c.Decision)
	}
	return out
}

// Admit finds the first active connection policy matching the client address, the target (an IP literal or a
// host name as the client asked for it) and port, and counts the connection against that policy's rate limit.
func (p *Policies) Admit(client netip.Addr, targetHost string, targetPort int) (*Decision, error) {
	return p.find(client, targetHost, targetPort, true)
}

// Match is Admit without counting: for the requests inside a tunnel that Admit let in, so that a commit applies
// to them at their next request without charging the rate limit again.
func (p *Policies) Match(client netip.Addr, targetHost string, targetPort int) (*Decision, error) {
	return p.find(client, targetHost, targetPort, false)
}

func (p *Policies) find(client netip.Addr, targetHost string, targetPort int, count bool) (*Decision, error) {
	if !p.enabled {
		return nil, ErrServiceDisabled
	}
	client = client.Unmap().WithZone("")
	host, addr := normalizeHost(targetHost)
	for i := range p.conns {
		c := &p.conns[i]
		if !c.matches(client, host, addr, targetPort) {
			continue
		}
		if count && c.RateLimit > 0 && !p.rates.allow(c.Key, c.RateLimit) {
			return nil, fmt.Errorf("%w: policy %q allows %d per minute", ErrRateLimited, c.Name, c.RateLimit)
		}
		return c.Decision, nil
	}
	return nil, ErrNoPolicy
}

func (c *Policy) matchesClient(client netip.Addr) bool {
	return slices.ContainsFunc(c.Clients, func(p netip.Prefix) bool { return p.Contains(client) })
}

func (c *Policy) matches(client netip.Addr, host string, addr netip.Addr, port int) bool {
	if !c.matchesClient(client) {
		return false
	}
	if len(c.Ports) > 0 && !slices.Contains(c.Ports, port) {
		return false
	}
	return slices.ContainsFunc(c.Targets, func(t Target) bool { return t.Matches(host, addr) })
}

// AccessControl returns the access_control rules of the active policy with this key, nil for none. It is one map
// lookup, for every request of the data plane.
func (p *Policies) AccessControl(policyKey string) []AccessRule { return p.access[policyKey] }

// AccessControlKeys lists, sorted, the keys of the policies that have access_control rules.
func (p *Policies) AccessControlKeys() []string { return slices.Sorted(maps.Keys(p.access)) }

// Retention returns how long closed sessions are kept.
func (p *Policies) Retention() Retention {
	return Retention{Global: p.retention.Global, PerPolicy: maps.Clone(p.retention.PerPolicy)}
}

// AuditTrailDownloads reports whether reading or exporting the trail of a session admitted by the policy with
// this key is audited: log_audit_trail_downloads, true for sessions of no or unknown policies.
func (p *Policies) AuditTrailDownloads(policyKey string) bool { return !p.quiet[policyKey] }

// QuietDownloadKeys lists, sorted, the keys of the policies whose trail downloads are not audited.
func (p *Policies) QuietDownloadKeys() []string { return slices.Sorted(maps.Keys(p.quiet)) }
