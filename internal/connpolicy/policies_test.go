package connpolicy

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

func mustTarget(t *testing.T, s string) Target {
	t.Helper()
	x, err := ParseTarget(s)
	if err != nil {
		t.Fatalf("ParseTarget(%q): %v", s, err)
	}
	return x
}

func pfx(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(s))
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

func policy(t *testing.T, key string, clients []netip.Prefix, targets []string, ports ...int) Policy {
	p := Policy{Key: key, Name: key, Clients: clients, Ports: ports}
	for _, s := range targets {
		p.Targets = append(p.Targets, mustTarget(t, s))
	}
	return p
}

func TestAdmit(t *testing.T) {
	p := New(Config{ServiceEnabled: true, Policies: []Policy{
		policy(t, "k8s", pfx("10.0.0.0/8", "2001:db8::/32"), []string{"*.k8s.example.com", "192.0.2.0/24"}, 443, 6443),
		policy(t, "exact", pfx("10.0.0.0/8"), []string{"api.example.com"}),
	}}, nil)
	tests := []struct {
		name, client, host string
		port               int
		want               string // policy key, "" for ErrNoPolicy
	}{
		{"wildcard name and port", "10.1.2.3", "api.k8s.example.com", 6443, "k8s"},
		{"deeper name under the wildcard", "10.1.2.3", "a.b.k8s.example.com", 443, "k8s"},
		{"wildcard does not match its apex", "10.1.2.3", "k8s.example.com", 443, ""},
		{"case and trailing dot ignored", "10.1.2.3", "API.K8S.example.com.", 443, "k8s"},
		{"CIDR target", "10.1.2.3", "192.0.2.7", 443, "k8s"},
		{"port outside the list", "10.1.2.3", "192.0.2.7", 80, ""},
		{"name rule never matches an address", "10.1.2.3", "203.0.113.1", 443, ""},
		{"IPv6 client in the prefix", "2001:db8::5", "api.k8s.example.com", 443, "k8s"},
		{"IPv4-mapped client is unmapped", "::ffff:10.9.9.9", "api.k8s.example.com", 443, "k8s"},
		{"client outside every policy", "192.168.1.1", "api.k8s.example.com", 443, ""},
		{"later policy, any port", "10.0.0.1", "api.example.com", 8443, "exact"},
		{"bracketed IPv6 literal target", "10.0.0.1", "[2001:db8::1]", 443, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := p.Admit(netip.MustParseAddr(tc.client), tc.host, tc.port)
			if tc.want == "" {
				if !errors.Is(err, ErrNoPolicy) {
					t.Fatalf("got %v, %v; want ErrNoPolicy", d, err)
				}
				return
			}
			if err != nil || d.PolicyKey != tc.want {
				t.Fatalf("got %v, %v; want %s", d, err, tc.want)
			}
		})
	}
	if _, err := New(Config{Policies: p.conns}, nil).Admit(netip.MustParseAddr("10.0.0.1"), "api.example.com", 1); !errors.Is(err, ErrServiceDisabled) {
		t.Fatalf("service disabled: %v", err)
	}
}

func TestRateLimitCountsAdmitNotMatch(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	rates := NewRateCounter(func() time.Time { return now })
	pol := policy(t, "r", pfx("0.0.0.0/0"), []string{"*"})
	pol.RateLimit = 2
	p := New(Config{ServiceEnabled: true, Policies: []Policy{pol}}, rates)
	c := netip.MustParseAddr("10.0.0.1")
	for i := range 2 {
		if _, err := p.Admit(c, "a.example", 443); err != nil {
			t.Fatalf("admit %d: %v", i, err)
		}
	}
	for range 5 {
		if _, err := p.Match(c, "a.example", 443); err != nil {
			t.Fatalf("match must not count: %v", err)
		}
	}
	if _, err := p.Admit(c, "a.example", 443); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("third admit in a minute: %v", err)
	}
	// A new snapshot over the same counter keeps the count; a minute later it is free again.
	p2 := New(Config{ServiceEnabled: true, Policies: []Policy{pol}}, rates)
	if _, err := p2.Admit(c, "a.example", 443); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("after a commit: %v", err)
	}
	now = now.Add(time.Minute)
	if _, err := p2.Admit(c, "a.example", 443); err != nil {
		t.Fatalf("a minute later: %v", err)
	}
}

func TestChannel(t *testing.T) {
	ops := &Userlist{AllowAll: false, Except: []string{"alice"}}
	noRoot := &Userlist{AllowAll: true, Except: []string{"root"}}
	d := &Decision{Rules: []Rule{
		{Channels: []string{"http"}, Roles: []string{"ops"}, Userlists: []*Userlist{ops}},
		{Channels: []string{"websocket"}, Userlists: []*Userlist{noRoot}},
		{Channels: []string{"http"}, Roles: []string{"gone"}, Userlists: []*Userlist{nil}},
	}}
	tests := []struct {
		kind, user string
		roles      []string
		want       bool
	}{
		{"http", "alice", []string{"ops"}, true},
		{"http", "bob", []string{"ops"}, false},     // not on the whitelist
		{"http", "alice", []string{"dev"}, false},   // lacks the role
		{"websocket", "bob", nil, true},             // any role, blacklist
		{"websocket", "root", nil, false},           // blacklisted
		{"http", "carol", []string{"gone"}, false},  // a missing list admits nobody
		{"websocket", "alice", []string{"x"}, true}, // roles only narrow when listed
	}
	for _, tc := range tests {
		if got := d.Channel(tc.kind, tc.user, tc.roles); got != tc.want {
			t.Errorf("Channel(%s, %s, %v) = %v, want %v", tc.kind, tc.user, tc.roles, got, tc.want)
		}
	}
}

func TestParseTarget(t *testing.T) {
	for _, s := range []string{"10.0.0.0/8", "10.1.2.3", "::1", "*", "*.example.com", "api.example.com", "API.Example.COM."} {
		if _, err := ParseTarget(s); err != nil {
			t.Errorf("ParseTarget(%q): %v", s, err)
		}
	}
	for _, s := range []string{"10.0.0.1/8", "", "a..b", "-a.example", "*.*", "exa mple.com", "a_b.example"} {
		if _, err := ParseTarget(s); err == nil {
			t.Errorf("ParseTarget(%q) accepted", s)
		}
	}
	if _, err := ParseAddressTarget("example.com"); err == nil {
		t.Error("ParseAddressTarget accepted a name")
	}
	if _, err := ParseClient("10.0.0.1/8"); err == nil {
		t.Error("ParseClient accepted host bits")
	}
}
