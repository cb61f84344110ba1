package configapi

import (
	"encoding/json"
	"net/http"
	"reflect"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
)

// mayChange applies the delegation rule (auth.CheckHolds) to configuration objects: the certificate-login CA in
// aaa/settings can mint a login for any user, so only a caller holding every permission may change it.
func mayChange(c *caller, kindName string) error {
	if kindName != kindAAASettings.name {
		return nil
	}
	if err := auth.CheckHoldsAll(c.Principal.Permissions); err != nil {
		return &Error{Status: http.StatusForbidden, Code: CodeUnauthorized, Message: err.Error(), Field: "x509.authentication_ca", Err: err}
	}
	return nil
}

// A connection policy can send requests, and the target secret injected into them, somewhere else than the
// target: server_address routes them (fix, nat, inband), and transport_security client-only speaks plain HTTP to
// the target. Whoever sets that decides where every covered target's secret goes, which is more than
// config-manage may hand out, so creating such a policy or changing what it steers (its route, plain HTTP, its
// networks, switching it on) needs every permission. Narrowing it back (route original) does not.

// steerField names the field of next, a connection policy replacing prev (nil for a new one), whose change steers
// requests elsewhere, or "" if none does.
func steerField(prev, next *connection) string {
	routed := func(n *connection) bool {
		return n.ServerAddress.Selection != "" && n.ServerAddress.Selection != "original"
	}
	plain := func(n *connection) bool { return n.TransportSecurity.Selection == "client-only" }
	if !routed(next) && !plain(next) {
		return ""
	}
	switch {
	case routed(next) && (prev == nil || !reflect.DeepEqual(prev.ServerAddress, next.ServerAddress)):
		return "server_address"
	case plain(next) && (prev == nil || !plain(prev)):
		return "transport_security.selection"
	case !reflect.DeepEqual(prev.Network, next.Network):
		return "network"
	case next.Active && !prev.Active:
		return "active"
	}
	return ""
}

// mayChangeObject is mayChange for one staged object: next (nil for a delete) replacing the committed prev (nil
// if new).
func mayChangeObject(c *caller, k *kind, prev json.RawMessage, next body) error {
	if err := mayChange(c, k.name); err != nil {
		return err
	}
	conn, ok := next.(*connection)
	if k != kindConnections || !ok {
		return nil
	}
	var old *connection
	if prev != nil {
		if b, err := decodeBody(k, prev); err == nil {
			old, _ = b.(*connection)
		}
	}
	field := steerField(old, conn)
	if field == "" {
		return nil
	}
	if err := auth.CheckHoldsAll(c.Principal.Permissions); err != nil {
		return &Error{Status: http.StatusForbidden, Code: CodeUnauthorized, Field: field, Err: err,
			Message: field + " decides where requests, and the target secrets injected into them, are sent: changing it needs every permission; " + err.Error()}
	}
	return nil
}
