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
