// Package store keeps Gatehouse's state in SQLite (the embedded default) or PostgreSQL (for high availability),
// chosen by the DSN's prefix. Both engines run the same schema and the same queries; secrets are sealed or keyed-
// hashed here, on the way in, so no caller can store one in clear by forgetting to.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing/fstest"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Sentinel errors. Callers check them with errors.Is.
var (
	// ErrNotExist is returned when the object asked for does not exist.
	ErrNotExist = errors.New("store: object does not exist")
	// ErrConflict is returned when a write would break a uniqueness rule (a duplicate name, say).
	ErrConflict = errors.New("store: conflicts with an existing object")
	// ErrReference is returned when a write names an object that does not exist, or a delete would orphan one.
	ErrReference = errors.New("store: refers to an object that does not exist")
)

// Sealer encrypts secrets for storage and derives keyed-hash indexes for looking them up. The secrets package's
// Keyring is the production implementation.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
	Index(purpose string, secret []byte) string
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is the database. It is safe for concurrent use.
type Store struct {
	db     *sql.DB
	pg     bool
	sealer Sealer
	log    *slog.Logger
	pgcfg  *pgx.ConnConfig // for the dedicated connections (change feed, locks); nil on SQLite
	pool   Pool
	// Now returns the current time; tests replace it.
	Now func() time.Time
	// stmts holds statements prepared once on SQLite (by text): the hot INSERTs of the trail index, whose parsing
	// cost more than a small row's insert.
	stmts sync.Map // string -> *sql.Stmt
	// OnAudit, if set, receives every audit event after it is stored (after its transaction commits). It runs on
	// the writer's goroutine, so it must not block; nil means nobody is told. Set it before the store is shared.
	OnAudit func(model.AuditEvent)
}

// Open connects to dsn, applies pending migrations and returns the store. A dsn starting with postgres:// or
// postgresql:// selects PostgreSQL; anything else is a SQLite file path. PostgreSQL gets the default Pool.
func Open(ctx context.Context, dsn string, sealer Sealer, log *slog.Logger) (*Store, error) {
	return OpenPool(ctx, dsn, sealer, log, Pool{})
}

