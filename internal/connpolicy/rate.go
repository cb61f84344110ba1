package connpolicy

import (
	"sync"
	"time"
)

// RateCounter counts connections per policy over a sliding minute. It outlives snapshots, so a commit does not
// reset a policy's count. It is safe for concurrent use.
type RateCounter struct {
	// Shared, if set, counts for every node of a cluster instead of this counter's own memory, so that a limit
	// holds for the cluster as a whole; set it before the first use.
	Shared SharedCounts

	now func() time.Time
	mu  sync.Mutex
	hit map[string][]time.Time
}

// SharedCounts counts events over the last minute on every node of a cluster.
type SharedCounts interface {
	Add(scope, key string)
	Total(scope, key string) int
}

// scopeConnections is the SharedCounts scope of connections admitted by a rate-limited policy, by policy key.
const scopeConnections = "connection-policy"

// NewRateCounter returns a counter on the clock now (nil means time.Now).
func NewRateCounter(now func() time.Time) *RateCounter {
	if now == nil {
		now = time.Now
	}
	return &RateCounter{now: now, hit: map[string][]time.Time{}}
}

// allow counts one connection for key if fewer than limit were counted in the last minute.
func (r *RateCounter) allow(key string, limit int) bool {
	if r.Shared != nil {
		// The other nodes' counts are as of their last sync, a second or so ago.
		if r.Shared.Total(scopeConnections, key) >= limit {
			return false
		}
		r.Shared.Add(scopeConnections, key)
		return true
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	list := r.hit[key]
	i := 0
	for i < len(list) && now.Sub(list[i]) >= time.Minute {
		i++
	}
	list = list[i:]
	if len(list) >= limit {
		r.hit[key] = list
		return false
	}
	r.hit[key] = append(list, now)
	return true
}
