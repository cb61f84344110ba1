// Package testpg gives tests a fresh, empty PostgreSQL database each.
//
// Tests call [New] and get a DSN for a database nobody else uses, dropped when
// the test ends. The databases live on the cluster named by the environment
// variable GATEHOUSE_TEST_POSTGRES (scripts/test.sh starts one cluster for the
// whole run and sets it). When the variable is unset, as under a plain
// `go test`, the first call to New starts a throwaway cluster for the test
// binary; a package that uses testpg stops it promptly by calling [Main] from
// its TestMain:
//
//	func TestMain(m *testing.M) { testpg.Main(m) }
//
// A missing PostgreSQL installation fails the test instead of skipping it: the
// store must be tested on PostgreSQL, so a machine without it is a broken test
// environment, not a reason to pass quietly.
package testpg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvVar names the environment variable holding the DSN of a running cluster
// on which New creates its databases. The DSN must name a role allowed to
// create and drop databases and a database to connect to for doing so.
const EnvVar = "GATEHOUSE_TEST_POSTGRES"

// dbPrefix starts the name of every database New creates, so that a person
// looking at a shared cluster can tell test leftovers from real data.
const dbPrefix = "gh_test_"

// adminTimeout bounds creating and dropping a database; both take well under
// a second on an idle cluster, so hitting it means the cluster is stuck.
const adminTimeout = 30 * time.Second

var (
	ownOnce sync.Once
	own     *cluster // the throwaway cluster, if this binary started one
	ownErr  error
)

// New creates a fresh, empty database and returns a DSN for it. The database
// is dropped, with any connections still open to it, when t and its subtests
// finish. New is safe to call from parallel tests.
func New(t testing.TB) string {
	t.Helper()
	base, err := baseDSN()
	if err != nil {
		t.Fatalf("testpg: no PostgreSQL for tests: %v", err)
	}
	name := dbPrefix + randomSuffix()

	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	if err := admin(ctx, base, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testpg: create database on %s: %v", redact(base), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		// FORCE ends connections a test forgot to close, so a leak in one test
		// cannot leave databases behind or make this cleanup hang.
		if err := admin(ctx, base, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testpg: drop database %s: %v", name, err)
		}
	})

	dsn, err := withDatabase(base, name)
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	return dsn
}

// Main runs the tests of m and then stops the cluster that New started, if it
// started one, before exiting with the tests' status. Call it from TestMain in
// every package that uses New. Without it a self-started cluster is still
// removed, but only after the test binary has exited, by a watchdog process.
func Main(m *testing.M) {
	code := m.Run()
	if own != nil {
		if err := own.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "testpg: %v\n", err)
		}
	}
	os.Exit(code)
}

// baseDSN returns the DSN of the cluster to create databases on, starting a
// throwaway cluster on first use if the environment names none.
func baseDSN() (string, error) {
	if dsn := os.Getenv(EnvVar); dsn != "" {
		return dsn, nil
	}
	ownOnce.Do(func() { own, ownErr = startCluster() })
	if ownErr != nil {
		return "", fmt.Errorf("%s is unset and starting a throwaway cluster failed: %w", EnvVar, ownErr)
	}
	return own.dsn, nil
}

// admin runs one statement on a short-lived connection of its own. CREATE and
// DROP DATABASE cannot run inside a transaction, and pgx's simple Exec does not
// open one.
func admin(ctx context.Context, dsn, stmt string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("exec %q: %w", stmt, err)
	}
	return nil
}

// withDatabase returns dsn with its database replaced by name. It accepts both
// forms libpq does: a URL, and keyword=value pairs, where a later keyword
// overrides an earlier one.
func withDatabase(dsn, name string) (string, error) {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return dsn + " dbname=" + name, nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", EnvVar, err)
	}
	u.Path = "/" + name
	u.RawPath = ""
	// A dbname query parameter would override the path.
	q := u.Query()
	if q.Has("dbname") {
		q.Del("dbname")
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// randomSuffix returns 16 hex digits: enough that parallel tests, and test
// binaries sharing one cluster, never pick the same database name.
func randomSuffix() string {
	var b [8]byte
	rand.Read(b[:]) // never fails; see crypto/rand.Read
	return hex.EncodeToString(b[:])
}

// redact hides the password of a URL DSN so it can appear in a test failure.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return "the test cluster"
	}
	return u.Redacted()
}
