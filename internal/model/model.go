// Package model holds Gatehouse's domain objects: the users, roles, API clients, API targets, proxy credentials,
// settings and audit events that both management API dialects, the store and the proxy share. Fields that hold a
// secret in clear are tagged json:"-" so that no encoder can leak them by accident; each API builds its own
// response shape on top.
package model

import (
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/policy"
)

// Ref is a reference to another object by id, with its name filled in on reads.
type Ref struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Meta is the bookkeeping every stored object carries.
type Meta struct {
	Created   time.Time `json:"created"`
	Author    string    `json:"author,omitempty"`
	Updated   time.Time `json:"updated"`
	UpdatedBy string    `json:"updated_by,omitempty"`
}

// User is a local (or, later, directory-sourced) user.
type User struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Email    string `json:"email,omitempty"`
	FullName string `json:"full_name,omitempty"`
	Enabled  bool   `json:"enabled"`
	// Source is the id of the user's source; "local" for the built-in store.
	Source string `json:"source"`
	// PasswordHash is the argon2id PHC string; empty means the user cannot log in with a password.
	PasswordHash string `json:"-"`
	// TokensAfter invalidates the user's access tokens issued before it (set on disable and password change).
	TokensAfter time.Time `json:"-"`
	Meta
}

// Role is a named set of permissions.
type Role struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Comment     string   `json:"comment,omitempty"`
	Permissions []string `json:"permissions"`
	Meta
}

// APIClient is a machine principal that authenticates with the OAuth2 password grant as in the reference.
type APIClient struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Roles []Ref  `json:"roles"`
	// Secret and OAuthClientSecret are held in clear only in memory; the store seals them.
	Secret            string `json:"-"`
	OAuthClientID     string `json:"oauth_client_id"`
	OAuthClientSecret string `json:"-"`
	// TokensAfter invalidates the client's access tokens issued before it (set when the client loses a role).
	TokensAfter time.Time `json:"-"`
	Meta
}

// TargetCredential is the secret Gatehouse injects into requests to a target. Its values never leave the server.
type TargetCredential struct {
	Type              string `json:"type"` // token, basicauth, header or certificate
	BearerToken       string `json:"-"`
	BasicAuthUsername string `json:"basic_auth_username,omitempty"`
	BasicAuthPassword string `json:"-"`
	HeaderName        string `json:"header_name,omitempty"`
	HeaderValue       string `json:"-"`
	Certificate       string `json:"certificate,omitempty"` // PEM; public, so it may be shown
	PrivateKey        string `json:"-"`
}

// Target is an API target: an upstream API with its secret and the endpoints its roles may call.
type Target struct {
	ID                    string            `json:"id"`
	Name                  string            `json:"name"`
	Comment               string            `json:"comment,omitempty"`
	Tags                  []string          `json:"tags"`
	Roles                 []Ref             `json:"roles"`
	AuthorizedEndpoints   []policy.Endpoint `json:"authorized_endpoints"`
	UnauthorizedEndpoints []policy.Endpoint `json:"unauthorized_endpoints"`
	TLSTrustAnchors       string            `json:"tls_trust_anchors,omitempty"`
	TLSInsecureSkipVerify bool              `json:"tls_insecure_skip_verify"`
	Credential            TargetCredential  `json:"target_credential"`
	Disabled              bool              `json:"disabled"`
	AuditEnabled          bool              `json:"audit_enabled"`
	// Version increases on every update, so caches keyed by it (upstream transports) notice changes.
	Version int64 `json:"-"`
	Meta
}

// ProxyCredential is a user's personal, time-boxed credential for one target.
type ProxyCredential struct {
	ID            string    `json:"id"`
	UserID        string    `json:"user_id"`
	Name          string    `json:"name"`
	Comment       string    `json:"comment,omitempty"`
	TargetID      string    `json:"target_id"`
	NotBefore     time.Time `json:"not_before"`
	NotAfter      time.Time `json:"not_after"`
	SourceAddress []string  `json:"source_address"`
	Enabled       bool      `json:"enabled"`
	// Secret is the bearer secret in clear, in memory only; the store seals it and indexes it by keyed hash.
	Secret   string     `json:"-"`
	LastUsed *time.Time `json:"last_used,omitempty"`
	Meta
}

// AuditEvent is one typed record of a management-plane action.
type AuditEvent struct {
	ID            int64          `json:"id"`
	Time          time.Time      `json:"time"`
	Actor         string         `json:"actor"`
	ActorID       string         `json:"actor_id,omitempty"`
	Action        string         `json:"action"`
	ObjectType    string         `json:"object_type"`
	ObjectID      string         `json:"object_id,omitempty"`
	SourceAddress string         `json:"source_address,omitempty"`
	Outcome       string         `json:"outcome"` // success or failure
	Diff          map[string]any `json:"diff,omitempty"`
	// RequestID is the management API request that caused the event, "" for background work.
	RequestID string `json:"request_id,omitempty"`
}
