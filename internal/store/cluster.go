package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// ErrWrongMasterKey is returned by CheckMasterKey when the database was set up with another master key.
var ErrWrongMasterKey = errors.New("store: this database belongs to a cluster with another master key")

// exclusiveMu serializes Exclusive sections on SQLite, whose database one process owns.
var exclusiveMu sync.Mutex

// Exclusive runs fn while holding the cluster-wide lock called name: a PostgreSQL session advisory lock on a
// connection of its own, so that nodes starting at once on one database migrate and bootstrap it one at a time.
// The connection is discarded afterwards, which releases the lock even if unlocking failed.
func (s *Store) Exclusive(ctx context.Context, name string, fn func(context.Context) error) error {
	if !s.pg {
		exclusiveMu.Lock()
		defer exclusiveMu.Unlock()
		return fn(ctx)
	}
	c, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("lock %s: %w", name, err)
	}
	defer discard(c)
	if _, err := c.ExecContext(ctx, `SELECT pg_advisory_lock(hashtext($1))`, "gatehouse:"+name); err != nil {
		return fmt.Errorf("lock %s: %w", name, err)
	}
	return fn(ctx)
}

// discard closes a dedicated connection for good instead of returning it to the pool, ending its session (and so
// any advisory lock it holds).
func discard(c *sql.Conn) {
	c.Raw(func(any) error { return driver.ErrBadConn })
	c.Close()
}

// Lead runs fn while this process holds the cluster-wide leadership called name, and keeps trying to get it every
// retry until ctx is done. Leadership is a PostgreSQL advisory lock held by a connection of its own: when that
// connection dies, or the process does, the lock is released and another node takes over; fn's context is
// cancelled as soon as this node is no longer sure it leads. On SQLite the one process always leads.
func (s *Store) Lead(ctx context.Context, name string, retry time.Duration, fn func(context.Context)) {
	if !s.pg {
		fn(ctx)
		return
	}
	for ctx.Err() == nil {
		if s.leadOnce(ctx, name, retry, fn) {
			continue // lost the lead: try again at once, as a follower would
		}
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// leadOnce tries the lock once and, if it got it, runs fn until the lock's connection fails or ctx is done.
func (s *Store) leadOnce(ctx context.Context, name string, check time.Duration, fn func(context.Context)) bool {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return false
	}
	defer discard(c)
	var got bool
	if err := c.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(hashtext($1))`, "gatehouse:lead:"+name).Scan(&got); err != nil || !got {
		return false
	}
	s.log.Info("leading the cluster's background jobs", "lead", name)
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); fn(lctx) }()
	t := time.NewTicker(check)
	defer t.Stop()
	for {
		select {
		case <-done:
			cancel()
			return true
		case <-t.C:
			pctx, pcancel := context.WithTimeout(ctx, check)
			err := c.PingContext(pctx)
			pcancel()
			if err != nil && ctx.Err() == nil {
				s.log.Warn("lost the lead: its database connection failed", "lead", name, "err", err)
				cancel()
				<-done
				return true
			}
		}
	}
}

// CheckMasterKey stores a check value sealed with the master key on first use and, on every later start, makes
// sure it opens: a node given another key refuses to start instead of failing on every secret it reads.
func (s *Store) CheckMasterKey(ctx context.Context) error {
	const name, plain = "master-key-check", "gatehouse master key check"
	aad := []byte("cluster_blobs:" + name)
	sealed, err := s.sealer.Seal([]byte(plain), aad)
	if err != nil {
		return fmt.Errorf("master key check: %w", err)
	}
	if _, err := s.conn().exec(ctx, `INSERT INTO cluster_blobs (name, data) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, sealed); err != nil {
		return fmt.Errorf("master key check: %w", err)
	}
	stored, err := s.Blob(ctx, name)
	if err != nil {
		return fmt.Errorf("master key check: %w", err)
	}
	if got, err := s.sealer.Open(stored, aad); err != nil || string(got) != plain {
		return ErrWrongMasterKey
	}
	return nil
}

// Blob returns a named value of cluster_blobs, or ErrNotExist.
func (s *Store) Blob(ctx context.Context, name string) ([]byte, error) {
	var b []byte
	if err := mapErr(s.conn().queryRow(ctx, `SELECT data FROM cluster_blobs WHERE name = ?`, name).Scan(&b)); err != nil {
		return nil, fmt.Errorf("get blob %s: %w", name, err)
	}
	return b, nil
}

// PutBlob stores a named value of cluster_blobs, replacing any.
func (s *Store) PutBlob(ctx context.Context, name string, data []byte) error {
	if _, err := s.conn().exec(ctx, `INSERT INTO cluster_blobs (name, data) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET data = excluded.data`, name, data); err != nil {
		return fmt.Errorf("put blob %s: %w", name, err)
	}
	return nil
}

