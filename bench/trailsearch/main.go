// Command trailsearch measures searches of the trail index with a large number of indexed exchanges.
//
//	go run ./bench/trailsearch                      # 1,000,000 exchanges in a SQLite file in a temp dir
//	go run ./bench/trailsearch -db postgres://...   # the same on PostgreSQL (a database of its own: it is filled)
//	go run ./bench/trailsearch -rows 100000 -keep   # smaller, and keep the SQLite file for another run
//
// It opens the store (which creates the schema), generates the rows in bulk inside the database (one INSERT ...
// SELECT over a generated series, so the indexes and the SQLite FTS triggers do their real work), then runs each
// query of the table several times through store.SearchTrails, the function the APIs call, and prints the
// median and the slowest answer with the match count.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// base is the time of the first generated exchange; the rows span 30 days from it.
var base = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

const span = 30 * 24 * time.Hour

func main() {
	rows := flag.Int("rows", 1_000_000, "exchanges to index")
	dsn := flag.String("db", "", "postgres:// URL of an empty database (default: a SQLite file in a temp dir)")
	file := flag.String("sqlite", "", "SQLite file to use (kept; filled only if it has no exchanges)")
	keep := flag.Bool("keep", false, "keep the temp dir with the SQLite file")
	reps := flag.Int("reps", 11, "runs of each query")
	flag.Parse()
	ctx := context.Background()
	if *dsn == "" {
		path := *file
		if path == "" {
			dir, err := os.MkdirTemp("", "trailsearch-")
			check(err)
			if !*keep {
				defer os.RemoveAll(dir)
			} else {
				fmt.Println("keeping", dir)
			}
			path = filepath.Join(dir, "gatehouse.db")
		}
		*dsn = path
	}
	st, err := store.Open(ctx, *dsn, nil, nil)
	check(err)
	defer func() { st.Close() }() // st is reopened below
	raw, err := openRaw(*dsn)
	check(err)
	defer raw.Close()

	var have int
	check(raw.QueryRowContext(ctx, `SELECT COUNT(*) FROM trail_index`).Scan(&have))
	if have == 0 {
		start := time.Now()
		check(generate(ctx, raw, st.Dialect() == "postgres", *rows))
		fmt.Printf("generated %d exchanges in %s\n", *rows, time.Since(start).Round(time.Millisecond))
		if st.Dialect() == "sqlite" {
			// Rows written straight into trail_index have no text index documents yet; opening the store
			// gives them theirs (as it does to rows indexed before migration 00028).
			start = time.Now()
			st.Close()
			st, err = store.Open(ctx, *dsn, nil, nil)
			check(err)
			fmt.Printf("indexed their text in %s\n", time.Since(start).Round(time.Millisecond))
		}
		if st.Dialect() == "postgres" {
			// What autovacuum does after a bulk of inserts; without statistics the planner guesses.
			_, err := raw.ExecContext(ctx, `ANALYZE trail_index`)
			check(err)
		}
	} else {
		fmt.Printf("using the %d exchanges already indexed\n", have)
	}

	week := base.Add(span - 7*24*time.Hour)
	queries := []struct {
		name string
		q    store.TrailQuery
	}{
		{"every DELETE under /apis/apps/v1/namespaces/prod last week", store.TrailQuery{Method: "DELETE", PathPrefix: "/apis/apps/v1/namespaces/prod", From: week}},
		{"responses containing a rare string", store.TrailQuery{ResponseText: "needle-424242"}},
		{"responses containing a common string", store.TrailQuery{ResponseText: "replicas"}},
		{"keywords in request line or bodies", store.TrailQuery{Keywords: "app-4242"}},
		{"one user's exchanges in the last day", store.TrailQuery{UserName: "user-7", From: base.Add(span - 24*time.Hour)}},
		{"one session", store.TrailQuery{SessionID: "bench-777"}},
		{"newest 50, no filter", store.TrailQuery{}},
		{"DELETEs whose response contains a rarer word", store.TrailQuery{Method: "DELETE", ResponseText: `"status":"ok"`}},
	}
	fmt.Printf("\n%-60s %8s %10s %10s\n", "query (limit 50, count up to 10,000)", "matches", "median ms", "max ms")
	for _, q := range queries {
		var times []time.Duration
		total := 0
		for range *reps {
			t0 := time.Now()
			_, n, _, err := st.SearchTrails(ctx, q.q)
			check(err)
			times = append(times, time.Since(t0))
			total = n
		}
		slices.Sort(times)
		fmt.Printf("%-60s %8d %10.1f %10.1f\n", q.name, total, ms(times[len(times)/2]), ms(times[len(times)-1]))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func openRaw(dsn string) (*sql.DB, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return sql.Open("pgx", dsn)
	}
	return sql.Open("sqlite", "file:"+dsn+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
}

// generate inserts n exchanges: 1,000 per session, 50 users, 20 targets, methods GET 60%, DELETE 10%, POST, PUT,
// PATCH, spread over 30 days, with JSON response bodies that name the deployment and, once in 100,000, a needle.
func generate(ctx context.Context, db *sql.DB, pg bool, n int) error {
	series := `WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i < $n - 1) `
	if pg {
		series = `WITH g(i) AS (SELECT generate_series(0, $n - 1)) `
	}
	ns := `CASE i % 5 WHEN 0 THEN 'prod' WHEN 1 THEN 'staging' WHEN 2 THEN 'dev' WHEN 3 THEN 'production' ELSE 'team-' || (i % 17) END`
	method := `CASE i % 10 WHEN 0 THEN 'DELETE' WHEN 1 THEN 'POST' WHEN 2 THEN 'PUT' WHEN 3 THEN 'PATCH' ELSE 'GET' END`
	path := `'/apis/apps/v1/namespaces/' || ` + ns + ` || '/deployments/app-' || (i % 10007)`
	resp := `'{"kind":"Deployment","metadata":{"name":"app-' || (i % 10007) || '"},"spec":{"replicas":' || (i % 7) || '}' ||
		CASE WHEN i % 100000 = 42 THEN ',"note":"Needle-' || (i / 100000 * 100000 + 424200 + 42) || '"' ELSE '' END || CASE WHEN i % 97 = 0 THEN ',"status":"ok"' ELSE '' END || '}'`
	q := series + `INSERT INTO trail_index (session_id, seq, request_id, started, duration_ms, user_id, user_name, target_id,
		target_name, client_address, method, scheme, host, path, query, status, decision, proto, websocket, request_line,
		request_text, response_text)
		SELECT 'bench-' || (i / 1000), i % 1000 + 1, 'req-' || i, $base + i * ($span / $n), 1.5, 'u' || (i % 50), 'user-' || (i % 50),
			't' || (i % 20), 'target-' || (i % 20), '10.0.' || (i % 50) || '.1', ` + method + `, 'https', 'k8s.example:6443',
			` + path + `, '', 200, 'allowed', 'HTTP/2', FALSE, ` + method + ` || ' k8s.example:6443' || ` + path + `, '', ` + resp + `
		FROM g`
	if !pg {
		q = strings.Replace(q, series, "", 1)
		q = strings.Replace(q, "SELECT 'bench-'", series+"SELECT 'bench-'", 1)
	}
	r := strings.NewReplacer("$n", fmt.Sprint(n), "$base", fmt.Sprint(base.UnixMicro()), "$span", fmt.Sprint(span.Microseconds()))
	_, err := db.ExecContext(ctx, r.Replace(q))
	return err
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "trailsearch:", err)
		os.Exit(1)
	}
}
