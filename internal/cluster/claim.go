package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// DuplicateError is Claim's refusal: another process runs with this node's id, as when a data dir (with its
// node-id file) was copied to start a second node.
type DuplicateError struct {
	ID string
	// Other is the registration of the process holding the id.
	Other store.Node
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("node id %q is in use by another running process (api %s, proxy %s, heartbeat %s): two nodes must not share "+
		"a node id; a copied data dir keeps it in %s, so delete that file on one of them to draw a new id",
		e.ID, orNone(e.Other.APIAddress), orNone(e.Other.ProxyAddress), e.Other.Heartbeat.Format(time.RFC3339), IDFile)
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// Claim makes this process the one that runs as node n.ID, before it touches any session: a node restarting
// after a stop recovers its own sessions, and a second process with the same id must not close or serve the
// first one's. On a clustered store, if another process's heartbeat for the id is fresh, Claim watches it: a
// heartbeat that moves on means that process is alive, and Claim returns a *DuplicateError; one that stays put
// until the timeout passes belongs to a process that died (a crash and quick restart of this very node), and Claim
// takes the id over. On SQLite, whose database one process owns, it takes the id at once. ctx bounds the wait.
func (n *Node) Claim(ctx context.Context) error {
	var r [16]byte
	rand.Read(r[:])
	n.instance = hex.EncodeToString(r[:])
	n.started = n.now()
	poll := max(n.timeout()/16, 50*time.Millisecond)
	var seen *store.Node
	for {
		me := n.self()
		prev, err := n.Store.Node(ctx, n.ID)
		var claimed bool
		switch {
		case errors.Is(err, store.ErrNotExist):
			claimed, err = n.Store.ClaimNode(ctx, me, nil)
		case err != nil:
		case !n.Store.Clustered() || me.Heartbeat.Sub(prev.Heartbeat) > n.timeout():
			if claimed, err = n.Store.ClaimNode(ctx, me, &prev); claimed && n.Store.Clustered() && prev.Instance != "" {
				n.log().Warn("took over the node id from a process whose heartbeat had stopped", "node", n.ID, "last_heartbeat", prev.Heartbeat)
			}
		case seen != nil && (prev.Instance != seen.Instance || !prev.Heartbeat.Equal(seen.Heartbeat)):
			return &DuplicateError{ID: n.ID, Other: prev}
		case seen == nil:
			seen = &prev
			n.log().Warn("another process's heartbeat for this node id is recent; waiting to see whether it is alive",
				"node", n.ID, "last_heartbeat", prev.Heartbeat, "timeout", n.timeout())
		}
		if err != nil {
			return fmt.Errorf("claim node id %s: %w", n.ID, err)
		}
		if claimed {
			return nil
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("claim node id %s: %w", n.ID, ctx.Err())
		case <-t.C:
		}
	}
}
