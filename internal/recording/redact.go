package recording

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/gatehouse-dev/gatehouse/internal/httpauth"
	"github.com/gatehouse-dev/gatehouse/internal/wsframe"
)

// Redacted replaces every redacted value.
const Redacted = "[REDACTED]"

// DefaultRedactedHeaders are always redacted, whatever Redactor.Headers says.
var DefaultRedactedHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key"}

// Redactor removes secrets from an exchange before it is recorded. The zero
// value, and a nil *Redactor, redact DefaultRedactedHeaders only.
//
// Secrets are matched as raw bytes and also in their URL-escaped forms, in
// the URL, every header value, the error text and the captured bodies. Every
// occurrence is found, overlapping ones included, and overlapping or touching
// matches are replaced by a single Redacted, so one secret's match can never
// hide part of another secret. A secret that was re-encoded in some other way
// (JSON escapes, a different base64 alphabet) is not recognised; the caller
// lists such forms explicitly, as BasicAuthForm does for Basic credentials.
//
// Truncation: a body is captured up to limit+Slack() bytes (see
// Writer.CaptureLimit), redacted, and only then cut to limit. A secret that
// starts before the limit is therefore captured whole and replaced, and
// bytes that started at or after the limit are dropped before they can be
// shifted below it by a shorter replacement. So no prefix of a secret
// survives a cut, however the secret lines up with the limit.
type Redactor struct {
	// Headers names extra headers (case-insensitive) whose values are
	// replaced; DefaultRedactedHeaders always apply.
	Headers []string
	// Secrets lists values to remove wherever they appear: the user's proxy
	// secret, the injected credential and its encoded forms. Empty entries
	// are ignored. Set the fields before first use: the search patterns are
	// derived from them once.
	Secrets [][]byte

	once  sync.Once
	pats  [][]byte
	strs  []string // pats as strings, for occursIn
	lower [][]byte // pats in ASCII lower case, for header names
	short int      // the shortest pattern's length
}

// BasicAuthForm returns the base64 form in which user and password travel in
// an HTTP Basic Authorization header, for use in Redactor.Secrets.
func BasicAuthForm(user, password string) []byte {
	return []byte(base64.StdEncoding.EncodeToString([]byte(user + ":" + password)))
}

// patterns returns every form of every secret to look for.
func (r *Redactor) patterns() [][]byte {
	if r == nil {
		return nil
	}
	// Every exchange of a session is redacted with the same patterns; derive them once.
	r.once.Do(func() {
		r.pats = r.derivePatterns()
		for _, p := range r.pats {
			r.strs = append(r.strs, string(p))
			r.lower = append(r.lower, asciiLower(p))
			if r.short == 0 || len(p) < r.short {
				r.short = len(p)
			}
		}
	})
	return r.pats
}

func (r *Redactor) derivePatterns() [][]byte {
	var pats [][]byte
	add := func(p []byte) {
		if len(p) > 0 && !slices.ContainsFunc(pats, func(q []byte) bool { return bytes.Equal(p, q) }) {
			pats = append(pats, p)
		}
	}
	for _, s := range r.Secrets {
		add(s)
		add([]byte(url.QueryEscape(string(s))))
		add([]byte(url.PathEscape(string(s))))
	}
	return pats
}

// Slack returns how many bytes beyond a body limit must be captured so that
// a secret starting before the limit is seen whole.
func (r *Redactor) Slack() int {
	n := 0
	for _, p := range r.patterns() {
		n = max(n, len(p)-1)
	}
	return n
}

type span struct{ start, end int }

// spans returns the merged, sorted ranges of b covered by any pattern.
func spans(b []byte, pats [][]byte) []span {
	var all []span
	for _, p := range pats {
		for i := 0; i <= len(b)-len(p); {
			j := bytes.Index(b[i:], p)
			if j < 0 {
				break
			}
			all = append(all, span{i + j, i + j + len(p)})
			i += j + 1
		}
	}
	if len(all) == 0 {
		return nil
	}
	slices.SortFunc(all, func(a, b span) int { return a.start - b.start })
	merged := all[:1]
	for _, s := range all[1:] {
		last := &merged[len(merged)-1]
		if s.start <= last.end {
			last.end = max(last.end, s.end)
			continue
		}
		merged = append(merged, s)
	}
	return merged
}

