package proxy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// The target's secret is injected into every forwarded request, so an origin that reflects request headers (a
// debug endpoint, TRACE, an error page quoting the request) would hand it to the user. The scrubber masks every
// form of it Gatehouse can recognize in response headers, trailers and bodies (streamed, in bounded memory) and in
// what an upgraded WebSocket connection sends to the client. Each occurrence is replaced by as many '*' bytes, so
// Content-Length and WebSocket frame lengths stay right.

// minScrubLen is the shortest form that is scrubbed: masking every occurrence of a two-letter password would wreck
// bodies and protect nothing. The same bound applies to trail redaction.
const minScrubLen = 4

// scrubber masks the forms of one injected credential.
type scrubber struct {
	forms  [][]byte // distinct, at least minScrubLen long, longest first
	anchor []int    // per form, the index of its rarest byte (see byteRank), which the scan looks for
	maxLen int
	// injectName and injectValue are the header the credential is injected as (injectCredential), made once
	// per credential like the forms; nil for a credential that is not a header.
	injectName  string
	injectValue []string
}

// scrubberCache keeps a scrubber per injected credential: the forms are derived once, not per request. A rotated
// credential adds an entry; the few stale ones cost less than deriving forms per request.
type scrubberCache struct{ m sync.Map } // scrubKey -> *scrubber

type scrubKey struct {
	typ                              CredentialType
	token, user, pass, hname, hvalue string
}

// scrubberFor returns the scrubber of the credential injected for c, or nil when nothing is injected into the
// request (no credential, or a TLS client certificate, whose key never travels).
func (sc *scrubberCache) scrubberFor(c TargetCredential) *scrubber {
	var secrets []string
	switch c.Type {
	case CredentialToken:
		secrets = []string{c.Token}
	case CredentialBasicAuth:
		userPass := c.Username + ":" + c.Password
		secrets = []string{c.Password, userPass, base64.StdEncoding.EncodeToString([]byte(userPass)),
			base64.RawStdEncoding.EncodeToString([]byte(userPass)), base64.URLEncoding.EncodeToString([]byte(userPass)),
			base64.RawURLEncoding.EncodeToString([]byte(userPass))}
	case CredentialHeader:
		secrets = []string{c.HeaderValue}
	default:
		return nil
	}
	key := scrubKey{typ: c.Type, token: c.Token, user: c.Username, pass: c.Password, hname: c.HeaderName, hvalue: c.HeaderValue}
	if s, ok := sc.m.Load(key); ok {
		return s.(*scrubber)
	}
	s := newScrubber(secrets)
	if s == nil {
		return nil
	}
	h := http.Header{}
	injectCredential(h, c, nil)
	for k, v := range h {
		s.injectName, s.injectValue = k, v[:len(v):len(v)]
	}
	v, _ := sc.m.LoadOrStore(key, s)
	return v.(*scrubber)
}

// newScrubber derives the forms in which an origin may echo each secret: as sent, URL-encoded (query and path
// style, as a reflecting page puts it in a link), JSON-escaped (Go's, and with "\/" as PHP and others write it) and
// HTML-escaped. Nil if no form is long enough to scrub.
func newScrubber(secrets []string) *scrubber {
	s := &scrubber{}
	add := func(f string) {
		if len(f) >= minScrubLen && !slices.ContainsFunc(s.forms, func(b []byte) bool { return string(b) == f }) {
			s.forms = append(s.forms, []byte(f))
			s.maxLen = max(s.maxLen, len(f))
		}
	}
	for _, sec := range secrets {
		add(sec)
		for _, esc := range []string{url.QueryEscape(sec), url.PathEscape(sec)} {
			add(esc)
			add(lowerHexEscapes(esc)) // %2f as some encoders write it
		}
		if j, err := json.Marshal(sec); err == nil {
			add(string(j[1 : len(j)-1]))
			add(strings.ReplaceAll(string(j[1:len(j)-1]), "/", `\/`))
		}
		add(html.EscapeString(sec))
	}
	if len(s.forms) == 0 {
		return nil
	}
	// Longest first, so "user:pass" is masked whole before "pass" would leave "user:" standing.
	slices.SortStableFunc(s.forms, func(a, b []byte) int { return len(b) - len(a) })
	for _, f := range s.forms {
		a := 0
		for i := range f {
			if byteRank(f[i]) < byteRank(f[a]) {
				a = i
			}
		}
		s.anchor = append(s.anchor, a)
	}
	return s
}

