package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func TestCheckMasterKey(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		if err := e.S.CheckMasterKey(ctx); err != nil {
			t.Fatalf("first check: %v", err)
		}
		if err := e.reopen(t).CheckMasterKey(ctx); err != nil {
			t.Fatalf("same key again: %v", err)
		}
		other := make([]byte, secrets.MasterKeySize)
		rand.Read(other)
		keys, _ := secrets.NewKeyring(other)
		s, err := store.Open(ctx, e.DSN, keys, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.CheckMasterKey(ctx); !errors.Is(err, store.ErrWrongMasterKey) {
			t.Errorf("another key: err = %v, want ErrWrongMasterKey", err)
		}
	})
}

func TestCooldowns(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Microsecond)
		cred, user := store.CooldownCredential("c1"), store.CooldownUser("u1")
		if err := e.S.SetCooldown(ctx, now.Add(time.Minute), cred, user); err != nil {
			t.Fatal(err)
		}
		// A shorter cool-down never cuts a longer one short.
		if err := e.S.SetCooldown(ctx, now.Add(time.Second), cred); err != nil {
			t.Fatal(err)
		}
		got, err := e.S.CooldownsOf(ctx, now, cred, "credential:other")
		if err != nil || len(got) != 1 || !got[cred].Equal(now.Add(time.Minute)) {
			t.Errorf("CooldownsOf = %v, %v; want only %s until %v", got, err, cred, now.Add(time.Minute))
		}
		if got, _ := e.S.CooldownsOf(ctx, now, "credential:other"); len(got) != 0 {
			t.Errorf("an unrelated subject cools down: %v", got)
		}
		all, err := e.S.Cooldowns(ctx, now)
		if err != nil || len(all) != 2 {
			t.Errorf("Cooldowns = %v, %v", all, err)
		}
		if err := e.S.DeleteExpiredCooldowns(ctx, now.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if all, _ := e.S.Cooldowns(ctx, now); len(all) != 0 {
			t.Errorf("after the cool-downs ended: %v", all)
		}
	})
}

func TestNodesAndReaping(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		now := time.Now()
		old := now.Add(-time.Minute)
		for _, n := range []store.Node{{ID: "live", Started: now, Heartbeat: now}, {ID: "dead", Started: old, Heartbeat: old}, {ID: "self", Started: old, Heartbeat: old}} {
			if registered, err := e.S.Heartbeat(ctx, n); err != nil || registered {
				t.Fatalf("first heartbeat of %s: %v %v", n.ID, registered, err)
			}
		}
		if registered, err := e.S.Heartbeat(ctx, store.Node{ID: "live", Started: now, Heartbeat: now}); err != nil || !registered {
			t.Errorf("second heartbeat: registered %v, %v", registered, err)
		}
		for i, node := range []string{"live", "dead", "self"} {
			s := &store.APISession{ID: node + "-s", Key: node, ClientAddress: "127.0.0.1", Status: store.SessionConnected,
				Connected: now, LastActivity: now, NodeID: node}
			if err := e.S.InsertSession(ctx, s); err != nil {
				t.Fatal(i, err)
			}
		}
		ids, err := e.S.ReapNodes(ctx, "self", now.Add(-10*time.Second), now)
		if err != nil || len(ids) != 1 || ids[0] != "dead-s" {
			t.Fatalf("ReapNodes = %v, %v; want only the dead node's session", ids, err)
		}
		for id, want := range map[string]string{"live-s": store.SessionConnected, "dead-s": store.SessionDisconnected, "self-s": store.SessionConnected} {
			if s, err := e.S.Session(ctx, id); err != nil || s.Status != want {
				t.Errorf("%s: %+v %v, want %s", id, s, err, want)
			}
		}
		nodes, _ := e.S.Nodes(ctx)
		if len(nodes) != 2 {
			t.Errorf("nodes after reaping: %+v", nodes)
		}
		// A restart of "live" recovers its own session only.
		if ids, err := e.S.MarkNodeInterrupted(ctx, "live", now); err != nil || len(ids) != 1 || ids[0] != "live-s" {
			t.Errorf("MarkNodeInterrupted = %v, %v", ids, err)
		}
		if s, _ := e.S.Session(ctx, "self-s"); s.Status != store.SessionConnected {
			t.Errorf("another node's session after a restart: %s", s.Status)
		}
		// A termination asked for self's session is listed for self only.
		if node, err := e.S.RequestTermination(ctx, "self-s", "by admin"); err != nil || node != "self" {
			t.Fatalf("RequestTermination = %q, %v", node, err)
		}
		if _, err := e.S.RequestTermination(ctx, "dead-s", "x"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("terminating a closed session: %v", err)
		}
		reqs, err := e.S.TerminationRequests(ctx, "self")
		if err != nil || len(reqs) != 1 || reqs[0].Reason != "by admin" {
			t.Errorf("TerminationRequests = %+v, %v", reqs, err)
		}
		if reqs, _ := e.S.TerminationRequests(ctx, "live"); len(reqs) != 0 {
			t.Errorf("another node's requests listed: %+v", reqs)
		}
	})
}

