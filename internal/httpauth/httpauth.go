// Package httpauth holds the two pieces of RFC 9110 syntax that several parts of Gatehouse read: the token (a
// method, an authentication scheme, a header or cookie name) and the credentials of an Authorization-style header
// value. One reading everywhere, so the proxy, the APIs and the trail never disagree about what a value is.
package httpauth

import "strings"

// tchar lists the token characters other than letters and digits (RFC 9110 section 5.6.2).
const tchar = "!#$%&'*+-.^_`|~"

// IsToken reports whether s is a non-empty RFC 9110 token.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(tchar, c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// Credentials returns the credentials of v, an Authorization or Proxy-Authorization value, when its scheme is
// scheme (compared without regard to case, RFC 9110 section 11.1) followed by a space; the credentials have their
// surrounding spaces removed and must not be empty.
func Credentials(v, scheme string) (string, bool) {
	if len(v) <= len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) || v[len(scheme)] != ' ' {
		return "", false
	}
	cred := strings.Trim(v[len(scheme)+1:], " \t")
	return cred, cred != ""
}
