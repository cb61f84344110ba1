// Package cluster makes one Gatehouse process a node of a cluster sharing one PostgreSQL database: it registers the
// node with a heartbeat, follows the change feed (LISTEN/NOTIFY) so that a change made through any node applies on
// every node within a second, and runs the cluster's background jobs on one node at a time under leadership. On
// SQLite the process is a cluster of one: nothing is announced and it always leads.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Topics of the change feed.
const (
	// TopicChange is any management write: policy, settings, credentials, roles, users, configuration commits.
	TopicChange = "change"
	// TopicCooldown is a new cool-down.
	TopicCooldown = "cooldown"
	// TopicTerminate is a termination asked for a session another node serves.
	TopicTerminate = "terminate"
	// TopicTrailsDeleted is a retention run that deleted sessions: every node deletes its local copies of their
	// trails.
	TopicTrailsDeleted = "trails-deleted"
)

// DefaultTimeout is how long a node's heartbeat may be missing before the others close its sessions.
const DefaultTimeout = 10 * time.Second

// Node is this process as a member of the cluster. Set the fields before Run; the hooks run on the feed's goroutine,
// one at a time per topic, and must not block for long.
type Node struct {
	Store *store.Store
	// ID names the node; see LoadOrCreateID.
	ID string
	// APIAddress and ProxyAddress are where other nodes and operators reach this node.
	APIAddress, ProxyAddress string
	// Timeout is how long a missing heartbeat takes to count as a dead node; zero means DefaultTimeout. Heartbeats
	// are sent four times per Timeout.
	Timeout time.Duration
	Log     *slog.Logger
	// OnChange reloads everything a management write may have changed (the policy snapshot, settings, connection
	// policies). OnCooldown and OnTerminate pick up cool-downs and termination requests; OnTrailsDeleted deletes
	// the local trails of sessions that retention deleted.
	OnChange, OnCooldown, OnTerminate, OnTrailsDeleted func(ctx context.Context)
	// OnDeclaredDead runs when a heartbeat finds that the others took this node for dead (it missed heartbeats
	// for longer than Timeout) and closed its sessions in the database: the node closes them too, so that what it
	// serves matches what the cluster shows and can terminate.
	OnDeclaredDead func(ctx context.Context)
	// Loops run on every node until the node stops.
	Loops []func(ctx context.Context)
	// Jobs run on one node of the cluster at a time, each until its context ends (the node lost the lead or is
	// stopping).
	Jobs []func(ctx context.Context)
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	started  time.Time
	instance string // this process, as the nodes table knows it; drawn by Claim
	kick     map[string]chan struct{}
	once     sync.Once
	leading  atomic.Bool
	taken    atomic.Bool
}

// Taken says whether another process took over this node's id while this one ran: /readyz then answers 503.
func (n *Node) Taken() bool { return n.taken.Load() }

// Leading says whether this node runs the cluster's jobs now.
func (n *Node) Leading() bool { return n.leading.Load() }

func (n *Node) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

func (n *Node) timeout() time.Duration {
	if n.Timeout > 0 {
		return n.Timeout
	}
	return DefaultTimeout
}

