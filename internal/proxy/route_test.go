package proxy

import (
	"net/netip"
	"testing"
)

func TestNATTranslate(t *testing.T) {
	tests := []struct{ net, in, want string }{
		{"10.1.0.0/16", "192.168.5.7", "10.1.5.7"},
		{"127.0.0.0/8", "10.9.9.5", "127.9.9.5"},
		{"10.0.0.128/25", "192.168.1.1", "10.0.0.129"},
		{"10.0.0.5/32", "192.168.1.1", "10.0.0.5"},
		{"0.0.0.0/0", "192.168.1.1", "192.168.1.1"},
		{"2001:db8::/32", "2a00:1:2:3::9", "2001:db8:2:3::9"},
		{"10.1.0.0/16", "::ffff:192.168.5.7", "10.1.5.7"},
	}
	for _, tc := range tests {
		got, err := natTranslate(netip.MustParsePrefix(tc.net), netip.MustParseAddr(tc.in).Unmap())
		if err != nil || got.String() != tc.want {
			t.Errorf("natTranslate(%s, %s) = %v, %v; want %s", tc.net, tc.in, got, err, tc.want)
		}
	}
	if _, err := natTranslate(netip.MustParsePrefix("10.0.0.0/8"), netip.MustParseAddr("::1")); err == nil {
		t.Error("mixed families accepted")
	}
}
