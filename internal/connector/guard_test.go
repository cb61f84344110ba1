package connector

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func TestLocalOnly(t *testing.T) {
	for _, tc := range []struct {
		name        string
		host        string
		headers     map[string]string
		allowRemote bool
		ok          bool
	}{
		{"curl", "127.0.0.1:8080", nil, false, true},
		{"ipv6", "[::1]:8080", nil, false, true},
		{"localhost", "localhost:8080", nil, false, true},
		{"typed in the address bar", "127.0.0.1:8080", map[string]string{"Sec-Fetch-Site": "none"}, false, true},
		{"same origin page", "127.0.0.1:8080", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:8080"}, false, true},
		{"dns rebinding", "evil.example:8080", nil, false, false},
		{"rebinding to a loopback-looking name", "127.0.0.1.evil.example:8080", nil, false, false},
		{"cross-site fetch", "127.0.0.1:8080", map[string]string{"Sec-Fetch-Site": "cross-site"}, false, false},
		{"same-site is another port's page", "127.0.0.1:8080", map[string]string{"Sec-Fetch-Site": "same-site"}, false, false},
		{"cross origin without fetch metadata", "127.0.0.1:8080", map[string]string{"Origin": "https://evil.example"}, false, false},
		{"null origin", "127.0.0.1:8080", map[string]string{"Origin": "null"}, false, false},
		{"other loopback port's page", "127.0.0.1:8080", map[string]string{"Origin": "http://127.0.0.1:3000"}, false, false},
		{"remote allowed", "gw-laptop.lan:8080", nil, true, true},
		{"remote allowed, still no cross-site", "gw-laptop.lan:8080", map[string]string{"Sec-Fetch-Site": "cross-site"}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "http://"+tc.host+"/x", nil)
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			err := localOnly(r, tc.allowRemote)
			if (err == nil) != tc.ok {
				t.Errorf("localOnly = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// FuzzLocalOnly checks an accepted request against a separate reading of the rules: without allowRemote the Host
// names localhost or a loopback address, and any Origin is that same host.
func FuzzLocalOnly(f *testing.F) {
	for _, s := range [][3]string{{"127.0.0.1:8080", "", ""}, {"[::1]:1", "same-origin", "http://[::1]:1"}, {"localhost.:9", "none", ""},
		{"evil.example", "", ""}, {"127.0.0.1", "cross-site", "x"}, {"[::ffff:127.0.0.1]:80", "", "http://[::ffff:127.0.0.1]:80"}} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, host, site, origin string) {
		r := &http.Request{Host: host, Header: http.Header{}}
		if site != "" {
			r.Header.Set("Sec-Fetch-Site", site)
		}
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		if localOnly(r, false) != nil {
			return
		}
		h := host
		if i := strings.LastIndex(h, ":"); i >= 0 && !strings.HasSuffix(h, "]") && strings.Count(h, ":") == 1 || strings.HasPrefix(h, "[") && strings.Contains(h, "]:") {
			h = h[:strings.LastIndex(h, ":")]
		}
		h = strings.TrimSuffix(strings.Trim(h, "[]"), ".")
		if a, err := netip.ParseAddr(h); !(strings.EqualFold(h, "localhost") || err == nil && a.Unmap().IsLoopback()) {
			t.Fatalf("accepted Host %q (read as %q)", host, h)
		}
		if site != "" && site != "none" && site != "same-origin" {
			t.Fatalf("accepted Sec-Fetch-Site %q", site)
		}
		if origin != "" && !strings.HasSuffix(strings.ToLower(origin), "//"+strings.ToLower(host)) && !strings.Contains(strings.ToLower(origin), "//"+strings.ToLower(host)+"/") {
			t.Fatalf("accepted Origin %q for Host %q", origin, host)
		}
	})
}
