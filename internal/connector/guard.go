package connector

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// localOnly refuses requests a web page could make the user's browser send to the connector. The listener holds
// the user's credential and asks nothing of its callers, so any site the user visits could otherwise reach the
// target through it: by a cross-site request (CSRF: the browser marks it with Sec-Fetch-Site and Origin), or by
// DNS rebinding (a page on evil.example whose name then resolves to 127.0.0.1: the Host header still says
// evil.example). allowRemote drops the Host check, since remote callers then name the machine however they reach it.
func localOnly(r *http.Request, allowRemote bool) error {
	if !allowRemote && !isLoopbackHost(r.Host) {
		return errors.New("the Host header " + quote(r.Host) + " is not a loopback address; the connector answers only requests to 127.0.0.1, ::1 or localhost (DNS rebinding protection)")
	}
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "none", "same-origin":
	default:
		return errors.New("a " + site + " browser request is refused: a web page may not use your credential through the connector")
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return errors.New("a request from the web origin " + quote(o) + " is refused: a web page may not use your credential through the connector")
		}
	}
	return nil
}

// isLoopbackHost reports whether a Host header names this machine's loopback interface.
func isLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func quote(s string) string {
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}
