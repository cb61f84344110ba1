// Package requestid gives every management API request an id that ties together its access log line, the error
// body its client sees and the audit events it causes, so an operator can go from a user's error to what happened.
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
)

// Header is the request and response header that carries the id.
const Header = "X-Request-Id"

// New mints an id: 16 random bytes in hex, unguessable and unique across nodes without coordination.
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// Sane reports whether an id a client or load balancer sent may be kept: 1 to 128 ASCII letters, digits and
// "-", "_", ".", ":" (UUIDs, trace ids, the ids proxies mint). Anything else, which could forge log lines or carry
// markup into a console, is replaced by a minted id.
func Sane(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// FromHeader returns the incoming id if it is sane, else a new one.
func FromHeader(v string) string {
	if Sane(v) {
		return v
	}
	return New()
}

type key struct{}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context { return context.WithValue(ctx, key{}, id) }

// From returns the id ctx carries, "" if none (background work).
func From(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}