func TestTrailCopy(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		if _, err := e.S.Trail(ctx, "none"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("missing trail: %v", err)
		}
		data := make([]byte, 2<<20+12345) // three chunks
		rand.Read(data)
		if err := e.S.PutTrail(ctx, "s1", bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		// Copying again (a retried close) replaces the copy.
		if err := e.S.PutTrail(ctx, "s1", bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		r, err := e.S.Trail(ctx, "s1")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("trail read back: %d bytes, %v; want %d identical bytes", len(got), err, len(data))
		}
		if err := e.S.DeleteTrail(ctx, "s1"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.S.Trail(ctx, "s1"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("after DeleteTrail: %v", err)
		}
	})
}

// TestExclusiveAndLead pins that an Exclusive section runs in one process at a time, and that exactly one of two
// stores leads and the other takes over when the leader stops.
func TestExclusiveAndLead(t *testing.T) {
	e := newEnv(t, true)
	other := e.reopen(t)
	ctx := context.Background()
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for _, s := range []*store.Store{e.S, other, e.S, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Exclusive(ctx, "test", func(context.Context) error {
				n := inside.Add(1)
				if n > most.Load() {
					most.Store(n)
				}
				time.Sleep(20 * time.Millisecond)
				inside.Add(-1)
				return nil
			})
		}()
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Errorf("%d sections ran at once", most.Load())
	}

	var leaders atomic.Int32
	lead := func(s *store.Store, ctx context.Context, led chan<- struct{}) {
		s.Lead(ctx, "test", 50*time.Millisecond, func(lctx context.Context) {
			if leaders.Add(1) != 1 {
				t.Error("two leaders at once")
			}
			led <- struct{}{}
			<-lctx.Done()
			leaders.Add(-1)
		})
	}
	ctxA, stopA := context.WithCancel(ctx)
	ctxB, stopB := context.WithCancel(ctx)
	defer stopB()
	ledA, ledB := make(chan struct{}, 1), make(chan struct{}, 1)
	doneA := make(chan struct{})
	go func() { lead(e.S, ctxA, ledA); close(doneA) }()
	<-ledA
	go lead(other, ctxB, ledB)
	select {
	case <-ledB:
		t.Fatal("a second store led while the first held the lead")
	case <-time.After(300 * time.Millisecond):
	}
	stopA()
	<-doneA
	select {
	case <-ledB:
	case <-time.After(10 * time.Second):
		t.Fatal("the second store did not take the lead after the first stopped")
	}
}

func TestLimiterCounts(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		add := func(node string, c ...store.Count) {
			if err := e.S.AddCounts(ctx, node, c); err != nil {
				t.Fatal(err)
			}
		}
		add("a", store.Count{Scope: "s", Key: "ip:1", Bucket: 10, N: 3}, store.Count{Scope: "s", Key: "ip:2", Bucket: 10, N: 1})
		add("a", store.Count{Scope: "s", Key: "ip:1", Bucket: 10, N: 2}) // adds up
		add("b", store.Count{Scope: "s", Key: "ip:1", Bucket: 11, N: 4}, store.Count{Scope: "s", Key: "ip:1", Bucket: 5, N: 100})
		got, err := e.S.OtherCounts(ctx, "c", 10, 100)
		if err != nil || len(got) != 2 || got[0].Key != "ip:1" || got[0].N != 9 || got[1].N != 1 {
			t.Errorf("counts seen by node c = %+v, %v; want ip:1=9 (old bucket left out), ip:2=1", got, err)
		}
		if got, _ := e.S.OtherCounts(ctx, "a", 10, 100); len(got) != 1 || got[0].N != 4 {
			t.Errorf("counts seen by node a = %+v; want only b's 4", got)
		}
		if err := e.S.DeleteCountsBefore(ctx, 11); err != nil {
			t.Fatal(err)
		}
		if got, _ := e.S.OtherCounts(ctx, "c", 0, 100); len(got) != 1 || got[0].N != 4 {
			t.Errorf("after forgetting old buckets: %+v", got)
		}
	})
}
