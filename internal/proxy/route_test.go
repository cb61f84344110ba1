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

// FuzzNATTranslate checks that a translated address always lies in the NAT network and keeps the host bits.
func FuzzNATTranslate(f *testing.F) {
	f.Add([]byte{10, 1, 0, 0}, 16, []byte{192, 168, 5, 7})
	f.Add([]byte{127, 0, 0, 0}, 8, []byte{10, 9, 9, 5})
	f.Add([]byte{32, 1, 13, 184, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 29, []byte{42, 0, 0, 1, 0, 2, 0, 3, 0, 0, 0, 0, 0, 0, 0, 9})
	f.Fuzz(func(t *testing.T, netBytes []byte, bits int, addrBytes []byte) {
		na, ok1 := netip.AddrFromSlice(netBytes)
		a, ok2 := netip.AddrFromSlice(addrBytes)
		if !ok1 || !ok2 || bits < 0 || bits > na.BitLen() {
			return
		}
		n := netip.PrefixFrom(na, bits).Masked()
		got, err := natTranslate(n, a)
		if a.BitLen() != na.BitLen() {
			if err == nil {
				t.Fatalf("mixed families translated: %s into %s", a, n)
			}
			return
		}
		if err != nil || !n.Contains(got) {
			t.Fatalf("natTranslate(%s, %s) = %s, %v: not in the network", n, a, got, err)
		}
		// The host bits survive: translating back into a's own network gives a again.
		back, err := natTranslate(netip.PrefixFrom(a, bits).Masked(), got)
		if err != nil || back != a {
			t.Fatalf("host bits lost: %s -> %s -> %s", a, got, back)
		}
	})
}
