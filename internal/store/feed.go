package store

import (
	"context"
	"fmt"
	"time"
)

// feedChannel is the PostgreSQL notification channel of the change feed.
const feedChannel = "gatehouse"

// Clustered says whether other processes may share this database (PostgreSQL), so that changes must be announced.
func (s *Store) Clustered() bool { return s.pg }

// Notify announces a change on the cluster's change feed. Notifications are sent when the statement commits and are
// not stored: a node that was not listening misses them, which is why Listen reports every (re)connection. On
// SQLite, whose database one process owns, it does nothing.
func (s *Store) Notify(ctx context.Context, payload string) error {
	if !s.pg {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, feedChannel, payload); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// Listen follows the change feed on a connection of its own until ctx is done, calling fn with each payload in
// order. connected runs each time listening (re)starts, before any payload: what was announced while the feed was
// down is lost, so the caller reloads everything there. A failed connection is retried every retry. On SQLite it
// returns at once.
func (s *Store) Listen(ctx context.Context, retry time.Duration, connected func(), fn func(payload string)) {
	if !s.pg {
		return
	}
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, connected, fn)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("change feed lost; reconnecting", "err", err, "retry", retry)
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (s *Store) listenOnce(ctx context.Context, connected func(), fn func(string)) error {
	c, err := s.dedicated(ctx)
	if err != nil {
		return err
	}
	defer closeDedicated(ctx, c)
	if _, err := c.Exec(ctx, `LISTEN `+feedChannel); err != nil {
		return err
	}
	connected()
	for {
		n, err := c.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn(n.Payload)
	}
}