// OpenPool is Open with the PostgreSQL connection pool bounded by p.
func OpenPool(ctx context.Context, dsn string, sealer Sealer, log *slog.Logger, p Pool) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{sealer: sealer, log: log, Now: time.Now}
	var err error
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		s.pg = true
		err = s.openPostgres(dsn, p)
	} else {
		if dir := filepath.Dir(dsn); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("open store: %w", err)
			}
		}
		// WAL lets readers run beside the one writer; immediate transactions take the write lock up front so two
		// writers queue on busy_timeout instead of failing a lock upgrade.
		s.db, err = sql.Open("sqlite", "file:"+dsn+
			"?_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_txlock=immediate")
		if err == nil {
			// A new database file must not be readable by others, even before the first write.
			if f, ferr := os.OpenFile(dsn, os.O_CREATE|os.O_RDWR, 0o600); ferr == nil {
				f.Close()
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	// Nodes of a cluster start at once on an empty database: one migrates, the others wait for it.
	if err := s.Exclusive(ctx, "migrate", s.migrate); err != nil {
		s.db.Close()
		return nil, err
	}
	if err := s.indexMissingTerms(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.stmts.Range(func(_, v any) bool {
		v.(*sql.Stmt).Close()
		return true
	})
	return s.db.Close()
}

// prepared returns q prepared once for the store, bound to c's transaction if c is one.
func (s *Store) prepared(ctx context.Context, c conn, q string) (*sql.Stmt, error) {
	st, ok := s.stmts.Load(q)
	if !ok {
		p, err := s.db.PrepareContext(ctx, q)
		if err != nil {
			return nil, mapErr(err)
		}
		if st, ok = s.stmts.LoadOrStore(q, p); ok {
			p.Close() // prepared at the same time by another caller
		}
	}
	if tx, ok := c.q.(*sql.Tx); ok {
		return tx.StmtContext(ctx, st.(*sql.Stmt)), nil
	}
	return st.(*sql.Stmt), nil
}

// Dialect names the engine: "sqlite" or "postgres".
func (s *Store) Dialect() string {
	if s.pg {
		return "postgres"
	}
	return "sqlite"
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// migrate renders the dialect placeholders of the embedded migrations and applies the pending ones with goose.
func (s *Store) migrate(ctx context.Context) error {
	autoid, blob := "INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB"
	dialect := goose.DialectSQLite3
	if s.pg {
		autoid, blob = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "BYTEA"
		dialect = goose.DialectPostgres
	}
	rendered := fstest.MapFS{}
	err := fs.WalkDir(migrationFiles, "migrations", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := migrationFiles.ReadFile(path)
		if err != nil {
			return err
		}
		text := dialectSections(strings.ReplaceAll(strings.ReplaceAll(string(b), "{{autoid}}", autoid), "{{blob}}", blob), s.pg)
		rendered[filepath.Base(path)] = &fstest.MapFile{Data: []byte(text)}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	p, err := goose.NewProvider(dialect, s.db, rendered)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, r := range res {
		s.log.Info("applied migration", "version", r.Source.Version, "path", r.Source.Path, "duration", r.Duration)
	}
	return nil
}

// dialectSections keeps the lines between "-- +sqlite" and "-- +end" only for SQLite and those between
// "-- +postgres" and "-- +end" only for PostgreSQL, for the few statements (full-text search) the engines do not share.
func dialectSections(sql string, pg bool) string {
	var b strings.Builder
	keep := true
	for line := range strings.SplitAfterSeq(sql, "\n") {
		switch strings.TrimSpace(line) {
		case "-- +sqlite":
			keep = !pg
			continue
		case "-- +postgres":
			keep = pg
			continue
		case "-- +end":
			keep = true
			continue
		}
		if keep {
			b.WriteString(line)
		}
	}
	return b.String()
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn runs queries written with ? placeholders on either engine.
type conn struct {
	q  querier
	pg bool
}

func (s *Store) conn() conn { return conn{q: s.db, pg: s.pg} }

// rebind turns ? placeholders into PostgreSQL's $n. Queries in this package never contain a literal '?'.
func (c conn) rebind(q string) string {
	if !c.pg {
		return q
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

func (c conn) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	r, err := c.q.ExecContext(ctx, c.rebind(q), args...)
	return r, mapErr(err)
}

func (c conn) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	r, err := c.q.QueryContext(ctx, c.rebind(q), args...)
	return r, mapErr(err)
}

func (c conn) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return c.q.QueryRowContext(ctx, c.rebind(q), args...)
}

// scanStrings reads the rows of a one-column query of text, and closes them.
func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, mapErr(err)
		}
		out = append(out, v)
	}
	return out, mapErr(rows.Err())
}

// inTx runs fn in a transaction, committing when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(c conn) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(conn{q: tx, pg: s.pg}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return mapErr(err)
	}
	return nil
}

// mapErr turns engine-specific constraint failures into the package's sentinels.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotExist
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505":
			return fmt.Errorf("%w: %s", ErrConflict, pgErr.ConstraintName)
		case "23503":
			return fmt.Errorf("%w: %s", ErrReference, pgErr.ConstraintName)
		}
		return err
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "UNIQUE constraint failed"), strings.Contains(msg, "PRIMARY KEY constraint failed"):
		return fmt.Errorf("%w: %s", ErrConflict, msg)
	case strings.Contains(msg, "FOREIGN KEY constraint failed"):
		return fmt.Errorf("%w: %s", ErrReference, msg)
	}
	return err
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// now is the store's clock truncated to what the columns keep, so a value read back equals the one written.
func (s *Store) now() time.Time { return s.Now().UTC().Truncate(time.Microsecond) }

// OpenExisting connects to an existing database without migrating or creating anything, for offline tools (the
// trail verifier) that must not change what they inspect. sealer may be nil when no secret is read.
func OpenExisting(ctx context.Context, dsn string, sealer Sealer) (*Store, error) {
	s := &Store{sealer: sealer, log: slog.New(slog.DiscardHandler), Now: time.Now}
	var err error
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		s.pg = true
		err = s.openPostgres(dsn, Pool{MaxConns: 2})
	} else {
		if _, serr := os.Stat(dsn); serr != nil {
			return nil, fmt.Errorf("open store: %w", serr)
		}
		s.db, err = sql.Open("sqlite", "file:"+dsn+"?_pragma=busy_timeout(10000)")
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	return s, nil
}
