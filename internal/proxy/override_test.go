package proxy

import (
	"io"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
)

// overrideField is the oracle: a _method field name, after form and JSON decoding, between field delimiters.
var overrideField = regexp.MustCompile(`(^|[&;"'{,=? \t\r\n])_method[="': \t\r\n\[;&]`)

// decodeBody decodes a body as the frameworks do, independently of overrideScanner: %XX, \uXXXX (non-ASCII as
// NUL, which is no delimiter) and + as space; anything else as it is.
func decodeBody(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '%' && i+2 < len(s) && isHexDigit(s[i+1]) && isHexDigit(s[i+2]):
			b.WriteByte(unhexDigit(s[i+1])<<4 | unhexDigit(s[i+2]))
			i += 2
		case s[i] == '\\' && i+5 < len(s) && s[i+1] == 'u' && isHexDigit(s[i+2]) && isHexDigit(s[i+3]) && isHexDigit(s[i+4]) && isHexDigit(s[i+5]):
			r := rune(unhexDigit(s[i+2]))<<12 | rune(unhexDigit(s[i+3]))<<8 | rune(unhexDigit(s[i+4]))<<4 | rune(unhexDigit(s[i+5]))
			if r < 0x80 {
				b.WriteByte(byte(r))
			} else {
				b.WriteByte(0)
			}
			i += 5
		case s[i] == '+':
			b.WriteByte(' ')
		default:
			b.WriteByte(s[i])
		}
	}
	return strings.ToLower(b.String())
}

// FuzzOverrideScanner: whenever the decoded body holds a _method field, the scanner cuts the body off before the
// byte that completes it, however the body is split into reads.
func FuzzOverrideScanner(f *testing.F) {
	for _, s := range []string{"_method=DELETE", "a=1&_method=PUT", "%5Fmethod=X", "_%6d%65thod=X", `{"\u005fmethod":"DELETE"}`,
		`{"payment_method":"card"}`, "name=\"_method\"\r\n", "x+_method+=1", "_METHOD[x]=1", "%_method=", "\\_method="} {
		f.Add(s, []byte{1, 3})
	}
	f.Fuzz(func(t *testing.T, body string, sizes []byte) {
		var sz []int
		for _, b := range sizes {
			sz = append(sz, int(b))
		}
		var hit atomic.Bool
		got, err := io.ReadAll(newOverrideScanner(io.NopCloser(&chunkedReader{body: []byte(body), sizes: sz}), &hit))
		want := overrideField.MatchString(decodeBody(body))
		if want && (!hit.Load() || err != errMethodOverrideBody) {
			t.Fatalf("body %q (decoded %q) names _method but the scanner passed it", body, decodeBody(body))
		}
		if hit.Load() && overrideField.MatchString(decodeBody(string(got))) {
			t.Fatalf("the scanner let a whole _method field through: %q", got)
		}
		if !hit.Load() && string(got) != body {
			t.Fatalf("passed body %q, want %q", got, body)
		}
	})
}

// TestStrippedRequestHeaderAnySpelling checks the header filter on names as a header map may hold them (net/http
// canonicalizes, but a map built otherwise need not): the match ignores case and never lets an ordinary header go.
func TestStrippedRequestHeaderAnySpelling(t *testing.T) {
	for name, want := range map[string]bool{
		"Authorization": true, "AUTHORIZATION": true, "proxy-Authorization": true, "Expect": true, "FORWARDED": true,
		"x-real-IP": true, "X-Forwarded-For": true, "x-FORWARDED-host": true, "X-Forwarded-": true,
		"X-Http-Method-Override": true, "x-HTTP-method": true, "X-Method-Override": true, "X-Original-Url": true,
		"x-rewrite-URL": true, "X-Override-Url": true, "X-ORIGINAL-URI": true, "X-Original-Method": true, "X_Api_Key": true,
		"X-Forwarded": false, "X-Forwardedfor": false, "Authorizations": false, "X-Api-Key": false, "Accept": false,
		"X-Http-Methods": false, "Content-Type": false, "X-Real-Ip-Addr": false, "": false,
	} {
		if got := strippedRequestHeader(name); got != want {
			t.Errorf("strippedRequestHeader(%q) = %v, want %v", name, got, want)
		}
	}
}
