package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrWrongMasterKey is returned by CheckMasterKey when the database was set up with another master key.
var ErrWrongMasterKey = errors.New("store: this database belongs to a cluster with another master key")

// exclusiveMu serializes Exclusive sections on SQLite, whose database one process owns.
var exclusiveMu sync.Mutex

// Exclusive runs fn while holding the cluster-wide lock called name: a PostgreSQL session advisory lock on a
// dedicated connection, so that nodes starting at once on one database migrate and bootstrap it one at a time.
// The connection is closed afterwards, which releases the lock even if unlocking failed.
func (s *Store) Exclusive(ctx context.Context, name string, fn func(context.Context) error) error {
	if !s.pg {
		exclusiveMu.Lock()
		defer exclusiveMu.Unlock()
		return fn(ctx)
	}
	c, err := s.dedicated(ctx)
	if err != nil {
		return fmt.Errorf("lock %s: %w", name, err)
	}
	defer closeDedicated(ctx, c)
	if _, err := c.Exec(ctx, `SELECT pg_advisory_lock(hashtext($1))`, "gatehouse:"+name); err != nil {
		return fmt.Errorf("lock %s: %w", name, err)
	}
	return fn(ctx)
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
	c, err := s.dedicated(ctx)
	if err != nil {
		return false
	}
	defer closeDedicated(ctx, c)
	var got bool
	if err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext($1))`, "gatehouse:lead:"+name).Scan(&got); err != nil || !got {
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
			err := c.Ping(pctx)
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
