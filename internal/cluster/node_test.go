package cluster_test

import (
	"context"
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/cluster"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/storetest"
	"github.com/gatehouse-dev/gatehouse/internal/testpg"
)

func TestMain(m *testing.M) { testpg.Main(m) }

func openStore(t *testing.T, dsn string, keys *secrets.Keyring) *store.Store {
	return storetest.Open(t, dsn, keys)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s: not within the bound", what)
}

// TestChangeFeed pins that an announcement by one node runs the matching hook on another node, that a node ignores
// its own announcements, and that a clean stop removes the node's registration.
func TestChangeFeed(t *testing.T) {
	dsn := testpg.New(t)
	master := make([]byte, 32)
	rand.Read(master)
	keys, _ := secrets.NewKeyring(master)
	var changesA, changesB, terminatesB atomic.Int32
	a := &cluster.Node{Store: openStore(t, dsn, keys), ID: "a", OnChange: func(context.Context) { changesA.Add(1) }}
	b := &cluster.Node{Store: openStore(t, dsn, keys), ID: "b", OnChange: func(context.Context) { changesB.Add(1) },
		OnTerminate: func(context.Context) { terminatesB.Add(1) }}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for _, n := range []*cluster.Node{a, b} {
		if err := n.Register(ctx); err != nil {
			t.Fatal(err)
		}
		go func() { n.Run(ctx); done <- struct{}{} }()
	}
	// Each node reloads once when its feed connects (it may have missed announcements before).
	eventually(t, "both feeds connected", func() bool {
		return changesA.Load() >= 1 && changesB.Load() >= 1 && terminatesB.Load() >= 1
	})
	baseA, baseB := changesA.Load(), changesB.Load()
	a.Publish(ctx, cluster.TopicChange)
	eventually(t, "node b applied node a's change", func() bool { return changesB.Load() > baseB })
	a.Publish(ctx, cluster.TopicTerminate)
	eventually(t, "node b applied node a's termination request", func() bool { return terminatesB.Load() >= 2 })
	// b's own announcement reaches a and not b itself; a's hook count moving proves delivery happened.
	b.Publish(ctx, cluster.TopicChange)
	eventually(t, "node a applied node b's change", func() bool { return changesA.Load() > baseA })
	// Notifications arrive in order: once b has seen a's next change, it has seen (and ignored) its own.
	a.Publish(ctx, cluster.TopicChange)
	eventually(t, "node b applied node a's second change", func() bool { return changesB.Load() >= baseB+2 })
	time.Sleep(50 * time.Millisecond) // let a wrongly delivered own announcement show
	if got := changesB.Load(); got != baseB+2 {
		t.Errorf("node b ran its change hook %d times after two foreign changes, want %d (its own must be ignored)", got, baseB+2)
	}
	stop()
	<-done
	<-done
	nodes, err := a.Store.Nodes(context.Background())
	if err != nil || len(nodes) != 0 {
		t.Errorf("nodes after a clean stop: %+v, %v", nodes, err)
	}
}

func TestLoadOrCreateID(t *testing.T) {
	dir := t.TempDir()
	id, err := cluster.LoadOrCreateID(dir)
	if err != nil || id == "" {
		t.Fatalf("first: %q %v", id, err)
	}
	again, err := cluster.LoadOrCreateID(dir)
	if err != nil || again != id {
		t.Errorf("second: %q %v, want %q", again, err, id)
	}
	if other, _ := cluster.LoadOrCreateID(t.TempDir()); other == id {
		t.Errorf("two data dirs got the same id %q", id)
	}
}

// TestCountersShared pins that counts added on one node reach another's Total after both sync, whatever bytes the
// key holds (a name and an address joined by NUL, which a text column refuses), and that they leave the window.
func TestCountersShared(t *testing.T) {
	dsn := testpg.New(t)
	master := make([]byte, 32)
	rand.Read(master)
	keys, _ := secrets.NewKeyring(master)
	now := time.Now()
	clock := func() time.Time { return now }
	a := &cluster.Counters{Store: openStore(t, dsn, keys), Node: "a", Now: clock}
	b := &cluster.Counters{Store: openStore(t, dsn, keys), Node: "b", Now: clock}
	ctx := context.Background()
	key := "alice\x00198.51.100.7"
	for range 3 {
		a.Add("login-pair", key)
	}
	b.Add("login-pair", key)
	if got := a.Total("login-pair", key); got != 3 {
		t.Errorf("node a before any sync: %d, want its own 3", got)
	}
	for _, c := range []*cluster.Counters{a, b, a} {
		if err := c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.Total("login-pair", key); got != 4 {
		t.Errorf("node a after syncing: %d, want 4", got)
	}
	if got := b.Total("login-pair", key); got != 4 {
		t.Errorf("node b after syncing: %d, want 4", got)
	}
	if got := b.Total("login-source", key); got != 0 {
		t.Errorf("another scope: %d, want 0", got)
	}
	now = now.Add(2 * cluster.CounterWindow)
	for _, c := range []*cluster.Counters{a, b} {
		if err := c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.Total("login-pair", key); got != 0 {
		t.Errorf("after the window: %d, want 0", got)
	}
}