// Truncate redacts b and cuts the result to at most limit bytes (no cut if
// limit < 0). It reports whether anything was cut. b must hold at least
// limit+Slack() bytes of the original data when more was available. When
// there is nothing to redact the result is b itself (cut), not a copy.
func (r *Redactor) Truncate(b []byte, limit int) ([]byte, bool) {
	if b == nil {
		return nil, false
	}
	sp := spans(b, r.patterns())
	cut := len(b)
	if limit >= 0 && cut > limit {
		// Cut on offsets of the original, before replacement shifts them: a
		// match that starts before the cut is replaced whole below, and bytes
		// from the cut on cannot move below the limit.
		cut = limit
	}
	if len(sp) == 0 {
		// Nothing to replace: the body is already what is recorded (a copy would double what a recording
		// allocates per exchange). The full slice expression keeps an append to the result from writing into b.
		return b[:cut:cut], cut < len(b)
	}
	out := make([]byte, 0, min(cut+len(Redacted), len(b)+len(Redacted)*len(sp)))
	pos := 0
	for _, s := range sp {
		if s.start >= cut {
			break
		}
		out = append(out, b[pos:s.start]...)
		out = append(out, Redacted...)
		pos = s.end
	}
	if pos < cut {
		out = append(out, b[pos:cut]...)
	}
	truncated := cut < len(b)
	if limit >= 0 && len(out) > limit {
		out, truncated = out[:limit], true
	}
	return out, truncated
}

// Bytes returns b with every secret replaced. It never modifies b.
func (r *Redactor) Bytes(b []byte) []byte {
	out, _ := r.Truncate(b, -1)
	return out
}

// String returns s with every secret replaced.
func (r *Redactor) String(s string) string {
	if s == "" || !r.occursIn(s) {
		return s // the common case, without a copy
	}
	return string(r.Bytes([]byte(s)))
}

func (r *Redactor) named(name string) bool {
	match := func(h string) bool { return strings.EqualFold(h, name) }
	if slices.ContainsFunc(DefaultRedactedHeaders, match) {
		return true
	}
	return r != nil && slices.ContainsFunc(r.Headers, match)
}

