package model

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Settings are the API proxy's run-time settings, editable through the service API. Durations are whole seconds,
// as the reference product's settings page has them.
type Settings struct {
	IdleSessionTimeout      int      `json:"idle_session_timeout"`
	MaxSessionLifetime      int      `json:"max_session_lifetime"`
	SessionCooldown         int      `json:"session_cooldown"`
	ReauthorizationInterval int      `json:"reauthorization_interval"`
	PublicAddresses         []string `json:"public_addresses"`
	MaxCredentialValidity   int      `json:"max_credential_validity"`
	RecordingBodyLimit      int      `json:"recording_body_limit"`
	RecordingRedactHeaders  []string `json:"recording_redact_headers"`
}

// DefaultSettings are the settings of a new installation.
func DefaultSettings() Settings {
	return Settings{
		IdleSessionTimeout:      900,
		MaxSessionLifetime:      8 * 3600,
		SessionCooldown:         300,
		ReauthorizationInterval: 60,
		PublicAddresses:         []string{},
		MaxCredentialValidity:   30 * 24 * 3600,
		RecordingBodyLimit:      64 * 1024,
		RecordingRedactHeaders:  []string{},
	}
}

// FieldError is a validation failure of one field; Field is the JSON path of the property at fault.
type FieldError struct {
	Field string
	Msg   string
	// Code, if set, is the error code the APIs answer instead of their plain validation code: CodeNotSupported
	// for a value that is valid in the reference but that Gatehouse does not act on, so it refuses to store it.
	Code string
}

// CodeNotSupported is the error code of a setting refused because Gatehouse would not enforce it.
const CodeNotSupported = "NOT_SUPPORTED"

// NotSupported is the FieldError refusing a value of field that Gatehouse does not enforce.
func NotSupported(field, msg string) *FieldError {
	return &FieldError{Field: field, Msg: msg, Code: CodeNotSupported}
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Msg) }

// Validate checks that every setting is within its range.
func (s Settings) Validate() error {
	checks := []struct {
		field     string
		v, lo, hi int
	}{
		{"idle_session_timeout", s.IdleSessionTimeout, 10, 7 * 24 * 3600},
		{"max_session_lifetime", s.MaxSessionLifetime, 60, 30 * 24 * 3600},
		{"session_cooldown", s.SessionCooldown, 0, 7 * 24 * 3600},
		{"reauthorization_interval", s.ReauthorizationInterval, 1, 24 * 3600},
		{"max_credential_validity", s.MaxCredentialValidity, 60, 366 * 24 * 3600},
		{"recording_body_limit", s.RecordingBodyLimit, 0, 64 << 20},
	}
	for _, c := range checks {
		if c.v < c.lo || c.v > c.hi {
			return &FieldError{Field: c.field, Msg: fmt.Sprintf("must be between %d and %d", c.lo, c.hi)}
		}
	}
	for i, a := range s.PublicAddresses {
		host, port, err := net.SplitHostPort(a)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 ||
			strings.ContainsAny(host, " /\\@?#") {
			return &FieldError{Field: fmt.Sprintf("public_addresses[%d]", i), Msg: "must be host:port, e.g. gatehouse.example.com:20080 or [2001:db8::1]:20080"}
		}
	}
	return nil
}

// MaxValidity is MaxCredentialValidity as a duration.
func (s Settings) MaxValidity() time.Duration {
	return time.Duration(s.MaxCredentialValidity) * time.Second
}
