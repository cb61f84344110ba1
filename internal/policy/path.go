package policy

import "strings"

// PathError reports why a request path or path pattern was refused. Reason is
// short, lowercase and safe to send to the client in a 400 response.
type PathError struct {
	Reason string
}

// Error implements error with an operation prefix for logs.
func (e *PathError) Error() string { return "normalize path: " + e.Reason }

// Reasons carried by PathError. They are unexported constants rather than
// sentinel errors because callers only show them; tests compare them.
const (
	reasonNotAbsolute    = "path must start with /"
	reasonControl        = "control character in path"
	reasonNonASCII       = "non-ascii byte in path must be percent-encoded"
	reasonBackslash      = "backslash in path"
	reasonEncodedSlash   = "encoded slash in path"
	reasonEncodedBSlash  = "encoded backslash in path"
	reasonParam          = "path parameters (;) are not allowed"
	reasonQuery          = "query or fragment in path"
	reasonBadChar        = "character in path must be percent-encoded"
	reasonBadEscape      = "invalid percent-encoding in path"
	reasonDoubleEncoding = "double percent-encoding in path"
	reasonEmptySegment   = "empty path segment (//)"
	reasonAboveRoot      = "path climbs above the root (..)"
	reasonBadUTF8        = "percent-encoded bytes in path are not valid utf-8"
	reasonLookalike      = "lookalike of a separator or dot in path"
	reasonDotsAndSpaces  = "path segment of only dots and spaces"
)

// NormalizePath returns the canonical escaped form of a request path as it was
// sent on the wire (req.URL.EscapedPath or the path part of RequestURI). The
// proxy must forward exactly the returned string, since that is what the
// policy was checked against.
//
// The canonical form:
//   - percent-encoded unreserved characters (ALPHA DIGIT - . _ ~) are decoded,
//     every other escape is kept with upper-case hex digits;
//   - "." and ".." segments, including encoded ones such as %2e%2E, are
//     resolved as in RFC 3986 section 5.2.4;
//   - an empty path becomes "/" (as for an absolute URI without a path).
//
// It refuses, with a *PathError, anything that servers are known to read in
// different ways, so that no encoding trick can reach a path that the plain
// form could not:
//   - control characters, raw or encoded (%00, %0A, ...);
//   - an encoded slash (%2F) or backslash (%5C), and a raw backslash: some
//     servers decode them into separators and some do not;
//   - ";" path parameters, which some servers strip before routing;
//   - "?" or "#", which mean the caller passed more than the path;
//   - raw bytes outside the RFC 3986 path characters, including non-ASCII:
//     a conforming client percent-encodes them, and raw ones are read as
//     UTF-8 by some servers and Latin-1 by others;
//   - invalid escapes, and double encoding such as %252e, which a server
//     that decodes twice would turn into a dot segment;
//   - an empty segment ("//") anywhere but a trailing slash: some servers
//     collapse "//" and some route it as an empty segment, so no single
//     normalization is right for every target;
//   - a ".." that would climb above the root, which RFC 3986 silently clamps
//     but which only an attacker sends;
//   - percent-encoded bytes that are not valid UTF-8 (overlong %C0%AE is a
//     dot to some decoders), C1 controls and invisible format characters;
//   - lookalikes of a separator or dot: anything NFKC maps to one of
//     / \ . ; % ? # : (fullwidth solidus %EF%BC%8F, one-dot leader) and the
//     slashes, dots and code-page backslashes (yen, won) that best-fit
//     conversion maps there (see lookalikes);
//   - a segment of only dots and spaces ("...", ". ", "%20"), which Windows
//     origins read as empty or as a dot segment.
func NormalizePath(raw string) (string, error) {
	if raw == "" {
		return "/", nil
	}
	if raw[0] != '/' {
		return "", &PathError{Reason: reasonNotAbsolute}
	}
	if isCanonicalPath(raw) {
		return raw, nil
	}
	var out []string
	rest := raw[1:]
	for {
		seg, tail, more := strings.Cut(rest, "/")
		last := !more
		c, err := canonSegment(seg)
		if err != nil {
			return "", err
		}
		switch {
		case c == "" && !last:
			return "", &PathError{Reason: reasonEmptySegment}
		case c == ".":
			if last {
				out = append(out, "")
			}
		case c == "..":
			if len(out) == 0 {
				return "", &PathError{Reason: reasonAboveRoot}
			}
			out = out[:len(out)-1]
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, c)
		}
		if last {
			break
		}
		rest = tail
	}
	return "/" + strings.Join(out, "/"), nil
}

