package proxy

import (
	"errors"
	"strings"
)

// strictNormalizePath is the default Server.NormalizePath. It is deliberately
// narrow: it only canonicalizes percent-encoding (unreserved characters
// decoded, other escapes in upper case) and refuses everything that different
// servers could read differently (dot segments, empty segments, encoded
// slashes and backslashes, control characters), so the path the policy
// matches is the path the target sees. The policy package's normalizer
// replaces it when wired.
func strictNormalizePath(escaped string) (string, error) {
	if !strings.HasPrefix(escaped, "/") {
		return "", errors.New("normalize path: must start with /")
	}
	var b strings.Builder
	b.Grow(len(escaped))
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		switch {
		case c == '%':
			if i+2 >= len(escaped) || !isHex(escaped[i+1]) || !isHex(escaped[i+2]) {
				return "", errors.New("normalize path: invalid percent-encoding")
			}
			d := unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			i += 2
			switch {
			case isUnreserved(d):
				b.WriteByte(d)
			case d == '/' || d == '\\' || d < 0x20 || d == 0x7f:
				return "", errors.New("normalize path: forbidden encoded character")
			default:
				const hexDigits = "0123456789ABCDEF"
				b.WriteByte('%')
				b.WriteByte(hexDigits[d>>4])
				b.WriteByte(hexDigits[d&0xf])
			}
		case c == '/' || isUnreserved(c) || strings.IndexByte("!$&'()*+,;=:@", c) >= 0:
			b.WriteByte(c)
		default:
			return "", errors.New("normalize path: forbidden character")
		}
	}
	out := b.String()
	segments := strings.Split(out[1:], "/")
	for i, seg := range segments {
		if seg == "." || seg == ".." {
			return "", errors.New("normalize path: dot segment")
		}
		if seg == "" && i != len(segments)-1 {
			return "", errors.New("normalize path: empty segment")
		}
	}
	return out, nil
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
