package e2e_test

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/cluster"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/testpg"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestClusterRetentionSweepsEveryNode pins that retention, which runs on one node, deletes the local trail files of
// the sessions it deleted on every node: sessions recorded on node B and deleted by node A's retention run lose
// their files on B's disk, announced on the change feed. A session under a legal hold keeps its file, and so does a
// trail whose session the database merely lacks (no tombstone): a node never deletes evidence it was not told to.
func TestClusterRetentionSweepsEveryNode(t *testing.T) {
	f := newFixture(t, testserver.Options{Postgres: true})
	b := f.joinNode(t)
	viaB := f.clientVia(t, b)
	hello := "https://" + f.https.HostPort + "/api/hello"
	onB := func(id string) string { return filepath.Join(b.Cfg.DataDir, "recordings", id+".trail") }

	ids := map[string]string{}
	for _, name := range []string{"old", "held"} {
		c := f.credential(f.alpha, "sweep-"+name, nil)
		within(t, "node B serving the new credential", 3*time.Second, func() bool {
			st, _ := f.do(viaB, "GET", hello, c.Secret, "")
			return st == 200
		})
		ids[name] = f.session(c.ID)
		f.gh.JSON("POST", connsAPI+"/terminate/connection/"+ids[name], f.adm, nil, http.StatusOK, nil)
		f.waitConnection(c.ID, func(cn connection) bool { return cn.Status == "TERMINATED" })
		if _, err := os.Stat(onB(ids[name])); err != nil {
			t.Fatalf("the session recorded on node B has no trail on B's disk: %v", err)
		}
	}
	f.gh.JSON("PUT", connsAPI+"/connections/"+ids["held"]+"/legal-hold", f.adm, map[string]any{"hold": true, "reason": "case 9"}, http.StatusOK, nil)
	// A trail file whose session the database does not know, as after restoring an older backup.
	stray := onB("stray-session-1")
	if err := os.WriteFile(stray, []byte("evidence"), 0o600); err != nil {
		t.Fatal(err)
	}

	a := newCfgAdmin(t, f.gh)
	a.edit("/api/configuration/http/options", func(b map[string]any) {
		b["channel_database_cleanup"] = map[string]any{"enabled": true, "days": 30}
	})
	a.commit()
	job := f.gh.Server.Retention()
	job.Now = func() time.Time { return time.Now().Add(31 * 24 * time.Hour) }
	res := job.Tick(context.Background())
	if res.Err != nil || !slices.Contains(res.Deleted[""], ids["old"]) || slices.Contains(res.Deleted[""], ids["held"]) {
		t.Fatalf("retention on node A: deleted %v (%v), want %s and not the held %s", res.Deleted, res.Err, ids["old"], ids["held"])
	}
	within(t, "node B deleted its local trail of the deleted session", 5*time.Second, func() bool {
		_, err := os.Stat(onB(ids["old"]))
		return os.IsNotExist(err)
	})
	// The periodic sweep finds nothing more to delete.
	if del, err := b.Server.TrailSweep().Tick(context.Background()); err != nil || len(del) != 0 {
		t.Errorf("a second sweep on node B deleted %v (%v), want nothing", del, err)
	}
	for what, path := range map[string]string{"held": onB(ids["held"]), "stray": stray} {
		if _, err := os.Stat(path); err != nil {
			t.Errorf("the %s trail on node B is gone: %v", what, err)
		}
	}
	if n, ok := trailThrough(t, b, b.AdminToken(), ids["held"]); n != 1 || !ok {
		t.Errorf("held trail through node B: %d exchanges, verified %v", n, ok)
	}
}