func (n *Node) log() *slog.Logger {
	if n.Log != nil {
		return n.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Publish announces a change to the other nodes. This node has already applied it, so it ignores its own
// announcements. A failure is logged: the periodic reload still carries the change, only later.
func (n *Node) Publish(ctx context.Context, topic string) {
	if err := n.Store.Notify(ctx, n.ID+" "+topic); err != nil {
		n.log().Warn("announcing a change to the cluster failed; other nodes see it at their next reload", "topic", topic, "err", err)
	}
}

// Register records the node and its first heartbeat; Claim it first.
func (n *Node) Register(ctx context.Context) error {
	if n.started.IsZero() {
		n.started = n.now()
	}
	_, err := n.Store.Heartbeat(ctx, n.self())
	return err
}

func (n *Node) self() store.Node {
	return store.Node{ID: n.ID, APIAddress: n.APIAddress, ProxyAddress: n.ProxyAddress, Started: n.started, Heartbeat: n.now(),
		Instance: n.instance}
}

// Run sends heartbeats, follows the change feed and takes part in leadership until ctx is done; then it removes
// the node's registration, as a clean stop.
func (n *Node) Run(ctx context.Context) {
	n.once.Do(func() {
		n.kick = map[string]chan struct{}{}
		for _, t := range []string{TopicChange, TopicCooldown, TopicTerminate, TopicTrailsDeleted} {
			n.kick[t] = make(chan struct{}, 1)
		}
	})
	var wg sync.WaitGroup
	run := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	run(func() { n.heartbeats(ctx) })
	for _, loop := range n.Loops {
		run(func() { loop(ctx) })
	}
	for topic, hook := range map[string]func(context.Context){TopicChange: n.OnChange, TopicCooldown: n.OnCooldown,
		TopicTerminate: n.OnTerminate, TopicTrailsDeleted: n.OnTrailsDeleted} {
		run(func() { n.apply(ctx, topic, hook) })
	}
	run(func() {
		n.Store.Listen(ctx, time.Second, func() {
			// Whatever was announced while the feed was down is lost: catch up on everything.
			for _, ch := range n.kick {
				n.signal(ch)
			}
		}, n.receive)
	})
	if len(n.Jobs) > 0 {
		run(func() {
			n.Store.Lead(ctx, "jobs", n.timeout()/4, func(lctx context.Context) {
				n.leading.Store(true)
				defer n.leading.Store(false)
				var jobs sync.WaitGroup
				for _, job := range n.Jobs {
					jobs.Add(1)
					go func() { defer jobs.Done(); job(lctx) }()
				}
				jobs.Wait()
			})
		})
	}
	wg.Wait()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := n.Store.RemoveNode(rctx, n.ID, n.instance); err != nil {
		n.log().Warn("removing the node's registration failed; the others reap it after its heartbeat times out", "err", err)
	}
}

// receive handles one payload of the feed: "<node id> <topic>".
func (n *Node) receive(payload string) {
	from, topic, ok := strings.Cut(payload, " ")
	if !ok || from == n.ID {
		return
	}
	if ch := n.kick[topic]; ch != nil {
		n.signal(ch)
	}
}

// signal wakes a topic's worker; a burst of announcements while it works costs one more round, not one each.
func (n *Node) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (n *Node) apply(ctx context.Context, topic string, hook func(context.Context)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.kick[topic]:
			if hook != nil {
				hook(ctx)
			}
		}
	}
}

func (n *Node) heartbeats(ctx context.Context) {
	t := time.NewTicker(n.timeout() / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			hctx, cancel := context.WithTimeout(ctx, n.timeout()/2)
			registered, err := n.Store.Heartbeat(hctx, n.self())
			cancel()
			switch {
			case errors.Is(err, store.ErrNodeTaken):
				// Another process took the id over, judging this one dead (it was paused or cut off for longer
				// than the timeout) or running from a copy of its data dir: this process closes what it serves and
				// reports not ready (Taken), so that the balancer drains it.
				if !n.taken.Swap(true) {
					n.log().Error("another process runs as this node; closing this process's sessions and reporting not ready", "node", n.ID)
					if n.OnDeclaredDead != nil {
						n.OnDeclaredDead(ctx)
					}
				}
			case err != nil && ctx.Err() == nil:
				n.log().Warn("heartbeat failed", "err", err)
			case err == nil && !registered:
				n.log().Error("the cluster took this node for dead and closed its sessions; closing them here too")
				if n.OnDeclaredDead != nil {
					n.OnDeclaredDead(ctx)
				}
			}
		}
	}
}

// Reaper is a leader's job: it closes the sessions of nodes whose heartbeat stopped and forgets ended cool-downs.
func (n *Node) Reaper(ctx context.Context) {
	t := time.NewTicker(n.timeout() / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := n.now()
			ids, err := n.Store.ReapNodes(ctx, n.ID, now.Add(-n.timeout()), now)
			if err != nil && ctx.Err() == nil {
				n.log().Warn("reaping dead nodes failed", "err", err)
			}
			if len(ids) > 0 {
				n.log().Warn("closed the sessions of a node whose heartbeat stopped", "sessions", len(ids))
			}
			if err := n.Store.DeleteExpiredCooldowns(ctx, now); err != nil && ctx.Err() == nil {
				n.log().Warn("forgetting ended cool-downs failed", "err", err)
			}
		}
	}
}

// IDFile is the file in the data dir that keeps a node's id across restarts.
const IDFile = "node-id"

// LoadOrCreateID returns the node id kept in dataDir, creating a random one on first start. A node keeps its id
// across restarts so that it recovers its own sessions, and only those.
func LoadOrCreateID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, IDFile)
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if id == "" || len(id) > 64 {
			return "", fmt.Errorf("node id in %s: must be 1 to 64 characters", path)
		}
		return id, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("node id: %w", err)
	}
	host, _ := os.Hostname()
	if i := strings.IndexByte(host, '.'); i > 0 {
		host = host[:i]
	}
	var r [4]byte
	rand.Read(r[:])
	id := strings.Trim(host+"-"+hex.EncodeToString(r[:]), "-")
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("node id: %w", err)
	}
	return id, nil
}
