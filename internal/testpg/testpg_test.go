package testpg

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// TestNew checks the whole life of a test database: it is fresh and empty,
// usable, private to its test, and gone after the test even with a connection
// left open.
func TestNew(t *testing.T) {
	ctx := context.Background()
	base, err := baseDSN()
	if err != nil {
		t.Fatal(err)
	}

	var name string
	t.Run("use", func(t *testing.T) {
		dsn := New(t)
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		// Deliberately not closed: the drop at cleanup must cope with a
		// connection a test leaked.

		if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
			t.Fatalf("current_database: %v", err)
		}
		if !strings.HasPrefix(name, dbPrefix) {
			t.Errorf("database %q does not start with %q", name, dbPrefix)
		}
		var tables int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil {
			t.Fatalf("count tables: %v", err)
		}
		if tables != 0 {
			t.Errorf("fresh database has %d tables, want 0", tables)
		}

		if _, err := conn.Exec(ctx, "CREATE TABLE widget (id int PRIMARY KEY, name text NOT NULL)"); err != nil {
			t.Fatalf("create table: %v", err)
		}
		if _, err := conn.Exec(ctx, "INSERT INTO widget VALUES (1, 'gear')"); err != nil {
			t.Fatalf("insert: %v", err)
		}
		var got string
		if err := conn.QueryRow(ctx, "SELECT name FROM widget WHERE id = 1").Scan(&got); err != nil {
			t.Fatalf("select: %v", err)
		}
		if got != "gear" {
			t.Errorf("name = %q, want %q", got, "gear")
		}

		// A second database in the same test is a different one.
		other, err := pgx.Connect(ctx, New(t))
		if err != nil {
			t.Fatalf("connect to second database: %v", err)
		}
		defer other.Close(ctx)
		var n int
		err = other.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'widget'").Scan(&n)
		if err != nil {
			t.Fatalf("count tables in second database: %v", err)
		}
		if n != 0 {
			t.Errorf("second database sees the first one's table")
		}
	})

	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to cluster: %v", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatalf("look up database: %v", err)
	}
	if exists {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

// TestStartCluster exercises the path a plain `go test` takes when
// GATEHOUSE_TEST_POSTGRES is unset, which scripts/test.sh never does:
// starting a throwaway cluster and removing it without a trace.
func TestStartCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starting a cluster takes seconds")
	}
	c, err := startCluster()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		c.stop()
		t.Fatalf("connect: %v", err)
	}
	var fsync string
	err = conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync)
	conn.Close(ctx)
	if err != nil {
		c.stop()
		t.Fatalf("show fsync: %v", err)
	}
	if fsync != "off" {
		t.Errorf("fsync = %s, want off", fsync)
	}

	if err := c.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := os.Stat(c.dir); !os.IsNotExist(err) {
		t.Errorf("cluster directory %s remains after stop (stat: %v)", c.dir, err)
	}
	if _, err := pgx.Connect(ctx, c.dsn); err == nil {
		t.Errorf("server still accepts connections after stop")
	}
}

func TestWithDatabase(t *testing.T) {
	tests := []struct {
		dsn, want string
	}{
		{
			"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
			"postgres://postgres@127.0.0.1:5432/gh_test_x?sslmode=disable",
		},
		{
			"postgresql://u:p@h/db?dbname=other&sslmode=disable",
			"postgresql://u:p@h/gh_test_x?sslmode=disable",
		},
		{
			"host=/tmp port=5432 user=postgres",
			"host=/tmp port=5432 user=postgres dbname=gh_test_x",
		},
	}
	for _, tt := range tests {
		got, err := withDatabase(tt.dsn, "gh_test_x")
		if err != nil {
			t.Errorf("withDatabase(%q): %v", tt.dsn, err)
			continue
		}
		if got != tt.want {
			t.Errorf("withDatabase(%q) = %q, want %q", tt.dsn, got, tt.want)
		}
	}
}
