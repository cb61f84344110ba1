package policy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/httpauth"
)

// Request is what the policy needs to know about a proxied request.
type Request struct {
	// Scheme is "http" or "https" (case-insensitive); anything else is denied.
	Scheme string
	// Host is the authority as the client sent it, with or without a port.
	Host string
	// Method is the request method. It is compared case-insensitively so that
	// "delete" cannot slip past an unauthorized DELETE rule on a server that
	// folds case; the proxy should still forward it as sent.
	Method string
	// Path is the output of NormalizePath; any other path is denied.
	Path string
}

// Decision is the outcome of matching a Request against Rules.
type Decision struct {
	Allowed bool
	// Endpoint is the first authorized endpoint, in list order, that matched,
	// in normalized form; nil when the request is denied. It is owned by the
	// Rules and must not be modified.
	Endpoint *Endpoint
	// Reason says why, for audit logs and the denial response.
	Reason string
}

// Reasons carried by Decision.
const (
	ReasonAllowed         = "authorized endpoint matches"
	ReasonNoMatch         = "no authorized endpoint matches"
	ReasonUnauthorized    = "unauthorized endpoint matches"
	ReasonBadScheme       = "unsupported scheme"
	ReasonBadHost         = "invalid host"
	ReasonBadMethod       = "invalid method"
	ReasonBadPath         = "invalid path"
	ReasonPathNotCanon    = "path is not normalized"
	ReasonUnauthenticated = "no authorized endpoint allows unauthenticated requests"
)

// Rules are the compiled authorized and unauthorized endpoints of one API
// target. They are immutable and safe for concurrent use. The zero Rules
// deny everything.
type Rules struct {
	authorized   []compiledEndpoint
	unauthorized []compiledEndpoint
}

type compiledEndpoint struct {
	ep        Endpoint // normalized; Decision.Endpoint points here
	host      HostPort
	http      bool
	https     bool
	anyMethod bool
	methods   []string
	paths     []Glob
}

// CompileRules validates, normalizes and compiles a target's endpoints. Any
// invalid endpoint fails the whole set, with a FieldErrors error whose fields
// are prefixed "authorized_endpoints[i]" or "unauthorized_endpoints[i]": a
// rule set with a dropped deny rule would be more permissive than the admin
// wrote.
func CompileRules(authorized, unauthorized []Endpoint) (*Rules, error) {
	var errs FieldErrors
	r := &Rules{
		authorized:   compileList("authorized_endpoints", authorized, false, &errs),
		unauthorized: compileList("unauthorized_endpoints", unauthorized, true, &errs),
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("compile rules: %w", errs)
	}
	return r, nil
}

// compileList compiles one endpoint list; loose lists (the unauthorized endpoints) match paths by their loose keys
// (see looseSegment).
func compileList(field string, eps []Endpoint, loose bool, errs *FieldErrors) []compiledEndpoint {
	out := make([]compiledEndpoint, 0, len(eps))
	for i, e := range eps {
		if fes := ValidateEndpoint(e); len(fes) > 0 {
			for _, fe := range fes {
				*errs = append(*errs, fe.Prefixed(index(field, i)))
			}
			continue
		}
		n := NormalizeEndpoint(e)
		c := compiledEndpoint{ep: n}
		c.host, _ = parseHostPort(n.Host, true) // validated above
		for _, p := range n.Protocols {
			c.http = c.http || p == "http" || p == "*"
			c.https = c.https || p == "https" || p == "*"
		}
		for _, m := range n.Methods {
			if m == "*" {
				c.anyMethod = true
			}
		}
		c.methods = n.Methods
		for _, p := range n.Paths {
			g, _ := CompileGlob(p) // validated above
			if loose {
				g = looseGlob(g)
			}
			c.paths = append(c.paths, g)
		}
		out = append(out, c)
	}
	return out
}

// Match decides whether an authenticated request may pass: it is denied if
// any unauthorized endpoint matches, allowed if an authorized endpoint
// matches, and denied otherwise.
func (r *Rules) Match(req Request) Decision {
	return r.match(req, false)
}

// MatchUnauthenticated is Match for a request that carries no proxy
// credential: only authorized endpoints that allow unauthenticated requests
// can allow it. Without this, the first matching authorized endpoint could
// hide a later one that allows unauthenticated access.
func (r *Rules) MatchUnauthenticated(req Request) Decision {
	return r.match(req, true)
}