// TestClusterDuplicateNodeID starts a second node from a copy of a running node's data dir: it refuses to start,
// naming the node id and what to do, and closes none of the first node's sessions; once the first stops, the copy
// starts as that node.
func TestClusterDuplicateNodeID(t *testing.T) {
	f := newFixture(t, testserver.Options{Postgres: true})
	c := f.credential(f.alpha, "twin", nil)
	hc := f.client(false)
	if st, _ := f.do(hc, "GET", "https://"+f.https.HostPort+"/api/hello", c.Secret, ""); st != 200 {
		t.Fatalf("request through node A: %d", st)
	}
	id := f.session(c.ID)

	copied := t.TempDir()
	b, err := os.ReadFile(filepath.Join(f.gh.Cfg.DataDir, cluster.IDFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(copied, cluster.IDFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := f.gh.Cfg
	cfg.DataDir, cfg.MasterKeyFile = copied, filepath.Join(f.gh.Cfg.DataDir, "master.key")
	cfg.APIListen, cfg.ProxyListen = "127.0.0.1:0", "127.0.0.1:0"
	srv, err := server.New(context.Background(), &cfg, server.Options{})
	if err == nil {
		srv.Close(context.Background())
		t.Fatal("a second node with a running node's id started")
	}
	nodeID := f.gh.Server.NodeID()
	if !strings.Contains(err.Error(), `"`+nodeID+`"`) || !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), cluster.IDFile) {
		t.Fatalf("refusal = %v, want the node id %q, that it is in use, and the %s file", err, nodeID, cluster.IDFile)
	}
	t.Logf("refusal: %v", err)
	if _, ok := f.gh.Server.Sessions().Live(id); !ok {
		t.Error("the refused copy closed a session of the running node")
	}
	if cn := f.waitConnection(c.ID, func(connection) bool { return true }); cn.Status != "CONNECTED" {
		t.Errorf("the running node's session after the refused start: %s", cn.Status)
	}

	// Stopped cleanly, the first node frees its id: the copy starts as that node.
	hc.CloseIdleConnections()
	f.gh.Stop()
	second := testserver.Start(t, testserver.Options{Configure: func(c *config.Config) { *c = cfg }})
	if second.Server.NodeID() != nodeID {
		t.Errorf("the copy runs as %q, want %q", second.Server.NodeID(), nodeID)
	}
}

// TestClusterPoolCap runs a node with --db-max-conns 2 under parallel API requests and counts its connections in
// pg_stat_activity (by the application_name of its URL): never more than the pool plus the change feed's and the
// leader's dedicated connections.
func TestClusterPoolCap(t *testing.T) {
	dsn := testpg.New(t)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	gh := testserver.Start(t, testserver.Options{Configure: func(c *config.Config) {
		c.DB, c.DBMaxConns = dsn+sep+"application_name=gatehouse-pool-e2e", 2
		c.MetricsListen = "127.0.0.1:0"
	}})
	if got := gh.Server.Store().PoolStats().MaxOpenConnections; got != 2 {
		t.Fatalf("pool of the node: %d connections, want --db-max-conns 2", got)
	}
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	count := func() int {
		var n int
		if err := raw.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gatehouse-pool-e2e'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	within(t, "the node leads and follows the feed", 10*time.Second, func() bool { return gh.Server.Leading() && count() >= 2 })
	tok := gh.AdminToken()
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var ok atomic.Int64
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if st, _ := gh.Do("GET", usersAPI+"/users?limit=50", tok, nil); st == http.StatusOK {
					ok.Add(1)
				}
			}
		}()
	}
	most := 0
	for range 50 {
		most = max(most, count())
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	wg.Wait()
	t.Logf("%d API answers; at most %d connections of the node at once (pool 2, feed 1, lead 1)", ok.Load(), most)
	if most > 2+2 {
		t.Errorf("%d connections of the node in pg_stat_activity, want at most 4 (pool 2 + feed + lead)", most)
	}
	if ok.Load() == 0 {
		t.Error("no API request succeeded under the cap")
	}
	// The pool's use is on /metrics, so an operator sees queueing before requests slow down.
	resp, err := http.Get("http://" + gh.Server.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"gatehouse_db_max_connections 2\n", `gatehouse_db_connections{state="in_use"}`, "gatehouse_db_waits_total ", "gatehouse_db_wait_seconds_total "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
