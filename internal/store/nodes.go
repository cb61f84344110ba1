package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNodeTaken is returned by Heartbeat when another process has taken over the node's id: it judged this one
// dead (its heartbeat had stopped for the node timeout) or runs with a copy of its data dir.
var ErrNodeTaken = errors.New("store: another process runs as this node")

// Node is a member of the cluster as it registered itself.
type Node struct {
	ID           string    `json:"id"`
	APIAddress   string    `json:"api_address"`
	ProxyAddress string    `json:"proxy_address"`
	Started      time.Time `json:"started"`
	Heartbeat    time.Time `json:"heartbeat"`
	// Instance names the process running as the node, drawn at its start; two processes with one id differ here.
	Instance string `json:"-"`
}

// Heartbeat refreshes the heartbeat of the node n.ID as run by the process n.Instance, registering it again if the
// node's row is gone. It reports whether the row was there: a node that finds itself gone was declared dead by the
// others, who closed its sessions. It returns ErrNodeTaken when another process holds the id.
func (s *Store) Heartbeat(ctx context.Context, n Node) (registered bool, err error) {
	res, err := s.conn().exec(ctx, `UPDATE nodes SET api_address = ?, proxy_address = ?, started = ?, heartbeat = ? WHERE id = ? AND instance = ?`,
		n.APIAddress, n.ProxyAddress, micros(n.Started), micros(n.Heartbeat), n.ID, n.Instance)
	if err != nil {
		return false, fmt.Errorf("heartbeat: %w", err)
	}
	if k, err := res.RowsAffected(); err == nil && k > 0 {
		return true, nil
	}
	claimed, err := s.ClaimNode(ctx, n, nil)
	if err != nil {
		return false, fmt.Errorf("heartbeat: %w", err)
	}
	if !claimed {
		return false, fmt.Errorf("heartbeat of node %s: %w", n.ID, ErrNodeTaken)
	}
	return false, nil
}

// Node returns the registration of one node, or ErrNotExist.
func (s *Store) Node(ctx context.Context, id string) (Node, error) {
	n := Node{ID: id}
	var started, hb int64
	err := mapErr(s.conn().queryRow(ctx, `SELECT api_address, proxy_address, started, heartbeat, instance FROM nodes WHERE id = ?`, id).
		Scan(&n.APIAddress, &n.ProxyAddress, &started, &hb, &n.Instance))
	if err != nil {
		return Node{}, fmt.Errorf("get node %s: %w", id, err)
	}
	n.Started, n.Heartbeat = fromMicros(started), fromMicros(hb)
	return n, nil
}

// ClaimNode registers n for the process n.Instance. With prev nil it succeeds only if no process holds the id;
// with prev (as read by Node) only if the row is still exactly prev, so that of two processes taking over one
// stale id, one wins. It reports whether n now holds the id.
func (s *Store) ClaimNode(ctx context.Context, n Node, prev *Node) (bool, error) {
	var res interface{ RowsAffected() (int64, error) }
	var err error
	if prev == nil {
		res, err = s.conn().exec(ctx, `INSERT INTO nodes (id, api_address, proxy_address, started, heartbeat, instance) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`, n.ID, n.APIAddress, n.ProxyAddress, micros(n.Started), micros(n.Heartbeat), n.Instance)
	} else {
		res, err = s.conn().exec(ctx, `UPDATE nodes SET api_address = ?, proxy_address = ?, started = ?, heartbeat = ?, instance = ?
			WHERE id = ? AND instance = ? AND heartbeat = ?`, n.APIAddress, n.ProxyAddress, micros(n.Started), micros(n.Heartbeat), n.Instance,
			n.ID, prev.Instance, micros(prev.Heartbeat))
	}
	if err != nil {
		return false, fmt.Errorf("claim node %s: %w", n.ID, err)
	}
	k, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claim node %s: %w", n.ID, err)
	}
	return k > 0, nil
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

// RemoveNode deletes a node's registration by the process instance, as it stops cleanly; another process's
// registration of the id stays.
func (s *Store) RemoveNode(ctx context.Context, id, instance string) error {
	if _, err := s.conn().exec(ctx, `DELETE FROM nodes WHERE id = ? AND instance = ?`, id, instance); err != nil {
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
