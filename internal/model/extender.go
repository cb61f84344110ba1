package model

import "time"

// Extender is an agent that runs inside a network segment the gateway cannot route to. It dials out to the gateway
// and carries the gateway's upstream connections into the segment. Endpoints reach it through a NAT target host of
// the form extender:<RoutingPrefix>[/host:port].
type Extender struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	RoutingPrefix string `json:"routing_prefix"`
	Enabled       bool   `json:"enabled"`
	// Authentication is how its agents authenticate: "token" (an enrolment token) or "certificate" (a client
	// certificate from the gateway's extender CA). It is chosen at creation.
	Authentication string `json:"authentication"`
	// Certificate describes the current client certificate of a "certificate" extender; nil otherwise.
	Certificate *ExtenderCertificate `json:"certificate,omitempty"`
	// Status is what the gateway last saw of the agent's connection.
	Status    ExtenderStatus `json:"status"`
	Created   time.Time      `json:"created"`
	Author    string         `json:"author"`
	Updated   time.Time      `json:"updated"`
	UpdatedBy string         `json:"updated_by"`
}

// ExtenderStatus is the run-time state of an extender's connection. Connected is false and the times are zero
// when no agent holds a connection.
type ExtenderStatus struct {
	Connected      bool       `json:"connected"`
	ConnectedSince *time.Time `json:"connected_since,omitempty"`
	Address        string     `json:"address,omitempty"`
	Version        string     `json:"version,omitempty"`
	LastHeartbeat  *time.Time `json:"last_heartbeat,omitempty"`
}

// Extender authentication methods.
const (
	ExtenderAuthToken       = "token"
	ExtenderAuthCertificate = "certificate"
)

// ExtenderCertificate is the public part of an extender's client certificate: the only one its agents may present.
type ExtenderCertificate struct {
	Serial      string    `json:"serial"`
	Fingerprint string    `json:"fingerprint_sha256"`
	NotAfter    time.Time `json:"not_after"`
}
