package store

import (
	"context"
	"fmt"
	"time"
)

// Node is a member of the cluster as it registered itself.
type Node struct {
	ID           string    `json:"id"`
	APIAddress   string    `json:"api_address"`
	ProxyAddress string    `json:"proxy_address"`
	Started      time.Time `json:"started"`
	Heartbeat    time.Time `json:"heartbeat"`
}

// Heartbeat registers a node or refreshes its heartbeat. It reports whether the node was registered already: a
// node that finds itself gone was declared dead by the others, who closed its sessions.
func (s *Store) Heartbeat(ctx context.Context, n Node) (registered bool, err error) {
	res, err := s.conn().exec(ctx, `UPDATE nodes SET api_address = ?, proxy_address = ?, started = ?, heartbeat = ? WHERE id = ?`,
		n.APIAddress, n.ProxyAddress, micros(n.Started), micros(n.Heartbeat), n.ID)
	if err != nil {
		return false, fmt.Errorf("heartbeat: %w", err)
	}
	if k, err := res.RowsAffected(); err == nil && k > 0 {
		return true, nil
	}
	if _, err := s.conn().exec(ctx, `INSERT INTO nodes (id, api_address, proxy_address, started, heartbeat) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET api_address = excluded.api_address, proxy_address = excluded.proxy_address, started = excluded.started, heartbeat = excluded.heartbeat`,
		n.ID, n.APIAddress, n.ProxyAddress, micros(n.Started), micros(n.Heartbeat)); err != nil {
		return false, fmt.Errorf("heartbeat: %w", err)
	}
	return false, nil
}

// Nodes lists the registered nodes by id.
func (s *Store) Nodes(ctx context.Context) ([]Node, error) {
	rows, err := s.conn().query(ctx, `SELECT id, api_address, proxy_address, started, heartbeat FROM nodes ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	defer rows.Close()
	var out []Node
	for rows.Next() {
		var n Node
		var started, hb int64
		if err := rows.Scan(&n.ID, &n.APIAddress, &n.ProxyAddress, &started, &hb); err != nil {
			return nil, mapErr(err)
		}
		n.Started, n.Heartbeat = fromMicros(started), fromMicros(hb)
		out = append(out, n)
	}
	return out, mapErr(rows.Err())
}

// RemoveNode deletes a node's registration, as it stops cleanly.
func (s *Store) RemoveNode(ctx context.Context, id string) error {
	if _, err := s.conn().exec(ctx, `DELETE FROM nodes WHERE id = ?`, id); err != nil {
		return fmt.Errorf("remove node %s: %w", id, err)
	}
	return nil
}

// ReapNodes closes, as DISCONNECTED, the open sessions of every node but self whose last heartbeat is before
// staleBefore, and forgets those nodes. It returns the ids of the sessions it closed.
func (s *Store) ReapNodes(ctx context.Context, self string, staleBefore, at time.Time) ([]string, error) {
	var ids []string
	err := s.inTx(ctx, func(q conn) error {
		rows, err := q.query(ctx, `SELECT id FROM api_sessions WHERE status = ? AND node_id IN (SELECT id FROM nodes WHERE heartbeat < ? AND id <> ?)`,
			SessionConnected, micros(staleBefore), self)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return mapErr(err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if _, err := q.exec(ctx, `UPDATE api_sessions SET status = ?, termination_reason = ?, disconnected = ? WHERE status = ? AND node_id IN (SELECT id FROM nodes WHERE heartbeat < ? AND id <> ?)`,
			SessionDisconnected, "interrupted: the node serving the session stopped answering", micros(at), SessionConnected, micros(staleBefore), self); err != nil {
			return err
		}
		_, err = q.exec(ctx, `DELETE FROM nodes WHERE heartbeat < ? AND id <> ?`, micros(staleBefore), self)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reap nodes: %w", err)
	}
	return ids, nil
}

// MarkNodeInterrupted closes the sessions a node left CONNECTED, for its start-up after a crash, and returns their
// ids. Sessions of other nodes are theirs.
func (s *Store) MarkNodeInterrupted(ctx context.Context, node string, at time.Time) ([]string, error) {
	var ids []string
	err := s.inTx(ctx, func(q conn) error {
		rows, err := q.query(ctx, `SELECT id FROM api_sessions WHERE status = ? AND node_id = ?`, SessionConnected, node)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return mapErr(err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		_, err = q.exec(ctx, `UPDATE api_sessions SET status = ?, termination_reason = ?, disconnected = ? WHERE status = ? AND node_id = ?`,
			SessionDisconnected, "interrupted: gatehouse stopped while the session was open", micros(at), SessionConnected, node)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("mark interrupted sessions: %w", err)
	}
	return ids, nil
}

// RequestTermination asks the node owning an open session to terminate it, and returns that node's id.
func (s *Store) RequestTermination(ctx context.Context, id, reason string) (string, error) {
	var node string
	err := s.inTx(ctx, func(q conn) error {
		if err := mapErr(q.queryRow(ctx, `SELECT node_id FROM api_sessions WHERE id = ? AND status = ?`, id, SessionConnected).Scan(&node)); err != nil {
			return err
		}
		_, err := q.exec(ctx, `UPDATE api_sessions SET terminate_request = ? WHERE id = ? AND status = ?`, reason, id, SessionConnected)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("request termination of %s: %w", id, err)
	}
	return node, nil
}

// RequestUserTermination asks the owning nodes to terminate every open session of a user served by another node
// than except, and returns how many there are.
func (s *Store) RequestUserTermination(ctx context.Context, userID, reason, except string) (int, error) {
	res, err := s.conn().exec(ctx, `UPDATE api_sessions SET terminate_request = ? WHERE user_id = ? AND status = ? AND node_id <> ?`,
		reason, userID, SessionConnected, except)
	if err != nil {
		return 0, fmt.Errorf("request termination of user %s: %w", userID, err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// TerminationRequest is a termination asked through another node.
type TerminationRequest struct{ SessionID, Reason string }

// TerminationRequests lists the open sessions of a node that another node asked it to terminate.
func (s *Store) TerminationRequests(ctx context.Context, node string) ([]TerminationRequest, error) {
	rows, err := s.conn().query(ctx, `SELECT id, terminate_request FROM api_sessions WHERE node_id = ? AND status = ? AND terminate_request <> ''`,
		node, SessionConnected)
	if err != nil {
		return nil, fmt.Errorf("list termination requests: %w", err)
	}
	defer rows.Close()
	var out []TerminationRequest
	for rows.Next() {
		var r TerminationRequest
		if err := rows.Scan(&r.SessionID, &r.Reason); err != nil {
			return nil, mapErr(err)
		}
		out = append(out, r)
	}
	return out, mapErr(rows.Err())
}
