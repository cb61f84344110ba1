package configapi

import (
	"context"
	"crypto/tls"
	"errors"
	"github.com/gatehouse-dev/gatehouse/internal/connpolicy"
	"net/netip"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// policiesFrom compiles the defaults plus objects (kind, key, body) as if they were committed.
func policiesFrom(t *testing.T, now func() time.Time, objs ...store.ConfigChange) *connpolicy.Policies {
	t.Helper()
	v := buildView(nil)
	for _, o := range objs {
		b, err := decodeBody(kindByName(o.Type), o.Body)
		if err != nil {
			t.Fatalf("%s/%s: %v", o.Type, o.Key, err)
		}
		v.put(kindByName(o.Type), o.Key, mustJSON(b))
	}
	if err := checkReferences(v); err != nil {
		t.Fatal(err)
	}
	s := &Service{rates: connpolicy.NewRateCounter(now)}
	p, err := s.buildPolicies(context.Background(), v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func obj(k *kind, key string, body any) store.ConfigChange {
	return store.ConfigChange{Type: k.name, Key: key, Body: mustJSON(body)}
}

var defaultOff = obj(kindConnections, "-1", map[string]any{"name": "default", "active": false,
	"network": map[string]any{"clients": []string{"0.0.0.0/0"}, "targets": []string{"*"}}})

func TestAdmitNetworks(t *testing.T) {
	p := policiesFrom(t, time.Now, defaultOff,
		obj(kindConnections, "k8s", connBody("k8s", []string{"10.0.0.0/8", "2001:db8::/32"}, []string{"*.k8s.example.com", "192.0.2.0/24"}, []int{443, 6443})),
		obj(kindConnections, "off", map[string]any{"name": "off", "active": false, "network": map[string]any{"clients": []string{"0.0.0.0/0"}, "targets": []string{"*"}}}),
	)
	tests := []struct {
		name   string
		client string
		host   string
		port   int
		want   string // policy name, "" for ErrNoPolicy
	}{
		{"client, wildcard name and port match", "10.1.2.3", "api.k8s.example.com", 6443, "k8s"},
		{"deeper name under the wildcard", "10.1.2.3", "a.b.k8s.example.com", 443, "k8s"},
		{"wildcard does not match its own apex", "10.1.2.3", "k8s.example.com", 443, ""},
		{"name case and trailing dot are ignored", "10.1.2.3", "API.K8S.example.com.", 443, "k8s"},
		{"target CIDR", "10.1.2.3", "192.0.2.7", 443, "k8s"},
		{"target outside CIDR", "10.1.2.3", "198.51.100.1", 443, ""},
		{"IPv6 client", "2001:db8::1", "api.k8s.example.com", 443, "k8s"},
		{"IPv4-mapped client is unmapped", "::ffff:10.9.9.9", "api.k8s.example.com", 443, "k8s"},
		{"client outside", "172.16.0.1", "api.k8s.example.com", 443, ""},
		{"port outside", "10.1.2.3", "api.k8s.example.com", 8443, ""},
		{"name never matches a CIDR rule", "10.1.2.3", "192-0-2-7.example.com", 443, ""},
		{"lookalike suffix", "10.1.2.3", "evilk8s.example.com", 443, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := p.Admit(mustAddr(tt.client), tt.host, tt.port)
			if tt.want == "" {
				if !errors.Is(err, connpolicy.ErrNoPolicy) {
					t.Fatalf("got %v, %v; want ErrNoPolicy", d, err)
				}
				return
			}
			if err != nil || d.PolicyName != tt.want {
				t.Fatalf("got %v, %v; want %s", d, err, tt.want)
			}
		})
	}
}

func TestAdmitOrderAndDefault(t *testing.T) {
	p := policiesFrom(t, time.Now, obj(kindConnections, "narrow", connBody("narrow", []string{"10.0.0.1"}, []string{"*"}, nil)))
	if d, _ := p.Admit(mustAddr("10.0.0.1"), "x.example.com", 443); d.PolicyName != "narrow" {
		t.Fatalf("custom policy must be tried before the default, got %s", d.PolicyName)
	}
	if d, _ := p.Admit(mustAddr("10.0.0.2"), "x.example.com", 443); d.PolicyKey != "-1" {
		t.Fatalf("the default must admit the rest, got %s", d.PolicyKey)
	}
	disabled := policiesFrom(t, time.Now, obj(kindOptions, singletonKey, map[string]any{"service": map[string]any{"enabled": false}}))
	if _, err := disabled.Admit(mustAddr("10.0.0.1"), "x.example.com", 443); !errors.Is(err, connpolicy.ErrServiceDisabled) {
		t.Fatalf("service disabled: %v", err)
	}
}

func TestAdmitRateLimit(t *testing.T) {
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	body := connBody("limited", []string{"0.0.0.0/0"}, []string{"*"}, nil)
	body["rate_limit"] = map[string]any{"enabled": true, "value": 3}
	p := policiesFrom(t, clock.Now, defaultOff, obj(kindConnections, "l", body))
	for i := range 3 {
		if _, err := p.Admit(mustAddr("10.0.0.1"), "a.example.com", 443); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		clock.Advance(10 * time.Second)
	}
	if _, err := p.Admit(mustAddr("10.0.0.2"), "a.example.com", 443); !errors.Is(err, connpolicy.ErrRateLimited) {
		t.Fatalf("fourth connection within a minute: %v", err)
	}
	clock.Advance(31 * time.Second) // the first connection is now a minute old
	if _, err := p.Admit(mustAddr("10.0.0.1"), "a.example.com", 443); err != nil {
		t.Fatalf("after the window moved: %v", err)
	}
}

func TestChannelPolicy(t *testing.T) {
	cp := map[string]any{"name": "restricted", "rules": []any{
		map[string]any{"channels": []string{"http"}, "allowed_for": map[string]any{"gateway_groups": []string{"operators"}}},
		map[string]any{"channels": []string{"http", "websocket"}, "allowed_for": map[string]any{"userlists": []string{"-4"}}},
	}}
	conn := connBody("c", []string{"0.0.0.0/0"}, []string{"*"}, nil)
	conn["policies"] = map[string]any{"channel_policy": "cp", "settings": "sp", "audit_policy": "ap", "authentication_policy": "-1"}
	p := policiesFrom(t, time.Now, defaultOff,
		obj(kindChannelPolicies, "cp", cp),
		obj(kindSettingsPolicies, "sp", map[string]any{"name": "short", "idle_timeout": 60, "session_timeout": 600, "client_tls_min_version": "TLSv1_3", "server_tls_min_version": "TLSv1_2"}),
		obj(kindAuditPolicies, "ap", map[string]any{"name": "quiet", "record": false, "body_limit": 0, "redact_headers": []string{"X-Api-Key"}}),
		obj(kindConnections, "c", conn))
	d, err := p.Admit(mustAddr("10.0.0.1"), "a.example.com", 443)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		kind, user string
		roles      []string
		want       bool
	}{
		{"http", "alice", []string{"operators"}, true},
		{"websocket", "alice", []string{"operators"}, false},
		{"http", "bob", []string{"auditors"}, false},
		{"http", "root", nil, true},
		{"websocket", "root", nil, true},
		{"ssh", "root", nil, false},
	}
	for _, tt := range tests {
		if got := d.Channel(tt.kind, tt.user, tt.roles); got != tt.want {
			t.Errorf("Channel(%s, %s, %v) = %v, want %v", tt.kind, tt.user, tt.roles, got, tt.want)
		}
	}
	if d.IdleTimeout != time.Minute || d.SessionTimeout != 10*time.Minute || d.ClientTLSMinVersion != tls.VersionTLS13 || d.ServerTLSMinVersion != tls.VersionTLS12 {
		t.Errorf("settings policy: %+v", d)
	}
	if d.Record || d.BodyLimit != 0 || len(d.RedactHeaders) != 1 {
		t.Errorf("audit policy: record=%v limit=%d redact=%v", d.Record, d.BodyLimit, d.RedactHeaders)
	}
}

func TestDefaultDecision(t *testing.T) {
	d, err := (&Service{}).Policies().Admit(mustAddr("203.0.113.9"), "anything.example", 8443)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Channel("http", "anyone", nil) || !d.Channel("websocket", "anyone", nil) || !d.Record || d.IdleTimeout != 15*time.Minute {
		t.Fatalf("default decision: %+v", d)
	}
	if _, err := (&Service{}).Policies().Admit(mustAddr("::1"), "2001:db8::1", 443); err != nil {
		t.Fatalf("default must admit IPv6 targets: %v", err)
	}
}

func TestUserlistAdmits(t *testing.T) {
	for _, b := range kindUserlists.defaults {
		l := b.body.(*userlist)
		t.Run(l.Name, func(t *testing.T) {
			want := map[string][2]bool{"all_users": {true, true}, "no_users": {false, false}, "no_root": {true, false}, "root_only": {false, true}}[l.Name]
			if got := [2]bool{l.compile().Admits("alice"), l.compile().Admits("root")}; got != want {
				t.Fatalf("alice, root = %v, want %v", got, want)
			}
		})
	}
}
