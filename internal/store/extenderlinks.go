package store

import (
	"context"
	"fmt"
	"time"
)

// ExtenderLink is one live agent session as the node holding it registered it.
type ExtenderLink struct {
	Key            string
	ExtenderID     string
	NodeID         string
	ConnectedSince time.Time
	Heartbeat      time.Time
}

// PutExtenderLink records a session or refreshes its heartbeat.
func (s *Store) PutExtenderLink(ctx context.Context, l ExtenderLink) error {
	_, err := s.conn().exec(ctx, `INSERT INTO extender_links (link_key, extender_id, node_id, connected_since, heartbeat) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (link_key) DO UPDATE SET heartbeat = excluded.heartbeat`,
		l.Key, l.ExtenderID, l.NodeID, micros(l.ConnectedSince), micros(l.Heartbeat))
	if err != nil {
		return fmt.Errorf("put extender link: %w", mapErr(err))
	}
	return nil
}

// DeleteExtenderLink forgets a session that ended.
func (s *Store) DeleteExtenderLink(ctx context.Context, key string) error {
	if _, err := s.conn().exec(ctx, `DELETE FROM extender_links WHERE link_key = ?`, key); err != nil {
		return fmt.Errorf("delete extender link: %w", mapErr(err))
	}
	return nil
}

// DeleteNodeExtenderLinks forgets every session node registered, for its start after a crash: a new process holds
// none of them.
func (s *Store) DeleteNodeExtenderLinks(ctx context.Context, node string) error {
	if _, err := s.conn().exec(ctx, `DELETE FROM extender_links WHERE node_id = ?`, node); err != nil {
		return fmt.Errorf("delete node extender links: %w", mapErr(err))
	}
	return nil
}

// DeleteStaleExtenderLinks forgets sessions whose heartbeat is older than before, left by nodes that died.
func (s *Store) DeleteStaleExtenderLinks(ctx context.Context, before time.Time) error {
	if _, err := s.conn().exec(ctx, `DELETE FROM extender_links WHERE heartbeat < ?`, micros(before)); err != nil {
		return fmt.Errorf("delete stale extender links: %w", mapErr(err))
	}
	return nil
}

// ExtenderOwners lists the nodes other than self that hold a session of an enabled extender of prefix, where both
// the session's and the node's heartbeats are fresh (at or after linkFresh and nodeFresh), by node id.
func (s *Store) ExtenderOwners(ctx context.Context, prefix, self string, linkFresh, nodeFresh time.Time) ([]Node, error) {
	rows, err := s.conn().query(ctx, `SELECT DISTINCT n.id, n.api_address FROM extender_links l
		JOIN extenders e ON e.id = l.extender_id
		JOIN nodes n ON n.id = l.node_id
		WHERE e.routing_prefix = ? AND e.enabled AND l.node_id <> ? AND l.heartbeat >= ? AND n.heartbeat >= ?
		ORDER BY n.id`, prefix, self, micros(linkFresh), micros(nodeFresh))
	if err != nil {
		return nil, fmt.Errorf("extender owners: %w", mapErr(err))
	}
	defer rows.Close()
	var out []Node
	for rows.Next() {
		var n Node
		if err := rows.Scan(&n.ID, &n.APIAddress); err != nil {
			return nil, mapErr(err)
		}
		out = append(out, n)
	}
	return out, mapErr(rows.Err())
}

// ExtenderLinkedElsewhere reports whether a node other than self holds a session of extender id whose heartbeat is
// at or after fresh: then a session ending here leaves the extender connected.
func (s *Store) ExtenderLinkedElsewhere(ctx context.Context, id, self string, fresh time.Time) (bool, error) {
	var n int
	err := s.conn().queryRow(ctx, `SELECT COUNT(*) FROM extender_links WHERE extender_id = ? AND node_id <> ? AND heartbeat >= ?
		AND node_id IN (SELECT id FROM nodes)`,
		id, self, micros(fresh)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("extender links: %w", mapErr(err))
	}
	return n > 0, nil
}
