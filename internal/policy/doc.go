// Package policy decides whether a proxied request may reach an API target.
//
// It holds the pure, I/O-free core of the data plane: the Endpoint rule type
// and its validation, canonicalization of request paths, path globs, host
// matching, the per-target rule set and an index from host:port to targets,
// and source-address (CIDR) lists for proxy credentials.
//
// Everything here denies by default. Input that cannot be interpreted in
// exactly one way (an encoded slash, a dot segment above the root, an empty
// segment, an unparsable host) is refused rather than guessed, because the
// proxy and the target server must agree on what was authorized. Where targets
// are known to disagree with each other (case, trailing dots and spaces,
// compatibility forms), unauthorized endpoints match what the loosest of them
// routes by, and authorized endpoints the exact path.
package policy
