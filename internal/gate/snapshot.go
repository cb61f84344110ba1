// Package gate is the proxy's policy decision point: it answers "may this request pass, and on whose behalf?"
// from an in-memory snapshot of users, roles, targets and proxy credentials, so that the hot path never touches
// the database. The snapshot is rebuilt after every management change and on a timer.
package gate

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/proxy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// snapshot is an immutable view of what authorization needs. It is replaced whole, never modified (but for the
// credentials' unflushed last-use times).
type snapshot struct {
	built       time.Time
	credentials map[string]*credential // keyed by the keyed hash of the secret
	credByID    map[string]*credential
	users       map[string]*user
	targets     map[string]*target
	hosts       *policy.HostIndex
}

type credential struct {
	id, name, userID, targetID string
	notBefore, notAfter        time.Time
	sources                    []netip.Prefix
	enabled                    bool
	// lastUsed is the last use (Unix nanoseconds) not yet flushed to the store, 0 when there is none: the
	// request path sets it without a lock and only the first use after a flush queues the credential.
	lastUsed atomic.Int64
}

type user struct {
	id, name  string
	enabled   bool
	roles     map[string]bool
	roleNames []string // for channel policies, which name roles
}

type target struct {
	id, name string
	disabled bool
	roles    []string
	rules    *policy.Rules
	// forward is what the proxy needs; anonymous is the same without the credential, for endpoints that admit
	// unauthenticated requests (which must inject nothing).
	forward, anonymous *proxy.Target
}

// build loads everything from the store and compiles it.
func build(ctx context.Context, st *store.Store) (*snapshot, error) {
	targets, err := st.AllTargets(ctx)
	if err != nil {
		return nil, err
	}
	creds, err := st.PolicyCredentials(ctx)
	if err != nil {
		return nil, err
	}
	users, err := st.PolicyUsers(ctx)
	if err != nil {
		return nil, err
	}
	roleNames, err := st.RoleNames(ctx)
	if err != nil {
		return nil, err
	}
	s := &snapshot{
		built:       time.Now(),
		credentials: make(map[string]*credential, len(creds)),
		credByID:    make(map[string]*credential, len(creds)),
		users:       make(map[string]*user, len(users)),
		targets:     make(map[string]*target, len(targets)),
	}
	for _, u := range users {
		entry := &user{id: u.ID, name: u.Username, enabled: u.Enabled, roles: make(map[string]bool, len(u.RoleIDs))}
		for _, r := range u.RoleIDs {
			entry.roles[r] = true
			entry.roleNames = append(entry.roleNames, roleNames[r])
		}
		s.users[u.ID] = entry
	}
	hostsByTarget := make(map[string][]policy.HostPort, len(targets))
	for _, t := range targets {
		rules, err := policy.CompileRules(t.AuthorizedEndpoints, t.UnauthorizedEndpoints)
		if err != nil {
			// A target that no longer compiles (say, after a rule change in a newer version) denies everything
			// rather than failing the whole snapshot.
			rules = &policy.Rules{}
		}
		entry := &target{id: t.ID, name: t.Name, disabled: t.Disabled, rules: rules, forward: proxyTarget(t)}
		anon := *entry.forward
		anon.Credential = proxy.TargetCredential{}
		entry.anonymous = &anon
		for _, r := range t.Roles {
			entry.roles = append(entry.roles, r.ID)
		}
		s.targets[t.ID] = entry
		hostsByTarget[t.ID] = rules.Hosts()
	}
	s.hosts = policy.NewHostIndex(hostsByTarget)
	for _, c := range creds {
		prefixes, errs := policy.ValidateCIDRList(c.SourceAddress)
		if len(errs) > 0 {
			// Stored addresses were validated on write; one that no longer parses must not widen access.
			prefixes = []netip.Prefix{}
			c.Enabled = false
		}
		entry := &credential{id: c.ID, name: c.Name, userID: c.UserID, targetID: c.TargetID, notBefore: c.NotBefore,
			notAfter: c.NotAfter, sources: prefixes, enabled: c.Enabled}
		s.credentials[c.SecretIndex] = entry
		s.credByID[c.ID] = entry
	}
	return s, nil
}

func proxyTarget(t *model.Target) *proxy.Target {
	c := t.Credential
	return &proxy.Target{
		ID: t.ID, Name: t.Name, Version: t.Version, TrustAnchorsPEM: t.TLSTrustAnchors,
		InsecureSkipVerify: t.TLSInsecureSkipVerify, AuditEnabled: t.AuditEnabled,
		Credential: proxy.TargetCredential{
			Type: proxy.CredentialType(c.Type), Token: c.BearerToken, Username: c.BasicAuthUsername,
			Password: c.BasicAuthPassword, HeaderName: c.HeaderName, HeaderValue: c.HeaderValue,
			CertificatePEM: c.Certificate, PrivateKeyPEM: c.PrivateKey,
		},
	}
}

// holdsRole reports whether the user holds at least one role of the target.
func (s *snapshot) holdsRole(u *user, t *target) bool {
	for _, r := range t.roles {
		if u.roles[r] {
			return true
		}
	}
	return false
}

func (s *snapshot) String() string {
	return fmt.Sprintf("snapshot{targets:%d credentials:%d users:%d}", len(s.targets), len(s.credentials), len(s.users))
}
