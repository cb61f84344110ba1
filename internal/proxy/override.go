package proxy

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
)

// Rails (Rack::MethodOverride), Laravel and Symfony also take the method from a "_method" field of a POST body:
// form-encoded, multipart, or for Laravel JSON. An endpoint allowed for POST would then run a DELETE. Such a body
// is refused in flight: the scanner below reads the body as the target will parse it (percent-escapes and JSON
// \u escapes decoded) and fails the read that would deliver a complete "_method" field name, so the target only
// ever holds a body cut short, which no server dispatches (they read a Content-Length body whole before the
// framework parses it). A name that merely ends in "_method" (payment_method) is not a field of that name.

// errMethodOverrideBody is the read error that cuts the body off.
var errMethodOverrideBody = errors.New("method override field in the request body")

// scansForOverride reports whether a request's body is one of those frameworks read _method from.
func scansForOverride(r *http.Request) bool {
	if r.Method != http.MethodPost {
		return false // the frameworks override POST only
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return true // Rack reads a POST without a type as a form
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return true // unreadable type: the target may guess; scan rather than trust
	}
	return mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data" || strings.Contains(mt, "json")
}

// overrideScanner passes a body through unless it names a _method field.
type overrideScanner struct {
	rc  io.ReadCloser
	hit *atomic.Bool // set when the field was found, so the error is answered as the client's fault

	state    uint8 // escape decoding: see feed
	acc      uint16
	digits   uint8
	match    int  // bytes of "_method" matched
	named    bool // "_method" matched; the next character decides
	boundary bool // the last decoded character can precede a field name
}

func newOverrideScanner(rc io.ReadCloser, hit *atomic.Bool) *overrideScanner {
	return &overrideScanner{rc: rc, hit: hit, boundary: true}
}

func (s *overrideScanner) Read(p []byte) (int, error) {
	if s.hit.Load() {
		return 0, errMethodOverrideBody
	}
	n, err := s.rc.Read(p)
	for _, c := range p[:n] {
		if s.feed(c) {
			s.hit.Store(true)
			return 0, errMethodOverrideBody
		}
	}
	return n, err
}

func (s *overrideScanner) Close() error { return s.rc.Close() }

const (
	stPlain   = iota
	stPercent // after '%'
	stPercent1
	stBackslash // after '\'
	stUnicode   // after "\u", reading 4 hex digits
)

// feed decodes one body byte and reports whether a _method field name is now complete.
func (s *overrideScanner) feed(c byte) bool {
	switch s.state {
	case stPercent:
		if isHexDigit(c) {
			s.acc, s.state = uint16(unhexDigit(c)), stPercent1
			return false
		}
		s.state = stPlain
		s.reset()
	case stPercent1:
		s.state = stPlain
		if isHexDigit(c) {
			return s.emit(byte(s.acc<<4 | uint16(unhexDigit(c))))
		}
		s.reset()
	case stBackslash:
		s.state = stPlain
		if c == 'u' {
			s.state, s.acc, s.digits = stUnicode, 0, 0
			return false
		}
		s.reset()
	case stUnicode:
		if isHexDigit(c) {
			s.acc, s.digits = s.acc<<4|uint16(unhexDigit(c)), s.digits+1
			if s.digits < 4 {
				return false
			}
			s.state = stPlain
			if s.acc < 0x80 {
				return s.emit(byte(s.acc))
			}
			s.reset()
			return false
		}
		s.state = stPlain
		s.reset()
	}
	switch c {
	case '%':
		s.state = stPercent
		return false
	case '\\':
		s.state = stBackslash
		return false
	case '+':
		c = ' ' // form encoding's space
	}
	return s.emit(c)
}

func (s *overrideScanner) reset() { s.match, s.named, s.boundary = 0, false, false }

// emit matches one decoded character.
func (s *overrideScanner) emit(c byte) bool {
	if s.named {
		s.named = false
		if strings.IndexByte("=\"': \t\r\n[;&", c) >= 0 {
			return true
		}
	}
	const name = "_method"
	if 'A' <= c && c <= 'Z' {
		c += 'a' - 'A'
	}
	switch {
	case s.match > 0 && c == name[s.match]:
		s.match++
		if s.match == len(name) {
			s.match, s.named = 0, true
		}
	case c == '_' && s.boundary:
		s.match = 1
	default:
		s.match = 0
	}
	s.boundary = strings.IndexByte("&;\"'{,=? \t\r\n", c) >= 0
	return false
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhexDigit(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// isMethodOverride reports the headers with which frameworks (Rails, Express method-override, Symfony, Laravel,
// ASP.NET) let a request act as another method: a GET or POST authorized as such would run as a DELETE. They are
// stripped rather than authorized as the method they name, so what the policy checked is what the target runs.
// The name is compared without case.
func isMethodOverride(name string) bool {
	return equalFoldAny(name, "x-http-method-override", "x-http-method", "x-method-override")
}

// queryOverridesMethod reports a query parameter that frameworks read as the request's real method (_method for
// Express method-override with a query getter, Laravel, Symfony; the override header names for others), in any
// case or percent-encoding. Such a request is refused: the query is not part of what the policy matches, so an
// override there would run a method no endpoint authorized.
func queryOverridesMethod(rawQuery string) bool {
	if rawQuery == "" {
		return false
	}
	for _, kv := range strings.FieldsFunc(rawQuery, func(r rune) bool { return r == '&' || r == ';' }) {
		k, _, _ := strings.Cut(kv, "=")
		if u, err := url.QueryUnescape(k); err == nil {
			k = u
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if k == "_method" || isMethodOverride(k) {
			return true
		}
	}
	return false
}

// isPathOverride reports the headers with which IIS URL Rewrite, ASP.NET and Symfony (X-Original-URL,
// X-Rewrite-URL) let a request be routed to another path than its own: the policy matched the request line, so
// the target must route by it.
// The name is compared without case.
func isPathOverride(name string) bool {
	return equalFoldAny(name, "x-original-url", "x-rewrite-url", "x-override-url", "x-original-uri", "x-original-method")
}

// equalFoldAny reports whether s equals one of the names, without case: header names are matched so instead of
// being lower-cased, which copies each name that has a capital.
func equalFoldAny(s string, names ...string) bool {
	for _, n := range names {
		if len(s) == len(n) && strings.EqualFold(s, n) {
			return true
		}
	}
	return false
}
