package cluster_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/cluster"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/testpg"
)

// TestClaimDuplicateID pins what happens when two processes run with one node id (a copied data dir): while the
// first heartbeats, the second refuses with an error naming the id; once the first stops cleanly the id is free;
// when the first dies without a word (its heartbeat stops), the second takes the id over after the timeout, and
// the first, should it come back, learns from its next heartbeat that the id is taken and gives up its sessions.
func TestClaimDuplicateID(t *testing.T) {
	dsn := testpg.New(t)
	master := make([]byte, 32)
	rand.Read(master)
	keys, _ := secrets.NewKeyring(master)
	const timeout = 2 * time.Second
	newNode := func() *cluster.Node {
		return &cluster.Node{Store: openStore(t, dsn, keys), ID: "twin", Timeout: timeout, APIAddress: "10.0.0.1:8443"}
	}
	ctx := context.Background()

	first := newNode()
	if err := first.Claim(ctx); err != nil {
		t.Fatal(err)
	}
	if err := first.Register(ctx); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { first.Run(runCtx); close(done) }()

	err := newNode().Claim(ctx)
	var dup *cluster.DuplicateError
	if !errors.As(err, &dup) || dup.ID != "twin" || !strings.Contains(err.Error(), `"twin"`) || !strings.Contains(err.Error(), "10.0.0.1:8443") {
		t.Fatalf("second process with the id of a live node: err = %v, want a DuplicateError naming the id and the other's address", err)
	}

	// A clean stop frees the id at once.
	stop()
	<-done
	second := newNode()
	cctx, cancel := context.WithTimeout(ctx, timeout/2) // shorter than the timeout: no waiting on a free id
	err = second.Claim(cctx)
	cancel()
	if err != nil {
		t.Fatalf("claiming the id after a clean stop: %v", err)
	}

	// second dies without removing its row: its last heartbeat stays. A third process waits out the timeout and
	// takes over.
	var closed atomic.Bool
	second.OnDeclaredDead = func(context.Context) { closed.Store(true) }
	if err := second.Register(ctx); err != nil {
		t.Fatal(err)
	}
	third := newNode()
	if err := third.Claim(ctx); err != nil {
		t.Fatalf("taking over the id of a process whose heartbeat stopped: %v", err)
	}
	if err := third.Register(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := second.Store.Heartbeat(ctx, store.Node{ID: "twin", Instance: "not-the-holder", Heartbeat: time.Now()}); !errors.Is(err, store.ErrNodeTaken) {
		t.Errorf("heartbeat of a process that lost the id: err = %v, want ErrNodeTaken", err)
	}
	// The old process, resumed, finds out at its next heartbeat and closes what it serves.
	rctx, rstop := context.WithCancel(ctx)
	rdone := make(chan struct{})
	go func() { second.Run(rctx); close(rdone) }()
	eventually(t, "the resumed process noticed the id was taken", func() bool { return second.Taken() && closed.Load() })
	rstop()
	<-rdone
	// Its stop must not remove the registration of the process that holds the id now.
	if n, err := third.Store.Node(ctx, "twin"); err != nil || !n.Heartbeat.After(time.Time{}) {
		t.Errorf("the holder's registration after the old process stopped: %+v, %v", n, err)
	}
	if third.Taken() {
		t.Error("the holder of the id thinks it was taken")
	}
}
