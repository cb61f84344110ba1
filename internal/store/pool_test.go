package store_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TestPoolCap pins the PostgreSQL connection cap: under more parallel queries than the pool holds, the server sees
// no more of the store's connections than the cap (counted in pg_stat_activity by the application_name of its
// URL), the queries beyond it wait instead of opening more, and a query waiting for a connection gives up
// when its context ends instead of hanging.
func TestPoolCap(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	const limit, name = 3, "pool-test"
	sep := "?"
	if strings.Contains(e.DSN, "?") {
		sep = "&"
	}
	s, err := store.OpenPool(ctx, e.DSN+sep+"application_name="+name, e.Keys, nil, store.Pool{MaxConns: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.PoolLimits(); got.MaxConns != limit || got.MaxIdleConns != limit || got.ConnMaxLifetime != store.DefaultConnMaxLifetime {
		t.Fatalf("PoolLimits = %+v, want %d connections, as many idle, the default lifetime", got, limit)
	}
	conns := func(app string) int {
		var n int
		if err := e.Raw.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1`,
			app).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	appConns := func() int { return conns(name) }
	// A URL without application_name gets the default, so an operator can count a node's connections.
	if conns(store.DefaultApplicationName) == 0 {
		t.Errorf("no connection named %q: the default application_name is not set", store.DefaultApplicationName)
	}

	// Hold the nodes table locked from the raw connection: every store query on it blocks in the server, keeping
	// its pooled connection busy, so the load is certain to saturate the pool.
	tx, err := e.Raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`LOCK TABLE nodes IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	const parallel = 20
	lctx, cancel := context.WithTimeout(ctx, 60*time.Second) // bounds the test should the lock never be released
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, parallel)
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Nodes(lctx)
			errs <- err
		}()
	}
	waitUntil(t, "the pool saturated", func() bool { return s.PoolStats().InUse >= limit })
	// Give the others every chance to open more connections than allowed: a few rounds of the monitor.
	for range 20 {
		if n := appConns(); n > limit {
			t.Fatalf("%d connections of the store in pg_stat_activity, cap %d", n, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.PoolStats().WaitCount == 0 {
		t.Fatal("no query waited for a connection under more parallel queries than the cap")
	}
	if n := appConns(); n != limit {
		t.Fatalf("%d connections of the store in pg_stat_activity under load, want exactly the cap %d", n, limit)
	}

	// Waiting for a connection honours the caller's context.
	wctx, wcancel := context.WithTimeout(ctx, 200*time.Millisecond)
	waits := s.PoolStats().WaitCount
	_, err = s.Nodes(wctx)
	wcancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("query on a saturated pool: err = %v, want the context's deadline", err)
	}
	if s.PoolStats().WaitCount <= waits {
		t.Fatal("the query did not wait for a connection; the test did not test the pool")
	}

	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a query that waited for a connection failed: %v", err)
		}
	}
	if st := s.PoolStats(); st.MaxOpenConnections != limit || st.OpenConnections > limit {
		t.Errorf("pool stats %+v, want at most %d open", st, limit)
	}
}

// waitUntil polls cond for a bounded time.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
