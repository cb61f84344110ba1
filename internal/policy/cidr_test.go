package policy

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidateCIDRList(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
		errs []FieldError
	}{
		{name: "empty", in: nil},
		{
			name: "valid",
			in:   []string{"10.0.0.1", " 192.168.0.0/16 ", "2001:db8::1", "2001:db8::/32", "0.0.0.0/0", "::/0"},
			want: []string{"10.0.0.1/32", "192.168.0.0/16", "2001:db8::1/128", "2001:db8::/32", "0.0.0.0/0", "::/0"},
		},
		{
			name: "invalid",
			in:   []string{"10.0.0.1/8", "10.0.0.0/33", "fe80::1%eth0", "::ffff:10.0.0.1", "::ffff:10.0.0.0/104", "host.example.com", "", "10.0.0.1/", "010.0.0.1", "10.0.0.0/08"},
			errs: []FieldError{
				{"[0]", "host bits are set; did you mean 10.0.0.0/8?"},
				{"[1]", "must be an IP address or CIDR prefix"},
				{"[2]", "zones are not allowed"},
				{"[3]", "use the IPv4 form of an IPv4-mapped address"},
				{"[4]", "use the IPv4 form of an IPv4-mapped address"},
				{"[5]", "must be an IP address or CIDR prefix"},
				{"[6]", "must be an IP address or CIDR prefix"},
				{"[7]", "must be an IP address or CIDR prefix"},
				{"[8]", "must be an IP address or CIDR prefix"},
				{"[9]", "must be an IP address or CIDR prefix"},
			},
		},
		{
			name: "mixed",
			in:   []string{"10.1.0.0/16", "nope"},
			want: []string{"10.1.0.0/16"},
			errs: []FieldError{{"[1]", "must be an IP address or CIDR prefix"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := ValidateCIDRList(tt.in)
			var gotStr []string
			for _, p := range got {
				gotStr = append(gotStr, p.String())
			}
			if diff := cmp.Diff(tt.want, gotStr); diff != "" {
				t.Errorf("prefixes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.errs, errs); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAddrAllowed(t *testing.T) {
	prefixes, errs := ValidateCIDRList([]string{"10.0.0.0/8", "192.168.1.7", "2001:db8::/32"})
	if errs != nil {
		t.Fatal(errs)
	}
	tests := []struct {
		addr     string
		prefixes []netip.Prefix
		want     bool
	}{
		{"10.1.2.3", prefixes, true},
		{"11.0.0.1", prefixes, false},
		{"192.168.1.7", prefixes, true},
		{"192.168.1.8", prefixes, false},
		{"::ffff:10.1.2.3", prefixes, true},
		{"::ffff:11.1.2.3", prefixes, false},
		{"2001:db8::5", prefixes, true},
		{"2001:db8::5%eth0", prefixes, true},
		{"2001:db9::5", prefixes, false},
		{"::1", prefixes, false},
		{"10.1.2.3", nil, true},
		{"::1", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if got := AddrAllowed(tt.prefixes, netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Errorf("AddrAllowed(%v, %s) = %v, want %v", tt.prefixes, tt.addr, got, tt.want)
			}
		})
	}
	if AddrAllowed(nil, netip.Addr{}) || AddrAllowed(prefixes, netip.Addr{}) {
		t.Error("invalid address allowed")
	}
}