func (r *Rules) match(req Request, unauthenticated bool) Decision {
	deny := func(reason string) Decision { return Decision{Reason: reason} }
	if r == nil {
		return deny(ReasonNoMatch)
	}
	scheme := strings.ToLower(req.Scheme)
	if scheme != "http" && scheme != "https" {
		return deny(ReasonBadScheme)
	}
	hp, err := parseHostPort(req.Host, false)
	if err != nil {
		return deny(ReasonBadHost)
	}
	if hp.Port == 0 {
		hp.Port = DefaultPort(scheme)
	}
	if !httpauth.IsToken(req.Method) {
		return deny(ReasonBadMethod)
	}
	method := strings.ToUpper(req.Method)
	// Re-checking here costs one scan of the path and turns a caller that
	// forgot to normalize into a denial instead of a bypass.
	if canon, err := NormalizePath(req.Path); err != nil {
		return deny(ReasonBadPath)
	} else if canon != req.Path {
		return deny(ReasonPathNotCanon)
	}
	var segBuf [16]string // the segments of most paths, without an allocation
	segs := appendSegments(segBuf[:0], req.Path[1:])
	if len(r.unauthorized) > 0 {
		// Deny rules hold against the loosest common origin: matched on what such an origin routes by.
		loose := looseSegments(segs)
		for i := range r.unauthorized {
			if r.unauthorized[i].matches(scheme, hp, method, loose) {
				return deny(ReasonUnauthorized)
			}
		}
	}
	for i := range r.authorized {
		c := &r.authorized[i]
		if unauthenticated && !c.ep.AllowUnauthenticated {
			continue
		}
		if reflectsRequest(method) && !slices.Contains(c.methods, method) {
			// "*" does not cover TRACE and TRACK: they echo the request, injected credential included, back
			// to the client. Only an endpoint that names TRACE passes it (TRACK cannot be named).
			continue
		}
		if c.matches(scheme, hp, method, segs) {
			return Decision{Allowed: true, Endpoint: &c.ep, Reason: ReasonAllowed}
		}
	}
	if unauthenticated {
		return deny(ReasonUnauthenticated)
	}
	return deny(ReasonNoMatch)
}

// appendSegments appends the "/"-separated segments of p to dst, as strings.Split(p, "/") returns them.
func appendSegments(dst []string, p string) []string {
	for {
		seg, rest, found := strings.Cut(p, "/")
		dst = append(dst, seg)
		if !found {
			return dst
		}
		p = rest
	}
}

// matches checks one endpoint against an already canonical request; hp.Port
// is never 0 here and path holds the segments of the normalized path.
func (c *compiledEndpoint) matches(scheme string, hp HostPort, method string, path []string) bool {
	if scheme == "http" && !c.http || scheme == "https" && !c.https {
		return false
	}
	port := c.host.Port
	if port == 0 {
		port = DefaultPort(scheme)
	}
	if port != hp.Port || !hostMatches(c.host.Host, hp.Host) {
		return false
	}
	if !c.anyMethod && !slices.Contains(c.methods, method) {
		return false
	}
	for _, g := range c.paths {
		if g.matchSegments(path) {
			return true
		}
	}
	return false
}

// Hosts returns the distinct host:port pairs that authorized endpoints can
// match, sorted, with each absent port expanded to the default ports of the
// endpoint's protocols. Unauthorized endpoints are left out: they can only
// deny, so they never make a target serve a host. Wildcard hosts appear as
// written ("*.example.com"); NewHostIndex understands them.
func (r *Rules) Hosts() []HostPort {
	if r == nil {
		return nil
	}
	var out []HostPort
	for _, c := range r.authorized {
		if c.host.Port != 0 {
			out = append(out, c.host)
			continue
		}
		if c.http {
			out = append(out, HostPort{Host: c.host.Host, Port: 80})
		}
		if c.https {
			out = append(out, HostPort{Host: c.host.Host, Port: 443})
		}
	}
	slices.SortFunc(out, compareHostPort)
	return slices.Compact(out)
}

func compareHostPort(a, b HostPort) int {
	return cmp.Or(strings.Compare(a.Host, b.Host), cmp.Compare(a.Port, b.Port))
}

// reflectsRequest reports the methods whose answer is the request itself.
func reflectsRequest(method string) bool { return method == "TRACE" || method == "TRACK" }
