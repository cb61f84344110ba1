package policy

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Origins do not all route the path they are sent byte for byte. Express (by default), ASP.NET and anything on
// IIS or a Windows file system match case-insensitively; Windows drops trailing dots and spaces from a path
// segment ("admin." and "admin " open "admin") and the "::$DATA" stream suffix; Windows' best-fit conversion and
// Unicode-normalizing frameworks read fullwidth and compatibility forms as their ASCII twins ("ａｄｍｉｎ" is
// "admin"). A deny rule that compared bytes would miss every one of those spellings of the path it denies.
//
// So unauthorized endpoints are matched on the loose key of each segment below, which folds all of that, while
// authorized endpoints keep matching the exact normalized path: a deny rule holds against the loosest common
// origin, an allow rule never grants more than it names. What no key can fold (a separator or dot lookalike, which
// an origin might turn into a real separator) NormalizePath refuses outright.

// looseSegment returns the key a lenient origin routes the canonical segment seg by: percent-decoded, NFKC
// normalized, case folded, without trailing dots and spaces or an NTFS stream suffix ("::$DATA"). It returns seg
// itself, without allocating, when seg is plain lower-case ASCII with no escape and no trailing dot.
func looseSegment(seg string) string {
	if isLooseASCII(seg) {
		return seg
	}
	s := percentDecodeValid(seg)
	if !isASCII(s) {
		s = norm.NFKC.String(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		b.WriteRune(foldRune(r))
	}
	s = b.String()
	for {
		t := strings.TrimRight(s, ". ")
		// NTFS stream names: "admin::$DATA" is the file admin, "admin::$INDEX_ALLOCATION" and
		// "admin:$I30:$INDEX_ALLOCATION" the directory admin.
		if i := strings.Index(t, "::$"); i >= 0 {
			t = t[:i]
		}
		if i := strings.Index(t, ":$i30:$"); i >= 0 {
			t = t[:i]
		}
		if t == s {
			return s
		}
		s = t
	}
}

// isLooseASCII reports whether looseSegment(seg) == seg because nothing in seg folds.
func isLooseASCII(seg string) bool {
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c == '%' || 'A' <= c && c <= 'Z' || c >= 0x80 {
			return false
		}
	}
	return seg == "" || seg[len(seg)-1] != '.' && !strings.Contains(seg, ":$")
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// foldRune maps every rune to one representative of all the runes a case-insensitive origin may take it for:
// those of its simple case-folding orbit (K, k and the Kelvin sign), and what upper- and lower-casing map it to
// (dotless ı upper-cases to I). The representative is lower case.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}
	r = unicode.ToLower(unicode.ToUpper(r))
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	return unicode.ToLower(m) // a function of the orbit, so still one representative; lower case reads better
}

// percentDecodeValid decodes the escapes of a canonical segment, whose escapes are all valid.
func percentDecodeValid(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

// looseSegments returns the loose keys of a normalized path's segments, reusing segs when no segment folds. A
// trailing slash is dropped: Express routes (strict: false by default) and most frameworks treat "/x/" as "/x".
func looseSegments(segs []string) []string {
	if n := len(segs); n > 1 && segs[n-1] == "" {
		segs = segs[:n-1] // "/" itself stays [""]
	}
	var out []string
	for i, s := range segs {
		l := looseSegment(s)
		if out == nil && l != s {
			out = make([]string, len(segs))
			copy(out, segs[:i])
		}
		if out != nil {
			out[i] = l
		}
	}
	if out == nil {
		return segs
	}
	return out
}

// looseGlob turns a compiled deny pattern into one over loose keys, without a trailing slash (see looseSegments).
func looseGlob(g Glob) Glob {
	segs := g.segs
	if n := len(segs); n > 1 && segs[n-1].kind == segLiteral && segs[n-1].lit == "" {
		segs = segs[:n-1] // "/" itself stays
	}
	out := Glob{pattern: g.pattern, segs: make([]globSeg, 0, len(segs))}
	for _, s := range segs {
		if s.kind == segLiteral {
			s.lit = looseSegment(s.lit)
		}
		out.segs = append(out.segs, s)
	}
	return out
}

// lookalikes are runes that Windows best-fit conversion, IDNA-style mapping or a lax decoder turns into a path
// separator or a dot, and that NFKC (checked separately) leaves alone.
var lookalikes = map[rune]bool{
	'\u2215': true, // division slash
	'\u2044': true, // fraction slash
	'\u29F8': true, // big solidus
	'\u29F5': true, // reverse solidus operator
	'\u29F9': true, // big reverse solidus
	'\u2216': true, // set minus
	'\u00A5': true, // yen sign: the backslash of Japanese code pages
	'\u20A9': true, // won sign: the backslash of Korean code pages
	'\u3002': true, // ideographic full stop
	'\u00B7': true, // middle dot
	'\u2027': true, // hyphenation point
	'\u0589': true, // Armenian full stop
	'\u06D4': true, // Arabic full stop
}

// separatorish are the ASCII characters a lookalike must not stand for.
const separatorish = `/\.;%?#:`

// checkRunes refuses a decoded segment that is not valid UTF-8 (overlong forms such as %C0%AE included), that
// holds a C1 control or an invisible format character, or a lookalike of a separator or dot.
func checkRunes(decoded string) error {
	if !utf8.ValidString(decoded) {
		return &PathError{Reason: reasonBadUTF8}
	}
	for _, r := range decoded {
		if r < utf8.RuneSelf {
			continue
		}
		switch {
		case unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError:
			return &PathError{Reason: reasonControl}
		case lookalikes[r]:
			return &PathError{Reason: reasonLookalike}
		}
		// Compatibility forms of a separator or of a listed lookalike (halfwidth ideographic full stop is the
		// ideographic full stop) are lookalikes too.
		for _, n := range norm.NFKC.String(string(r)) {
			if n < utf8.RuneSelf && strings.ContainsRune(separatorish, n) || lookalikes[n] {
				return &PathError{Reason: reasonLookalike}
			}
		}
	}
	return nil
}

// checkSegmentHazards applies the checks of the loose world to one canonical segment: its decoded runes, and a
// segment that some origins would read as empty or a dot segment ("...", ". ", "%20"). The dot segments
// themselves are NormalizePath's to resolve.
func checkSegmentHazards(seg string) error {
	hasEscape := strings.Contains(seg, "%")
	if !hasEscape && !strings.HasSuffix(seg, ".") || seg == "." || seg == ".." {
		return nil
	}
	if hasEscape && hasHighEscape(seg) {
		if err := checkRunes(percentDecodeValid(seg)); err != nil {
			return err
		}
	}
	if hasKeptLetter(seg) {
		return nil // the common case, without computing the key
	}
	if looseSegment(seg) == "" {
		return &PathError{Reason: reasonDotsAndSpaces}
	}
	return nil
}

// hasHighEscape reports an escape of a byte above ASCII in a canonical segment, the only bytes checkRunes checks.
func hasHighEscape(seg string) bool {
	for i := 0; i+2 < len(seg); i++ {
		if seg[i] == '%' && seg[i+1] >= '8' {
			return true
		}
	}
	return false
}

// hasKeptLetter reports a raw (unescaped) ASCII letter or digit in a canonical segment before any ':', which no
// trimming of looseSegment removes.
func hasKeptLetter(seg string) bool {
	for i := 0; i < len(seg) && seg[i] != ':'; i++ {
		switch c := seg[i]; {
		case c == '%':
			i += 2
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9':
			return true
		}
	}
	return false
}