// commonBytes lists the bytes of typical API and web responses, most frequent first. The scan looks for each
// form's rarest byte with IndexByte, which is many times faster than bytes.Index on a first byte that occurs
// everywhere, and checks the whole form only where that byte is found (the "rare byte" heuristic of memchr-based
// searchers).
const commonBytes = " etaoinsrhldcu\"mfpgwyb,.:/v0123456789k-_=xjqz<>{}[]\nABCDEFGHIJKLMNOPQRSTUVWXYZ"

var byteRanks = func() (r [256]int) {
	for i := 0; i < len(commonBytes); i++ {
		r[commonBytes[i]] = len(commonBytes) - i
	}
	return r
}()

func byteRank(c byte) int { return byteRanks[c] }

// lowerHexEscapes writes the hex digits of every %XX escape in lower case.
func lowerHexEscapes(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = lowerHex(b[i+1]), lowerHex(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func lowerHex(c byte) byte {
	if 'A' <= c && c <= 'F' {
		return c + 'a' - 'A'
	}
	return c
}

// mask overwrites every occurrence of every form in b.
func (s *scrubber) mask(b []byte) {
	for k, f := range s.forms {
		a, c := s.anchor[k], f[s.anchor[k]]
		// off is where the next occurrence may start; its anchor byte is at off+a or later.
		for off := 0; off+len(f) <= len(b); {
			j := bytes.IndexByte(b[off+a:len(b)-len(f)+1+a], c)
			if j < 0 {
				break
			}
			i := off + j // the candidate occurrence starts here
			if !bytes.Equal(b[i:i+len(f)], f) {
				off = i + 1
				continue
			}
			for j := i; j < i+len(f); j++ {
				b[j] = '*'
			}
			off = i + len(f)
		}
	}
}

// maskString returns v with every form masked, and v itself (no allocation) when it holds none.
func (s *scrubber) maskString(v string) string {
	for _, f := range s.forms {
		if strings.Contains(v, string(f)) {
			b := []byte(v)
			s.mask(b)
			return string(b)
		}
	}
	return v
}

// header masks the forms in every name and value of h, in place. Names are compared without regard to ASCII case:
// net/http canonicalized them on the way in ("X-Target-Token-9c2a" for a name that held "target-token-9c2a"), so
// the exact forms would miss a secret the origin put in a name, and the client would read it case-folded.
func (s *scrubber) header(h http.Header) {
	for k, vs := range h {
		for i, v := range vs {
			vs[i] = s.maskString(v)
		}
		if m := s.maskName(k); m != k {
			delete(h, k)
			h[m] = append(h[m], vs...)
		}
	}
}

// maskName returns name with every form masked where it occurs in any ASCII case, and name itself when none does.
func (s *scrubber) maskName(name string) string {
	var masked []byte
	for _, f := range s.forms {
		for off := 0; off+len(f) <= len(name); off++ {
			if !asciiEqualFold(name[off:off+len(f)], f) {
				continue
			}
			if masked == nil {
				masked = []byte(name)
			}
			for j := off; j < off+len(f); j++ {
				masked[j] = '*'
			}
			off += len(f) - 1
		}
	}
	if masked == nil {
		return name
	}
	return string(masked)
}

// asciiEqualFold is strings.EqualFold for ASCII only, so a match never spans a different number of bytes.
func asciiEqualFold(a string, b []byte) bool {
	for i := range len(b) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// hold returns how many bytes at the end of b must wait for more input: the longest suffix of b shorter than the
// longest form that is a prefix of some form. Usually 0, so a streamed response is not delayed.
func (s *scrubber) hold(b []byte) int {
	for i := max(0, len(b)-(s.maxLen-1)); i < len(b); i++ {
		tail := b[i:]
		for _, f := range s.forms {
			if len(tail) < len(f) && tail[0] == f[0] && bytes.HasPrefix(f, tail) {
				return len(b) - i
			}
		}
	}
	return 0
}