// isCanonicalPath reports whether the absolute path raw is already in the
// form NormalizePath returns, without allocating: the common case for the
// proxy's hot path. A false answer also covers invalid paths; the slow path
// finds the reason.
func isCanonicalPath(raw string) bool {
	for rest := raw[1:]; ; {
		seg, tail, more := strings.Cut(rest, "/")
		if seg == "" && more || seg == "." || seg == ".." {
			return false
		}
		if c, err := canonSegment(seg); err != nil || c != seg {
			return false
		}
		if !more {
			return true
		}
		rest = tail
	}
}

// canonSegment returns the canonical escaped form of one path segment. It
// returns seg itself when it is already canonical, which is the common case.
func canonSegment(seg string) (string, error) {
	canonical := true
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c == '%' || !isRawPathChar(c) {
			canonical = false
			break
		}
	}
	if canonical {
		if err := checkSegmentHazards(seg); err != nil {
			return "", err
		}
		return seg, nil
	}
	var b strings.Builder
	b.Grow(len(seg))
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c == '%' {
			if i+2 >= len(seg) || !isHex(seg[i+1]) || !isHex(seg[i+2]) {
				return "", &PathError{Reason: reasonBadEscape}
			}
			d := unhex(seg[i+1])<<4 | unhex(seg[i+2])
			i += 2
			switch {
			case d < 0x20 || d == 0x7f:
				return "", &PathError{Reason: reasonControl}
			case d == '/':
				return "", &PathError{Reason: reasonEncodedSlash}
			case d == '\\':
				return "", &PathError{Reason: reasonEncodedBSlash}
			case isUnreserved(d):
				b.WriteByte(d)
			default:
				b.WriteByte('%')
				b.WriteByte(upperHex[d>>4])
				b.WriteByte(upperHex[d&0xf])
			}
			continue
		}
		if err := rawCharError(c); err != nil {
			return "", err
		}
		b.WriteByte(c)
	}
	s := b.String()
	// Checked on the output, not the input, so that %25%32%65 (which
	// canonicalizes to %252e) is caught as well as a literal %252e.
	for i := 0; i+4 < len(s); i++ {
		if s[i] == '%' && s[i+1] == '2' && s[i+2] == '5' && isHex(s[i+3]) && isHex(s[i+4]) {
			return "", &PathError{Reason: reasonDoubleEncoding}
		}
	}
	if err := checkSegmentHazards(s); err != nil {
		return "", err
	}
	return s, nil
}

// rawCharError explains why the unescaped byte c may not appear in a path
// segment, or returns nil if it may.
func rawCharError(c byte) error {
	switch {
	case isRawPathChar(c):
		return nil
	case c < 0x20 || c == 0x7f:
		return &PathError{Reason: reasonControl}
	case c >= 0x80:
		return &PathError{Reason: reasonNonASCII}
	case c == '\\':
		return &PathError{Reason: reasonBackslash}
	case c == ';':
		return &PathError{Reason: reasonParam}
	case c == '?' || c == '#':
		return &PathError{Reason: reasonQuery}
	default:
		return &PathError{Reason: reasonBadChar}
	}
}

const upperHex = "0123456789ABCDEF"

// isRawPathChar reports whether c may appear unescaped in a canonical path
// segment: RFC 3986 pchar without ";" (refused as a parameter delimiter).
func isRawPathChar(c byte) bool {
	if isUnreserved(c) {
		return true
	}
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', '=', ':', '@':
		return true
	}
	return false
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}
