package policy

import (
	"fmt"
	"strings"
)

// Glob is a compiled path pattern. Patterns are matched segment by segment
// against paths produced by NormalizePath:
//   - "*" as a whole segment matches exactly one non-empty segment;
//   - "**" as a whole segment matches zero or more segments, at the end
//     ("/api/**" matches "/api", "/api/" and "/api/a/b") or in the middle
//     ("/api/**/status" matches "/api/status" and "/api/a/b/status");
//   - any other segment matches only the identical canonical segment, so the
//     pattern "/a%7Eb" equals "/a~b". Matching is case-sensitive (Rules match
//     unauthorized endpoints on loose keys instead; see looseSegment).
//
// A trailing slash is a segment of its own: "/api/x" does not match "/api/x/"
// and "/api/x/" does not match "/api/x"; write "/api/x/**" to allow both. The
// bare patterns "**" and "*" mean "/**" and "/*".
//
// The zero Glob matches nothing.
type Glob struct {
	pattern string
	segs    []globSeg
}

type segKind uint8

const (
	segLiteral segKind = iota
	segOne             // *
	segAny             // **
)

type globSeg struct {
	kind segKind
	lit  string
}

// CompileGlob parses and canonicalizes a path pattern. Literal segments go
// through the same canonicalization as request paths, and anything
// NormalizePath would refuse is refused here too, as are dot segments, empty
// segments other than a trailing slash, and wildcards inside a segment
// ("/api/v*"), which would need a different matcher than the proxy's.
func CompileGlob(pattern string) (Glob, error) {
	switch pattern {
	case "*", "**":
		pattern = "/" + pattern
	case "":
		return Glob{}, fmt.Errorf("compile glob: empty pattern")
	}
	if pattern[0] != '/' {
		return Glob{}, fmt.Errorf("compile glob %q: must start with / or be ** or *", pattern)
	}
	var segs []globSeg
	rest := pattern[1:]
	for {
		seg, tail, more := strings.Cut(rest, "/")
		switch {
		case seg == "**":
			// "/a/**/**/b" is the same as "/a/**/b"; collapsing keeps
			// matching linear in the number of wildcards.
			if len(segs) == 0 || segs[len(segs)-1].kind != segAny {
				segs = append(segs, globSeg{kind: segAny})
			}
		case seg == "*":
			segs = append(segs, globSeg{kind: segOne})
		case strings.Contains(seg, "*"):
			return Glob{}, fmt.Errorf("compile glob %q: * and ** must be a whole segment", pattern)
		case seg == "" && more:
			return Glob{}, fmt.Errorf("compile glob %q: %s", pattern, reasonEmptySegment)
		default:
			c, err := canonSegment(seg)
			if err != nil {
				return Glob{}, fmt.Errorf("compile glob %q: %w", pattern, err)
			}
			if c == "." || c == ".." {
				return Glob{}, fmt.Errorf("compile glob %q: dot segments are not allowed", pattern)
			}
			segs = append(segs, globSeg{kind: segLiteral, lit: c})
		}
		if !more {
			break
		}
		rest = tail
	}
	g := Glob{segs: segs}
	g.pattern = g.render()
	return g, nil
}

func (g Glob) render() string {
	var b strings.Builder
	for _, s := range g.segs {
		b.WriteByte('/')
		switch s.kind {
		case segOne:
			b.WriteByte('*')
		case segAny:
			b.WriteString("**")
		default:
			b.WriteString(s.lit)
		}
	}
	return b.String()
}

// String returns the canonical pattern, which compiles to an equal Glob.
func (g Glob) String() string { return g.pattern }

// Match reports whether the normalized path matches the pattern. The path must
// come from NormalizePath; a raw path may match when its canonical form would
// not.
func (g Glob) Match(normalizedPath string) bool {
	if len(g.segs) == 0 || normalizedPath == "" || normalizedPath[0] != '/' {
		return false
	}
	return g.matchSegments(strings.Split(normalizedPath[1:], "/"))
}

// matchSegments matches the segments of a normalized path, split after the
// leading slash; Rules splits once for all of its globs.
func (g Glob) matchSegments(path []string) bool {
	if len(g.segs) == 0 {
		return false
	}
	// Classic wildcard matching with a single backtrack point: "**" plays the
	// role of a star over segments and every other pattern segment matches
	// exactly one path segment, so resuming after the latest "**" is enough
	// and the cost stays O(len(pattern) * len(path)).
	p, s := 0, 0
	starP, starS := -1, 0
	for s < len(path) {
		if p < len(g.segs) && g.segs[p].kind == segAny {
			starP, starS = p, s
			p++
			continue
		}
		if p < len(g.segs) && g.segs[p].matches(path[s]) {
			p++
			s++
			continue
		}
		if starP < 0 {
			return false
		}
		starS++
		p, s = starP+1, starS
	}
	for p < len(g.segs) && g.segs[p].kind == segAny {
		p++
	}
	return p == len(g.segs)
}

func (s globSeg) matches(seg string) bool {
	switch s.kind {
	case segOne:
		return seg != ""
	case segLiteral:
		return s.lit == seg
	default:
		return true
	}
}
