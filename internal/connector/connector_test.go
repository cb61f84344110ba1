package connector

import (
	"net/url"
	"strings"
	"testing"
)

func TestCheckListen(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		remote bool
		ok     bool
	}{
		{"127.0.0.1:8080", false, true},
		{"127.0.0.2:0", false, true},
		{"[::1]:8080", false, true},
		{"localhost:8080", false, true},
		{"0.0.0.0:8080", false, false},
		{":8080", false, false},
		{"[::]:8080", false, false},
		{"192.0.2.10:8080", false, false},
		{"example.com:8080", false, false},
		{"0.0.0.0:8080", true, true},
		{"127.0.0.1", false, false}, // no port
	} {
		err := CheckListen(tc.addr, tc.remote)
		if (err == nil) != tc.ok {
			t.Errorf("CheckListen(%q, %v) = %v, want ok=%v", tc.addr, tc.remote, err, tc.ok)
		}
		if err != nil && tc.addr != "127.0.0.1" && !strings.Contains(err.Error(), "--allow-remote") {
			t.Errorf("CheckListen(%q): error %q does not say how to allow it", tc.addr, err)
		}
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	up, _ := url.Parse("https://api.example.com")
	px, _ := url.Parse("http://127.0.0.1:20080")
	for name, c := range map[string]Connector{
		"no upstream":   {Proxy: px, Secret: "s"},
		"ftp upstream":  {Upstream: &url.URL{Scheme: "ftp", Host: "x"}, Proxy: px, Secret: "s"},
		"no proxy":      {Upstream: up, Secret: "s"},
		"no secret":     {Upstream: up, Proxy: px},
		"no gateway CA": {Upstream: up, Proxy: px, Secret: "s"},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}
