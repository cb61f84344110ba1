package auth

import (
	"errors"
	"testing"
	"time"
)

func TestOwnerMayChange(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	stored := CredentialLimits{Enabled: true, NotBefore: t0, NotAfter: t0.Add(24 * time.Hour), SourceAddress: []string{"127.0.0.0/24", "2001:db8::/32"}}
	with := func(f func(*CredentialLimits)) CredentialLimits {
		c := stored
		c.SourceAddress = append([]string(nil), stored.SourceAddress...)
		f(&c)
		return c
	}
	disabled := with(func(c *CredentialLimits) { c.Enabled = false })
	open := with(func(c *CredentialLimits) { c.SourceAddress = nil })
	tests := []struct {
		name          string
		before, after CredentialLimits
		field         string // "" means allowed
	}{
		{"no change", stored, stored, ""},
		{"disable", stored, disabled, ""},
		{"re-enable an admin-disabled credential", disabled, with(func(c *CredentialLimits) {}), "enabled"},
		{"keep disabled", disabled, disabled, ""},
		{"not_before later", stored, with(func(c *CredentialLimits) { c.NotBefore = t0.Add(time.Hour) }), ""},
		{"not_before earlier", stored, with(func(c *CredentialLimits) { c.NotBefore = t0.Add(-time.Second) }), "not_before"},
		{"not_after earlier", stored, with(func(c *CredentialLimits) { c.NotAfter = t0.Add(time.Hour) }), ""},
		{"not_after later", stored, with(func(c *CredentialLimits) { c.NotAfter = t0.Add(25 * time.Hour) }), "not_after"},
		{"drop address limits", stored, open, "source_address"},
		{"empty address list", stored, with(func(c *CredentialLimits) { c.SourceAddress = []string{} }), "source_address"},
		{"widen to everything", stored, with(func(c *CredentialLimits) { c.SourceAddress = []string{"0.0.0.0/0"} }), "source_address[0]"},
		{"widen a prefix", stored, with(func(c *CredentialLimits) { c.SourceAddress = []string{"127.0.0.0/16"} }), "source_address[0]"},
		{"add an outside address", stored, with(func(c *CredentialLimits) { c.SourceAddress = append(c.SourceAddress, "10.0.0.1") }), "source_address[2]"},
		{"IPv4 inside IPv6 prefix family", stored, with(func(c *CredentialLimits) { c.SourceAddress = []string{"::ffff:10.0.0.1/128"} }), "source_address[0]"},
		{"narrow to a subset", stored, with(func(c *CredentialLimits) { c.SourceAddress = []string{"127.0.0.5", "2001:db8:1::/48"} }), ""},
		{"drop one of two prefixes", stored, with(func(c *CredentialLimits) { c.SourceAddress = []string{"127.0.0.0/24"} }), ""},
		{"add limits where none were", open, with(func(c *CredentialLimits) { c.SourceAddress = []string{"192.0.2.0/24"} }), ""},
		{"no limits stay none", open, open, ""},
		{"malformed address", stored, with(func(c *CredentialLimits) { c.SourceAddress = []string{"127.0.0.300"} }), "source_address[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := OwnerMayChange(tt.before, tt.after)
			var fr *FieldRefusal
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.field != "" && !errors.As(err, &fr):
				t.Fatalf("allowed (err %v), want refusal of %s", err, tt.field)
			case tt.field != "" && fr.Field != tt.field:
				t.Fatalf("refused %s (%v), want %s", fr.Field, err, tt.field)
			}
		})
	}
}
