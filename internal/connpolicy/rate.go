package connpolicy

import (
	"sync"
	"time"
)

// RateCounter counts connections per policy over a sliding minute. It outlives snapshots, so a commit does not
// reset a policy's count. It is safe for concurrent use.
type RateCounter struct {
	now func() time.Time
	mu  sync.Mutex
	hit map[string][]time.Time
}

// NewRateCounter returns a counter on the clock now (nil means time.Now).
func NewRateCounter(now func() time.Time) *RateCounter {
	if now == nil {
		now = time.Now
	}
	return &RateCounter{now: now, hit: map[string][]time.Time{}}
}

// allow counts one connection for key if fewer than limit were counted in the last minute.
func (r *RateCounter) allow(key string, limit int) bool {
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
