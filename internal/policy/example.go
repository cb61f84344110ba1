package policy

import (
	"slices"
	"strings"
)

// Example is a request a target's rules allow, for showing users a command that works.
type Example struct {
	Method string
	URL    string // scheme://host[:port]/path
}

// ExampleRequest finds a request the rules allow, preferring GET and https: for each authorized endpoint with a
// concrete host it turns each path glob into a concrete path ("**" dropped, "*" as "example") and keeps the first
// candidate that Match allows, so an unauthorized endpoint that covers it is respected. ok is false when no
// endpoint yields one (wildcard hosts only, or every candidate denied).
func ExampleRequest(r *Rules) (ex Example, ok bool) {
	if r == nil {
		return Example{}, false
	}
	for i := range r.authorized {
		c := &r.authorized[i]
		if strings.HasPrefix(c.host.Host, "*") {
			continue // a wildcard names no host to show
		}
		schemes := []string{"https", "http"}
		methods := []string{"GET"}
		if !c.anyMethod && !slices.Contains(c.methods, "GET") {
			methods = c.methods
		}
		for _, scheme := range schemes {
			if scheme == "https" && !c.https || scheme == "http" && !c.http {
				continue
			}
			hp := c.host
			if hp.Port == DefaultPort(scheme) {
				hp.Port = 0 // the URL needs no port then
			}
			host := hp.String()
			for _, g := range c.ep.Paths {
				path := concretePath(g)
				for _, m := range methods {
					if r.Match(Request{Scheme: scheme, Host: host, Method: m, Path: path}).Allowed {
						return Example{Method: m, URL: scheme + "://" + host + path}, true
					}
				}
			}
		}
	}
	return Example{}, false
}

// concretePath turns a path glob into one path it matches (or, for a pattern that is not valid, a path Match
// refuses anyway).
func concretePath(glob string) string {
	if glob == "**" || glob == "*" {
		glob = "/" + glob
	}
	var out []string
	for _, seg := range strings.Split(strings.TrimPrefix(glob, "/"), "/") {
		switch seg {
		case "**":
			continue
		case "*":
			out = append(out, "example")
		default:
			out = append(out, seg)
		}
	}
	return "/" + strings.Join(out, "/")
}
