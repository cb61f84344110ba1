package sessions

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/proxy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/storetest"
	"github.com/gatehouse-dev/gatehouse/internal/testpg"
)

func TestMain(m *testing.M) { testpg.Main(m) }

// engines opens one empty store per engine; the cluster's rules must hold on both.
func engines(t *testing.T) map[string]*store.Store {
	t.Helper()
	return storetest.Engines(t, storetest.Keys(t))
}

// node is a manager for one node of a cluster sharing st, on a fake clock.
func node(t *testing.T, st *store.Store, id string, c *clock) *Manager {
	t.Helper()
	m := New(st, nil, nil)
	m.Now, m.NodeID = c.now, id
	set := model.DefaultSettings()
	set.IdleSessionTimeout, set.MaxSessionLifetime, set.SessionCooldown = 60, 3600, 300
	m.Settings = func() model.Settings { return set }
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

func begin(t *testing.T, m *Manager, g *proxy.Grant, from string) (string, error) {
	t.Helper()
	ctx, r, err := m.Begin(context.Background(), g, netip.MustParseAddrPort(from))
	if err != nil {
		return "", err
	}
	r.End(0, 0, 200)
	return sessionOf(t, ctx).row.ID, nil
}

func wantCooldown(t *testing.T, err error, what string) {
	t.Helper()
	var d *proxy.DeniedError
	if !errors.As(err, &d) {
		t.Errorf("%s: err = %v, want a cool-down refusal", what, err)
	}
}

// TestCooldownBindsCredentialAndUserWhateverTheAddress pins the issue-9 weakness: after a terminate the same
// credential worked at once from 127.0.0.3. The cool-down binds the credential (terminate) and the user
// (terminate/user) from every address, on every node and across a restart.
func TestCooldownBindsCredentialAndUserWhateverTheAddress(t *testing.T) {
	for name, st := range engines(t) {
		t.Run(name, func(t *testing.T) {
			c := &clock{t: time.Now()}
			a := node(t, st, "node-a", c)
			early := node(t, st, "node-early", c) // started before the termination: it learns of it from the database
			id, err := begin(t, a, grant(false), "127.0.0.1:5000")
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Terminate(context.Background(), id, "by admin"); err != nil {
				t.Fatal(err)
			}
			_, err = begin(t, a, grant(false), "127.0.0.3:5000")
			wantCooldown(t, err, "same credential from 127.0.0.3 on the same node")
			_, err = begin(t, early, grant(false), "127.0.0.3:5000")
			wantCooldown(t, err, "same credential on a node that started before the termination")
			// What that node learnt binds the credential, not the user's other credentials.
			sibling := grant(false)
			sibling.Session.CredentialID = "c7"
			if _, err := begin(t, early, sibling, "127.0.0.3:5000"); err != nil {
				t.Errorf("the user's other credential after a terminate/connection: %v", err)
			}

			// Another node, which never saw the termination, and this node restarted: both read the database.
			b := node(t, st, "node-b", c)
			_, err = begin(t, b, grant(false), "127.0.0.3:5000")
			wantCooldown(t, err, "same credential from 127.0.0.3 on another node")
			restarted := node(t, st, "node-a", c)
			_, err = begin(t, restarted, grant(false), "127.0.0.4:5000")
			wantCooldown(t, err, "same credential after a restart")

			// The user's other credential is not bound by a connection's termination, but is by terminate/user.
			other := grant(false)
			other.Session.CredentialID, other.Session.CredentialName = "c2", "desktop"
			if _, err := begin(t, b, other, "127.0.0.5:5000"); err != nil {
				t.Fatalf("another credential of the user after terminate/connection: %v", err)
			}
			if n := a.TerminateUser(context.Background(), "u1", "by admin"); n != 2 {
				t.Errorf("terminate/user through node a ended %d sessions, want the ones on node b and node early", n)
			}
			third := grant(false)
			third.Session.CredentialID = "c3"
			_, err = begin(t, b, third, "127.0.0.6:5000")
			wantCooldown(t, err, "a third credential of the terminated user, on another node")

			// Once the cool-down is over the credential works again.
			c.advance(301 * time.Second)
			if _, err := begin(t, b, grant(false), "127.0.0.3:5000"); err != nil {
				t.Errorf("after the cool-down: %v", err)
			}
		})
	}
}

// TestTerminateThroughAnotherNode pins that a termination asked through a node that does not serve the session
// reaches the owner, and that a restarted node recovers only its own sessions.
func TestTerminateThroughAnotherNode(t *testing.T) {
	for name, st := range engines(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			c := &clock{t: time.Now()}
			a, b := node(t, st, "node-a", c), node(t, st, "node-b", c)
			id, err := begin(t, a, grant(false), "127.0.0.1:5000")
			if err != nil {
				t.Fatal(err)
			}
			other := grant(false)
			other.Session.UserID, other.Session.CredentialID = "u2", "c9"
			keep, err := begin(t, b, other, "127.0.0.2:5000")
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Terminate(ctx, id, "by admin via b"); err != nil {
				t.Fatalf("terminate through node b: %v", err)
			}
			// Node a acts on the request when the change feed (or its next round) tells it.
			if err := a.ApplyTerminationRequests(ctx); err != nil {
				t.Fatal(err)
			}
			if _, ok := a.Live(id); ok {
				t.Fatal("session still open on its node after a termination through another node")
			}
			waitStatus(t, st, id, store.SessionTerminated, "by admin via b")
			if err := b.Terminate(ctx, id, "again"); !errors.Is(err, ErrNotActive) {
				t.Errorf("terminating a closed session: err = %v, want ErrNotActive", err)
			}

			// Node a restarts: node b's session stays open.
			node(t, st, "node-a", c)
			row, err := st.Session(ctx, keep)
			if err != nil || row.Status != store.SessionConnected {
				t.Errorf("node b's session after node a restarted: %+v, %v", row, err)
			}
		})
	}
}
