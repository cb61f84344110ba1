package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"time"
)

// The extender endpoint is the gatehouse endpoint's own process reached through an extender: `gatehouse extender`
// runs on loopback as its own process (it dials out to the gateway's API listener, as in a remote segment), and a
// second target names the same origin by extenderHost with nat_target_host extender:bench/<origin address>, so
// every upstream connection of that target is a yamux stream through the agent. Both processes are measured.

// extenderHost is the name the extender's target gives the origin: the client's authority and the TLS name the
// gateway verifies, while the agent dials the origin's address.
const extenderHost = "origin.extender.bench"

func startExtender(ctx context.Context, cl *cleanups, dir, bin string, g *gatehouseProc, gh *endpoint, originAddr string, originCA []byte) (*endpoint, error) {
	var ext struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	if err := g.call("POST", "/api-proxy/api/v1/extenders", map[string]any{"name": "bench", "routing_prefix": "bench"}, 201, &ext); err != nil {
		return nil, err
	}
	c, err := startChild(cl, "extender", filepath.Join(dir, "extender.log"), []string{"GATEHOUSE_EXTENDER_TOKEN=" + ext.Token},
		bin, "extender", "--gateway", "https://"+g.apiAddr, "--ca", filepath.Join(g.dataDir, "ca", "root.crt"), "--allow", originAddr)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st struct {
			Status struct {
				Connected bool `json:"connected"`
			} `json:"status"`
		}
		if err := g.call("GET", "/api-proxy/api/v1/extenders/"+ext.ID, nil, 200, &st); err != nil {
			return nil, err
		}
		if st.Status.Connected {
			break
		}
		if c.exited() {
			return nil, fmt.Errorf("the agent exited:\n%s", c.tail())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("the agent did not connect:\n%s", c.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, port, err := net.SplitHostPort(originAddr)
	if err != nil {
		return nil, err
	}
	host := net.JoinHostPort(extenderHost, port)
	var id struct {
		ID string `json:"id"`
	}
	if err := g.call("POST", "/api-proxy/api/v1/api-targets", map[string]any{
		"name": "origin-via-extender", "roles": []map[string]string{{"id": g.roleID}}, "audit_enabled": true,
		"tls_trust_anchors": string(originCA),
		"authorized_endpoints": []map[string]any{
			{"host": host, "protocols": []string{"https"}, "methods": []string{"GET", "POST"}, "paths": []string{"/small", "/blob", "/upload"},
				"nat_target_host": "extender:bench/" + originAddr},
		},
		"target_credential": map[string]any{"type": "token", "bearer_token": targetToken},
	}, 201, &id); err != nil {
		return nil, err
	}
	secret, err := g.credential(g.userID, id.ID, "bench-extender")
	if err != nil {
		return nil, err
	}
	return &endpoint{Name: "gatehouse-extender", proxyAddr: g.proxyAddr, roots: gh.roots, secret: secret,
		pid: gh.pid, extraPIDs: []int{c.cmd.Process.Pid}, host: host}, nil
}
