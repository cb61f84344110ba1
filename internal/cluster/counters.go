package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Counter defaults: events are counted over the last CounterWindow in buckets of CounterBucket, and each node
// sends its counts and reads the others' every CounterSync.
const (
	CounterWindow = time.Minute
	CounterBucket = 10 * time.Second
	CounterSync   = time.Second
	// counterKeys bounds the keys kept from the others, busiest first, so a spray of keys bounds memory.
	counterKeys = 10_000
)

// Counters counts events (bad proxy secrets from a source, say) for the cluster as a whole: Add counts one here at
// once, and Total is this node's count plus what the other nodes counted, as of their last sync (within about
// CounterSync). The hot path is a map lookup under a mutex, and only while anything was counted at all.
type Counters struct {
	Store *store.Store
	Node  string
	Log   *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	local   map[counterKey]int64 // by bucket, this node's, kept for the window
	pending map[counterKey]int64 // not sent yet
	others  map[string]int64     // scope+" "+dbKey(key) -> the others' total over the window
	any     atomic.Bool
}

type counterKey struct {
	scope, key string
	bucket     int64
}

func (c *Counters) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// dbKey is how a key is stored: a hash, since keys may hold bytes a text column refuses (a name and an address
// joined by NUL, say) and may be long.
func dbKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:16])
}

func bucketOf(t time.Time) int64 { return t.UnixNano() / int64(CounterBucket) }

// firstBucket is the oldest bucket still in the window at t.
func firstBucket(t time.Time) int64 { return bucketOf(t.Add(-CounterWindow)) + 1 }

// Add counts one event of scope and key.
func (c *Counters) Add(scope, key string) {
	k := counterKey{scope, key, bucketOf(c.now())}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.local == nil {
		c.local, c.pending = map[counterKey]int64{}, map[counterKey]int64{}
	}
	if len(c.pending) < counterKeys {
		c.pending[k]++
	}
	if len(c.local) < 4*counterKeys {
		c.local[k]++
	}
	c.any.Store(true)
}

// Active says whether anything was counted in the cluster lately; until then Total is always 0.
func (c *Counters) Active() bool { return c.any.Load() }

// Total is the number of events of scope and key over the window, on every node.
func (c *Counters) Total(scope, key string) int {
	if !c.any.Load() {
		return 0
	}
	first := firstBucket(c.now())
	shared := scope + " " + dbKey(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.others[shared]
	for b := first; b <= first+int64(CounterWindow/CounterBucket); b++ {
		n += c.local[counterKey{scope, key, b}]
	}
	return int(n)
}

// Run sends this node's counts and reads the others' every CounterSync until ctx is done.
func (c *Counters) Run(ctx context.Context) {
	t := time.NewTicker(CounterSync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.Sync(ctx); err != nil && ctx.Err() == nil && c.Log != nil {
				c.Log.Warn("sharing limiter counts failed; limits hold per node until it works again", "err", err)
			}
		}
	}
}

// Sync sends the pending counts, reads the other nodes' and forgets buckets that left the window.
func (c *Counters) Sync(ctx context.Context) error {
	now := c.now()
	first := firstBucket(now)
	c.mu.Lock()
	var batch []store.Count
	sent := c.pending
	for k, n := range c.pending {
		batch = append(batch, store.Count{Scope: k.scope, Key: dbKey(k.key), Bucket: k.bucket, N: n})
	}
	c.pending = map[counterKey]int64{}
	for k := range c.local {
		if k.bucket < first {
			delete(c.local, k)
		}
	}
	c.mu.Unlock()
	if err := c.Store.AddCounts(ctx, c.Node, batch); err != nil {
		c.mu.Lock()
		for k, n := range sent { // try again next round
			c.pending[k] += n
		}
		c.mu.Unlock()
		return err
	}
	counts, err := c.Store.OtherCounts(ctx, c.Node, first, counterKeys)
	if err != nil {
		return err
	}
	others := make(map[string]int64, len(counts))
	for _, o := range counts {
		others[o.Scope+" "+o.Key] = o.N
	}
	c.mu.Lock()
	c.others = others
	c.any.Store(len(others) > 0 || len(c.local) > 0)
	c.mu.Unlock()
	return nil
}

// Forget deletes counts that left the window from the database; a leader's job.
func (c *Counters) Forget(ctx context.Context) {
	t := time.NewTicker(CounterWindow)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.Store.DeleteCountsBefore(ctx, firstBucket(c.now())-1); err != nil && ctx.Err() == nil && c.Log != nil {
				c.Log.Warn("forgetting old limiter counts failed", "err", err)
			}
		}
	}
}
