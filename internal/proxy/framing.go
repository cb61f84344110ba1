package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/httpauth"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
)

// Framing checks run on the raw request head, before net/http parses it,
// because net/http quietly "repairs" ambiguous messages (it drops
// Content-Length when Transfer-Encoding is present and merges identical
// duplicate Content-Length headers). A proxy that forwards a repaired message
// disagrees with some origin about where the request ends; that is request
// smuggling, so such messages are refused instead.

var (
	errHeadTooLarge  = errors.New("request head too large")
	errBareLF        = errors.New("line not terminated by CRLF")
	errObsFold       = errors.New("obsolete header line folding")
	errHeaderName    = errors.New("invalid header field name")
	errCLAndTE       = errors.New("both Content-Length and Transfer-Encoding")
	errMultipleCL    = errors.New("multiple Content-Length headers")
	errInvalidCL     = errors.New("invalid Content-Length")
	errUnsupportedTE = errors.New("Transfer-Encoding other than chunked")
	errHost          = errors.New("missing or repeated Host header")
	errRequestLine   = errors.New("malformed request line")
)

// headInfo is what the raw head says about framing and routing.
type headInfo struct {
	// contentLength is -1 when absent.
	contentLength int64
	chunked       bool
	host          string
}

// peekHead returns the request head (up to and including the empty line)
// without consuming it, so http.ReadRequest parses exactly the bytes checked.
// The reader's buffer must be larger than max.
func peekHead(br *bufio.Reader, max int) ([]byte, error) {
	for {
		buf, _ := br.Peek(br.Buffered())
		if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
			return buf[:i+4], nil
		}
		// A head that uses bare LF never ends in CRLF CRLF: refuse it now instead of waiting for a terminator
		// that will not come until the read deadline drops the client without an answer.
		if hasBareLF(buf) {
			return nil, errBareLF
		}
		if len(buf) >= max {
			return nil, errHeadTooLarge
		}
		// Wait for at least one more byte; bufio reads whatever is there.
		if _, err := br.Peek(len(buf) + 1); err != nil {
			return nil, fmt.Errorf("read request head: %w", err)
		}
	}
}

// hasBareLF reports whether b holds a LF not preceded by CR.
func hasBareLF(b []byte) bool {
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			return true
		}
	}
	return false
}

// checkHead validates a raw request head ending in CRLF CRLF and extracts its
// framing. It refuses rather than guesses.
func checkHead(head []byte) (headInfo, error) {
	info := headInfo{contentLength: -1}
	if !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		return info, errRequestLine
	}
	for i, c := range head {
		switch {
		case c == '\n' && (i == 0 || head[i-1] != '\r'):
			return info, errBareLF
		case c == '\r' && (i+1 >= len(head) || head[i+1] != '\n'):
			return info, errBareLF
		case c == 0:
			return info, errRequestLine
		}
	}
	// One copy of the head; the lines, names and values are slices of it. The names are compared without case
	// rather than lower-cased, which would copy every name that has a capital (most do).
	line, rest, more := strings.Cut(string(head[:len(head)-4]), "\r\n")
	if err := checkRequestLine(line); err != nil {
		return info, err
	}
	var cl, te, host string
	var ncl, nte, nhost int
	for more {
		line, rest, more = strings.Cut(rest, "\r\n")
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			return info, errObsFold
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !httpauth.IsToken(name) {
			return info, errHeaderName
		}
		value = strings.Trim(value, " \t")
		switch {
		case strings.EqualFold(name, "content-length"):
			if ncl++; ncl == 1 {
				cl = value
			}
		case strings.EqualFold(name, "transfer-encoding"):
			if nte++; nte == 1 {
				te = value
			}
		case strings.EqualFold(name, "host"):
			if nhost++; nhost == 1 {
				host = value
			}
		}
	}
	if ncl > 0 && nte > 0 {
		return info, errCLAndTE
	}
	if ncl > 1 {
		return info, errMultipleCL
	}
	if ncl == 1 {
		n, err := parseContentLength(cl)
		if err != nil {
			return info, err
		}
		info.contentLength = n
	}
	if nte > 0 {
		if nte != 1 || !strings.EqualFold(te, "chunked") {
			return info, errUnsupportedTE
		}
		info.chunked = true
	}
	// A missing Host is allowed here only for CONNECT (older clients omit
	// it there); requests are refused later when their authority is empty.
	if nhost > 1 || nhost == 1 && host == "" {
		return info, errHost
	}
	info.host = host
	return info, nil
}

func checkRequestLine(line string) error {
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !httpauth.IsToken(method) || target == "" || strings.ContainsAny(target, " \t") {
		return errRequestLine
	}
	if proto != "HTTP/1.1" && proto != "HTTP/1.0" {
		return errRequestLine
	}
	return nil
}

func parseContentLength(s string) (int64, error) {
	if s == "" || len(s) > 18 {
		return 0, errInvalidCL
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, errInvalidCL
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errInvalidCL
	}
	return n, nil
}

// canonicalAuthority returns host:port in lower case with the scheme's
// default port made explicit, so "Example.com" and "example.com:443" compare
// equal for https. It refuses userinfo, empty hosts and bad ports.
func canonicalAuthority(authority, scheme string) (string, error) {
	// The same parser the policy matches with, so the proxy never accepts an authority the rules read otherwise.
	hp, err := policy.ParseAuthority(authority)
	if err != nil {
		return "", fmt.Errorf("invalid authority %q: %w", authority, err)
	}
	if hp.Port == 0 {
		if hp.Port = policy.DefaultPort(scheme); hp.Port == 0 {
			return "", fmt.Errorf("invalid authority %q: no port", authority)
		}
	}
	// An authority already in canonical form, as clients mostly send it, is returned as it is: no copy per request.
	var buf [64]byte
	if c := hp.AppendTo(buf[:0]); string(c) != authority {
		return string(c), nil
	}
	return authority, nil
}

// hostOnly returns the host of an authority without port or brackets.
func hostOnly(authority string) string {
	if h, _, err := net.SplitHostPort(authority); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(authority, "["), "]")
}

// requestTargetPath returns the escaped path of a request target exactly as
// the client sent it: origin-form "/p?q" or absolute-form "http://h/p?q".
func requestTargetPath(requestURI string) (string, error) {
	p := requestURI
	if !strings.HasPrefix(p, "/") {
		scheme, rest, ok := strings.Cut(p, "://")
		if !ok || (scheme != "http" && scheme != "https") {
			return "", fmt.Errorf("unsupported request target %q", requestURI)
		}
		i := strings.IndexAny(rest, "/?")
		if i < 0 {
			return "/", nil
		}
		p = rest[i:]
		if p[0] == '?' {
			p = "/" + p
		}
	}
	if strings.Contains(p, "#") {
		return "", errors.New("fragment in request target")
	}
	p, _, _ = strings.Cut(p, "?")
	return p, nil
}
