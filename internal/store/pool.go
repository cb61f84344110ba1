package store

import (
	"context"
	"database/sql"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Pool bounds the PostgreSQL connections of one node. database/sql opens as many connections as there are
// concurrent queries unless told otherwise, so without a cap a burst on one node (or a cluster of them) can use up
// the server's max_connections and lock every other client out. The zero value picks the defaults below. SQLite
// ignores it: its database is a file of this process.
type Pool struct {
	// MaxConns caps the connections that run queries; a query beyond it waits for a free one as long as its
	// context allows. Zero means DefaultMaxConns.
	MaxConns int
	// MaxIdleConns is how many of them stay open while unused; zero means as many as MaxConns, so a busy node does
	// not close and reopen connections between bursts.
	MaxIdleConns int
	// ConnMaxLifetime closes a connection this long after it opened (after its query), so a node's connections
	// move to a restarted or failed-over server in bounded time. Zero means DefaultConnMaxLifetime.
	ConnMaxLifetime time.Duration
}

// DefaultConnMaxLifetime is the lifetime of a pooled connection unless Pool says otherwise.
const DefaultConnMaxLifetime = 30 * time.Minute

// DefaultMaxConns is the query pool of a node unless Pool says otherwise: four per processor that Go may run on
// (a query mostly waits on the network, so a few per processor keep them busy), at least 4.
func DefaultMaxConns() int { return max(4, 4*runtime.GOMAXPROCS(0)) }

// Resolved returns the pool with its defaults filled in.
func (p Pool) Resolved() Pool {
	if p.MaxConns <= 0 {
		p.MaxConns = DefaultMaxConns()
	}
	if p.MaxIdleConns <= 0 || p.MaxIdleConns > p.MaxConns {
		p.MaxIdleConns = p.MaxConns
	}
	if p.ConnMaxLifetime <= 0 {
		p.ConnMaxLifetime = DefaultConnMaxLifetime
	}
	return p
}

// DefaultApplicationName is what a node's connections call themselves in pg_stat_activity unless the URL sets
// application_name, so that an operator can count them.
const DefaultApplicationName = "gatehouse"

// openPostgres opens the query pool. The change feed, leadership and start-up locks hold connections of their own
// (dedicated), outside the pool: a lock held for hours must not take a slot from queries, and a saturated pool must
// not keep a node from renewing its lead.
func (s *Store) openPostgres(dsn string, p Pool) error {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return err
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = DefaultApplicationName
	}
	s.pgcfg = cfg
	s.db = stdlib.OpenDB(*cfg.Copy())
	p = p.Resolved()
	s.db.SetMaxOpenConns(p.MaxConns)
	s.db.SetMaxIdleConns(p.MaxIdleConns)
	s.db.SetConnMaxLifetime(p.ConnMaxLifetime)
	s.pool = p
	return nil
}

// dedicated opens a PostgreSQL connection outside the pool; closing it ends its session and the advisory locks
// the session holds.
func (s *Store) dedicated(ctx context.Context) (*pgx.Conn, error) {
	return pgx.ConnectConfig(ctx, s.pgcfg.Copy())
}

// PoolStats reports the query pool's use: open and in-use connections, and how often and how long queries waited
// for one. On SQLite it reports the driver's own pool.
func (s *Store) PoolStats() sql.DBStats { return s.db.Stats() }

// PoolLimits returns the pool this store runs with, defaults filled in (zero on SQLite).
func (s *Store) PoolLimits() Pool { return s.pool }

// closeDedicated closes a dedicated connection, bounded: the server may be gone.
func closeDedicated(ctx context.Context, c *pgx.Conn) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	c.Close(cctx) // an error here still closes the socket, which ends the session
}