// occursIn reports whether any secret's form occurs in s.
func (r *Redactor) occursIn(s string) bool {
	if r == nil {
		return false
	}
	r.patterns()
	for _, p := range r.strs {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// asciiLower returns a copy of b with ASCII letters in lower case; other bytes, and so every length, stay.
func asciiLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// indexLower is the first index of lower (all in lower case) in s compared in ASCII lower case, or -1.
func indexLower(s string, lower []byte) int {
	for i := 0; i+len(lower) <= len(s); i++ {
		j := 0
		for ; j < len(lower); j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lower[j] {
				break
			}
		}
		if j == len(lower) {
			return i
		}
	}
	return -1
}

// name returns a header name with every secret replaced, matched without regard to ASCII case: net/http
// canonicalizes the names it reads, so a secret an origin put in a name arrives case-changed
// ("X-Target-Token-9c2a"), and an exact match would record it.
func (r *Redactor) name(n string) string {
	if r == nil || len(r.patterns()) == 0 || len(n) < r.short || !slices.ContainsFunc(r.lower, func(p []byte) bool {
		return indexLower(n, p) >= 0
	}) {
		return n // the common case, checked without a copy: every exchange's every header name comes here
	}
	sp := spans(asciiLower([]byte(n)), r.lower)
	if sp == nil {
		return n
	}
	var b strings.Builder
	pos := 0
	for _, s := range sp {
		b.WriteString(n[pos:s.start])
		b.WriteString(Redacted)
		pos = s.end
	}
	b.WriteString(n[pos:])
	return b.String()
}

// Header returns a redacted copy of h. Named headers lose their values; for
// Cookie and Set-Cookie the cookie names and Set-Cookie attributes stay, and
// for Authorization and Proxy-Authorization the scheme stays, because they
// help to read a trail and reveal nothing. Then every secret is removed from
// every value and every name.
func (r *Redactor) Header(h http.Header) http.Header {
	out, _ := r.header(h, make([]string, headerValues(h))) // one backing array for every value, as http.Header.Clone does
	return out
}

// headerValues counts the values of h.
func headerValues(h http.Header) int {
	n := 0
	for _, values := range h {
		n += len(values)
	}
	return n
}

// header is Header taking the values' room from all (each value slice capped, so that appending to one never
// writes into another); it returns what is left of all.
func (r *Redactor) header(h http.Header, all []string) (http.Header, []string) {
	if h == nil {
		return nil, all
	}
	out := make(http.Header, len(h))
	for name, values := range h {
		vs := all[:len(values):len(values)]
		all = all[len(values):]
		named := r.named(name)
		for i, v := range values {
			if named {
				v = redactNamed(name, v)
			}
			vs[i] = r.String(v)
		}
		if rn := r.name(name); rn != name {
			out[rn] = append(out[rn], vs...)
			continue
		}
		out[name] = vs
	}
	return out, all
}

// redacts reports whether redaction changes any of h's values (a header it does not change need not be copied).
func (r *Redactor) redacts(h http.Header) bool {
	for name, values := range h {
		if r.name(name) != name {
			return true
		}
		named := r.named(name)
		for _, v := range values {
			if named && redactNamed(name, v) != v || r.String(v) != v {
				return true
			}
		}
	}
	return false
}

func redactNamed(name, v string) string {
	switch {
	case strings.EqualFold(name, "Cookie"):
		parts := strings.Split(v, ";")
		for i, p := range parts {
			parts[i] = redactCookiePair(p)
		}
		return strings.Join(parts, ";")
	case strings.EqualFold(name, "Set-Cookie"):
		pair, attrs, found := strings.Cut(v, ";")
		if !found {
			return redactCookiePair(pair)
		}
		return redactCookiePair(pair) + ";" + attrs
	case strings.EqualFold(name, "Authorization"), strings.EqualFold(name, "Proxy-Authorization"):
		scheme, _, found := strings.Cut(strings.TrimSpace(v), " ")
		if found && httpauth.IsToken(scheme) {
			switch scheme { // the usual ones without a concatenation per request
			case "Bearer":
				return "Bearer " + Redacted
			case "Basic":
				return "Basic " + Redacted
			}
			return scheme + " " + Redacted
		}
		return Redacted
	default:
		return Redacted
	}
}

// redactCookiePair keeps the cookie name (and the surrounding space) of
// "name=value" and replaces the value.
func redactCookiePair(p string) string {
	name, _, found := strings.Cut(p, "=")
	if !found || !httpauth.IsToken(strings.TrimSpace(name)) {
		return " " + Redacted
	}
	return name + "=" + Redacted
}

// Exchange returns a redacted copy of ex with bodies cut to limit bytes (no
// cut if limit < 0). ex is not modified; the copy shares no slices or maps
// with it that redaction could have changed.
func (r *Redactor) Exchange(ex *Exchange, limit int) Exchange {
	out := *ex
	out.URL = r.String(ex.URL)
	out.Error = r.String(ex.Error)
	out.Decision = r.String(ex.Decision)
	// A header with nothing to redact is shared, not copied (a response's usually); the copied ones' values
	// share one backing array: one allocation fewer per exchange.
	reqCopy, respCopy := r.redacts(ex.RequestHeaders), r.redacts(ex.ResponseHeaders)
	n := 0
	if reqCopy {
		n += headerValues(ex.RequestHeaders)
	}
	if respCopy {
		n += headerValues(ex.ResponseHeaders)
	}
	all := make([]string, n)
	if reqCopy {
		out.RequestHeaders, all = r.header(ex.RequestHeaders, all)
	}
	if respCopy {
		out.ResponseHeaders, _ = r.header(ex.ResponseHeaders, all)
	}
	var cut bool
	out.RequestBody, cut = r.Truncate(ex.RequestBody, limit)
	out.RequestBodyTruncated = ex.RequestBodyTruncated || cut
	out.ResponseBody, cut = r.Truncate(ex.ResponseBody, limit)
	out.ResponseBodyTruncated = ex.ResponseBodyTruncated || cut
	if ex.WSMessages != nil {
		out.WSMessages = make([]wsframe.Message, len(ex.WSMessages))
		for i, m := range ex.WSMessages {
			if m.Text != "" {
				var b []byte
				b, cut = r.Truncate([]byte(m.Text), limit)
				m.Text, m.Truncated = string(b), m.Truncated || cut
			}
			out.WSMessages[i] = m
		}
	}
	return out
}
