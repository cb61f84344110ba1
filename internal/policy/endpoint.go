package policy

import (
	"slices"
	"strconv"
	"strings"
)

// Endpoint is one authorized or unauthorized endpoint rule of an API target.
// Its JSON form is the one the APIs and the store use.
type Endpoint struct {
	// Host is host[:port]: a DNS name, a wildcard "*.example.com", an IPv4
	// address or a bracketed IPv6 address. Without a port the rule covers
	// the default port of each of its protocols.
	Host string `json:"host"`
	// Protocols are "http", "https" or "*" (both).
	Protocols []string `json:"protocols"`
	// Methods are HTTP methods or "*" (any method, including extensions).
	Methods []string `json:"methods"`
	// Paths are globs; see Glob.
	Paths []string `json:"paths"`
	// AllowUnauthenticated lets requests without a proxy credential match
	// this endpoint. Meaningful for authorized endpoints only.
	AllowUnauthenticated bool `json:"allow_unauthenticated"`
	// NATTargetHost, if set, is the host[:port] the proxy connects to
	// instead of the requested host. Without a port the request's port is
	// kept. Meaningful for authorized endpoints only.
	NATTargetHost string `json:"nat_target_host,omitempty"`
}

// FieldError names an invalid field of a submitted object and says what is
// wrong with it. Field is a path relative to the object checked, such as
// "host" or "paths[2]"; callers prefix it with the object's own path.
type FieldError struct {
	Field string
	Msg   string
}

// Error implements error as "field: message".
func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

// Prefixed returns e with its field path placed under prefix, as in
// "authorized_endpoints[0]" + "." + "host".
func (e FieldError) Prefixed(prefix string) FieldError {
	if strings.HasPrefix(e.Field, "[") {
		return FieldError{Field: prefix + e.Field, Msg: e.Msg}
	}
	return FieldError{Field: prefix + "." + e.Field, Msg: e.Msg}
}

// FieldErrors is a non-empty list of FieldError used as an error.
type FieldErrors []FieldError

// Error joins the field errors with "; ".
func (es FieldErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// httpMethods is the standard method set an endpoint may name. Extension
// methods are reachable only through "*", so that a typo cannot silently
// create a rule that never matches.
var httpMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true,
	"DELETE": true, "OPTIONS": true, "TRACE": true, "CONNECT": true,
}

// ValidateEndpoint checks every field of e and returns all the problems found,
// or nil if e is valid. Case is not a problem: NormalizeEndpoint fixes it.
func ValidateEndpoint(e Endpoint) []FieldError {
	var errs []FieldError
	add := func(field, msg string) { errs = append(errs, FieldError{Field: field, Msg: msg}) }

	if _, err := parseHostPort(e.Host, true); err != nil {
		add("host", err.Error())
	}
	if len(e.Protocols) == 0 {
		add("protocols", "at least one protocol is required")
	}
	for i, p := range e.Protocols {
		switch strings.ToLower(p) {
		case "http", "https", "*":
		default:
			add(index("protocols", i), `must be "http", "https" or "*"`)
		}
	}
	if len(e.Methods) == 0 {
		add("methods", "at least one method is required")
	}
	for i, m := range e.Methods {
		if u := strings.ToUpper(m); u != "*" && !httpMethods[u] {
			add(index("methods", i), "must be a standard HTTP method or *")
		}
	}
	if len(e.Paths) == 0 {
		add("paths", "at least one path is required (** allows all)")
	}
	for i, p := range e.Paths {
		if _, err := CompileGlob(p); err != nil {
			add(index("paths", i), err.Error())
		}
	}
	if e.NATTargetHost != "" {
		// extender:<prefix>[/host:port] routes through an extender (see extender.go).
		if err := validateNAT(e.NATTargetHost); err != nil {
			add("nat_target_host", err.Error())
		}
	}
	return errs
}

func index(field string, i int) string { return field + "[" + strconv.Itoa(i) + "]" }

// NormalizeEndpoint returns a canonical copy of a valid endpoint: hosts in
// canonical form (lower case, no trailing dot), protocols lower case, methods
// upper case, paths as canonical globs, and duplicates removed with the first
// occurrence kept. Values that do not parse are kept as they are, so callers
// should validate first. The result never shares slices with e.
func NormalizeEndpoint(e Endpoint) Endpoint {
	out := e
	if hp, err := parseHostPort(e.Host, true); err == nil {
		out.Host = hp.String()
	}
	if e.NATTargetHost != "" {
		out.NATTargetHost = normalizeNAT(e.NATTargetHost)
	}
	out.Protocols = mapDedup(e.Protocols, strings.ToLower)
	out.Methods = mapDedup(e.Methods, strings.ToUpper)
	out.Paths = mapDedup(e.Paths, func(p string) string {
		if g, err := CompileGlob(p); err == nil {
			return g.String()
		}
		return p
	})
	return out
}

func mapDedup(in []string, f func(string) string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s = f(s); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
