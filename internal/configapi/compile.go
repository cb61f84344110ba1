package configapi

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/connpolicy"
)

// buildPolicies compiles a configuration view into the evaluator's snapshot. The view has been validated; an
// error here means a body that no longer decodes, which is refused at commit.
func (s *Service) buildPolicies(ctx context.Context, v *configView) (*connpolicy.Policies, error) {
	var opts httpOptions
	if err := json.Unmarshal(v.get(kindOptions, singletonKey), &opts); err != nil {
		return nil, fmt.Errorf("http options: %w", err)
	}
	lists := map[string]*connpolicy.Userlist{}
	for _, key := range v.keys[kindUserlists.name] {
		var l userlist
		if err := json.Unmarshal(v.get(kindUserlists, key), &l); err != nil {
			return nil, fmt.Errorf("user list %s: %w", key, err)
		}
		lists[key] = l.compile()
	}
	var custom, builtins []connpolicy.Policy
	for _, key := range v.keys[kindConnections.name] {
		var c connection
		if err := json.Unmarshal(v.get(kindConnections, key), &c); err != nil {
			return nil, fmt.Errorf("connection %s: %w", key, err)
		}
		if !c.Active {
			continue
		}
		cc, err := s.compileConn(ctx, v, key, &c, lists)
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
	rec, err := compileRecordingRules(v, &opts)
	if err != nil {
		return nil, err
	}
	return connpolicy.New(connpolicy.Config{ServiceEnabled: opts.Service.Enabled, Policies: append(custom, builtins...),
		Retention: rec.retention, QuietDownloads: rec.quietDownloads}, s.rates), nil
}

func (s *Service) compileConn(ctx context.Context, v *configView, key string, c *connection, lists map[string]*connpolicy.Userlist) (connpolicy.Policy, error) {
	cc := connpolicy.Policy{Key: key, Name: c.Name, Ports: slices.Clone(c.Network.Ports)}
	for _, s := range c.Network.Clients {
		pfx, err := connpolicy.ParseClient(s)
		if err != nil {
			return cc, fmt.Errorf("connection %s: %w", key, err)
		}
		cc.Clients = append(cc.Clients, pfx)
	}
	for _, s := range c.Network.Targets {
		t, err := connpolicy.ParseTarget(s)
		if err != nil {
			return cc, fmt.Errorf("connection %s: %w", key, err)
		}
		cc.Targets = append(cc.Targets, t)
	}
	if c.RateLimit.Enabled {
		cc.RateLimit = c.RateLimit.Value
	}
	d := &connpolicy.Decision{PolicyKey: key, PolicyName: c.Name, Index: c.Indexing.Enabled}
	var set settingsPolicy
	var aud auditPolicy
	var ch channelPolicy
	for _, x := range []struct {
		k   *kind
		ref *Ref
		out any
	}{{kindSettingsPolicies, c.Policies.Settings, &set}, {kindAuditPolicies, c.Policies.AuditPolicy, &aud}, {kindChannelPolicies, c.Policies.ChannelPolicy, &ch}} {
		if x.ref == nil {
			return cc, fmt.Errorf("connection %s: missing %s", key, x.k.name)
		}
		if err := unmarshalRef(v, x.k, x.ref, x.out); err != nil {
			return cc, fmt.Errorf("connection %s: %w", key, err)
		}
	}
	d.IdleTimeout = time.Duration(set.IdleTimeout) * time.Second
	d.SessionTimeout = time.Duration(set.SessionTimeout) * time.Second
	d.ClientTLSMinVersion, d.ServerTLSMinVersion = tlsVersion(set.ClientTLSMinVersion), tlsVersion(set.ServerTLSMinVersion)
	d.Record, d.BodyLimit, d.RedactHeaders = aud.Record, int64(aud.BodyLimit), slices.Clone(aud.RedactHeaders)
	for _, r := range ch.Rules {
		cr := connpolicy.Rule{Channels: r.Channels, Roles: r.AllowedFor.GatewayGroups}
		for _, u := range r.AllowedFor.Userlists {
			cr.Userlists = append(cr.Userlists, lists[u.Key]) // nil for a list that is gone: admits nobody
		}
		d.Rules = append(d.Rules, cr)
	}
	for _, ac := range c.AccessControl {
		d.AccessControl = append(d.AccessControl, ac.rule())
	}
	if err := s.compileTransport(ctx, v, c, d); err != nil {
		return cc, fmt.Errorf("connection %s: %w", key, err)
	}
	cc.Decision = d
	return cc, nil
}

// unmarshalRef decodes the object a reference points to.
func unmarshalRef(v *configView, k *kind, ref *Ref, out any) error {
	b := v.get(k, ref.Key)
	if b == nil {
		return fmt.Errorf("%s %s does not exist", k.name, ref.Key)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: %w", k.name, ref.Key, err)
	}
	return nil
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
	p, err := s.buildPolicies(ctx, v)
	if err != nil {
		return fmt.Errorf("reload connection policies: %w", err)
	}
	s.policies.Store(p)
	return nil
}

// Policies returns the current committed snapshot. Before the first Reload it is the built-in defaults.
func (s *Service) Policies() *connpolicy.Policies {
	if p := s.policies.Load(); p != nil {
		return p
	}
	s.init()
	p, err := s.buildPolicies(context.Background(), buildView(nil))
	if err != nil {
		panic("configapi: built-in defaults do not compile: " + err.Error())
	}
	s.policies.CompareAndSwap(nil, p)
	return s.policies.Load()
}
