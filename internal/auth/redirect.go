package auth

import (
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// RedirectPolicy decides where a login may send the code it issues. Only exact, registered callbacks pass: a
// relative path of this server listed in Paths, or a loopback callback of a native client (RFC 8252 section 7.3:
// http://127.0.0.1:PORT, http://[::1]:PORT or http://localhost:PORT, any port, with a path listed in
// LoopbackPaths). Matching is on the exact bytes, from a small alphabet, so no parser (Go's, a browser's WHATWG
// URL parser, a proxy's) can read an accepted value as another host: tabs and newlines that browsers delete,
// backslashes they read as slashes, percent-encoded hosts, user info, case and dot tricks are all refused rather
// than normalized.
type RedirectPolicy struct {
	// Paths are the relative paths of this server that may receive a code, compared exactly; nil means none.
	Paths []string
	// LoopbackPaths are the paths a loopback callback may use, compared exactly; nil means "/callback", the
	// path of the gatehouse CLI.
	LoopbackPaths []string
}

// ErrRedirectURI is every refusal of RedirectPolicy.Check; the message is safe to show the client.
var ErrRedirectURI = errors.New("redirect_uri must be a registered path on this server or a loopback callback http://127.0.0.1:PORT/callback")

// loopbackHosts are the hosts a native client's callback may name, exactly as written.
var loopbackHosts = []string{"127.0.0.1", "[::1]", "localhost"}

// Check returns nil if raw is an exact registered callback.
func (p RedirectPolicy) Check(raw string) error {
	if raw == "" || len(raw) > 2048 || !plainURIBytes(raw) {
		return ErrRedirectURI
	}
	if strings.HasPrefix(raw, "/") {
		if ValidRedirectPath(raw) && slices.Contains(p.Paths, raw) {
			return nil
		}
		return ErrRedirectURI
	}
	rest, ok := strings.CutPrefix(raw, "http://")
	if !ok {
		return ErrRedirectURI
	}
	host := ""
	for _, h := range loopbackHosts {
		if strings.HasPrefix(rest, h+":") {
			host = h
			break
		}
	}
	if host == "" {
		return ErrRedirectURI
	}
	rest = rest[len(host)+1:]
	slash := strings.IndexByte(rest, '/')
	if slash < 0 || !validPort(rest[:slash]) {
		return ErrRedirectURI
	}
	paths := p.LoopbackPaths
	if paths == nil {
		paths = []string{"/callback"}
	}
	if path := rest[slash:]; !ValidRedirectPath(path) || !slices.Contains(paths, path) {
		return ErrRedirectURI
	}
	// Belt and braces: Go's parser must read the same host back and serialize the value unchanged.
	u, err := url.Parse(raw)
	if err != nil || u.String() != raw || u.Host != host+":"+rest[:slash] || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return ErrRedirectURI
	}
	return nil
}

// ValidRedirectPath reports whether path may be registered as a callback path: absolute, not scheme-relative, no
// dot segments, and only unreserved characters and slashes, so that it means the same to every parser.
func ValidRedirectPath(path string) bool {
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") || len(path) > 512 {
		return false
	}
	for _, seg := range strings.Split(path[1:], "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	for i := 0; i < len(path); i++ {
		c := path[i]
		if !isUnreserved(c) && c != '/' {
			return false
		}
	}
	return true
}

// plainURIBytes reports whether s holds only the bytes an exact callback can contain: unreserved characters and
// ":/[]". Everything else (controls, space, tab, newline, backslash, '%', '@', '?', '#', non-ASCII) is refused.
func plainURIBytes(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isUnreserved(c) && !strings.ContainsRune(":/[]", rune(c)) {
			return false
		}
	}
	return true
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// validPort accepts 1 to 65535 written without a sign or leading zeros.
func validPort(s string) bool {
	if s == "" || len(s) > 5 || s[0] == '0' {
		return false
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535 && strconv.Itoa(n) == s
}