// Cool-down subjects: a credential, a user, or (for unauthenticated sessions, which have neither) a session key.
func CooldownCredential(id string) string { return "credential:" + id }

// CooldownUser is the cool-down subject of a user.
func CooldownUser(id string) string { return "user:" + id }

// SetCooldown makes every subject cool down until the given time, keeping a later end already stored.
func (s *Store) SetCooldown(ctx context.Context, until time.Time, subjects ...string) error {
	return s.inTx(ctx, func(q conn) error {
		for _, sub := range subjects {
			if _, err := q.exec(ctx, `INSERT INTO cooldowns (subject, until_micro) VALUES (?, ?) ON CONFLICT (subject) DO UPDATE SET until_micro = CASE WHEN excluded.until_micro > cooldowns.until_micro THEN excluded.until_micro ELSE cooldowns.until_micro END`,
				sub, micros(until)); err != nil {
				return fmt.Errorf("set cool-down %s: %w", sub, err)
			}
		}
		return nil
	})
}

// Cooldowns returns the cool-downs still running at now, by subject.
func (s *Store) Cooldowns(ctx context.Context, now time.Time) (map[string]time.Time, error) {
	rows, err := s.conn().query(ctx, `SELECT subject, until_micro FROM cooldowns WHERE until_micro > ?`, micros(now))
	if err != nil {
		return nil, fmt.Errorf("list cool-downs: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var sub string
		var until int64
		if err := rows.Scan(&sub, &until); err != nil {
			return nil, mapErr(err)
		}
		out[sub] = fromMicros(until)
	}
	return out, mapErr(rows.Err())
}

// CooldownsOf returns the running cool-downs at now among subjects, by subject.
func (s *Store) CooldownsOf(ctx context.Context, now time.Time, subjects ...string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if len(subjects) == 0 {
		return out, nil
	}
	args := []any{micros(now)}
	for _, sub := range subjects {
		args = append(args, sub)
	}
	rows, err := s.conn().query(ctx, `SELECT subject, until_micro FROM cooldowns WHERE until_micro > ? AND subject IN (?`+
		strings.Repeat(",?", len(subjects)-1)+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("get cool-downs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var sub string
		var until int64
		if err := rows.Scan(&sub, &until); err != nil {
			return nil, mapErr(err)
		}
		out[sub] = fromMicros(until)
	}
	return out, mapErr(rows.Err())
}

// DeleteExpiredCooldowns forgets cool-downs that ended before now.
func (s *Store) DeleteExpiredCooldowns(ctx context.Context, now time.Time) error {
	if _, err := s.conn().exec(ctx, `DELETE FROM cooldowns WHERE until_micro <= ?`, micros(now)); err != nil {
		return fmt.Errorf("delete expired cool-downs: %w", err)
	}
	return nil
}

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

// Count is a number of events of one scope and key in one time bucket.
type Count struct {
	Scope, Key string
	Bucket     int64
	N          int64
}

// AddCounts adds a node's counts to the shared limiter counts.
func (s *Store) AddCounts(ctx context.Context, node string, counts []Count) error {
	if len(counts) == 0 {
		return nil
	}
	return s.inTx(ctx, func(q conn) error {
		for _, c := range counts {
			if _, err := q.exec(ctx, `INSERT INTO limiter_counts (scope, key, node_id, bucket, n) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (scope, key, node_id, bucket) DO UPDATE SET n = limiter_counts.n + excluded.n`,
				c.Scope, c.Key, node, c.Bucket, c.N); err != nil {
				return fmt.Errorf("add limiter counts: %w", err)
			}
		}
		return nil
	})
}

// OtherCounts sums the counts of every node but self from bucket since on, by scope and key, for at most limit
// keys (the busiest first).
func (s *Store) OtherCounts(ctx context.Context, self string, since int64, limit int) ([]Count, error) {
	rows, err := s.conn().query(ctx, `SELECT scope, key, SUM(n) AS total FROM limiter_counts WHERE node_id <> ? AND bucket >= ?
		GROUP BY scope, key ORDER BY total DESC LIMIT ?`, self, since, limit)
	if err != nil {
		return nil, fmt.Errorf("read limiter counts: %w", err)
	}
	defer rows.Close()
	var out []Count
	for rows.Next() {
		var c Count
		if err := rows.Scan(&c.Scope, &c.Key, &c.N); err != nil {
			return nil, mapErr(err)
		}
		out = append(out, c)
	}
	return out, mapErr(rows.Err())
}

// DeleteCountsBefore forgets limiter counts of buckets before the given one.
func (s *Store) DeleteCountsBefore(ctx context.Context, bucket int64) error {
	if _, err := s.conn().exec(ctx, `DELETE FROM limiter_counts WHERE bucket < ?`, bucket); err != nil {
		return fmt.Errorf("delete limiter counts: %w", err)
	}
	return nil
}
