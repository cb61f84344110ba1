package limits

import (
	"sync"
	"sync/atomic"
	"time"
)

// Bucket is a token bucket: Allow takes a token, and tokens come back at Rate per second up to Burst. A zero
// Rate allows everything. Set the fields before first use; methods are safe for concurrent use.
type Bucket struct {
	// Rate is tokens per second; 0 means unlimited.
	Rate float64
	// Burst is the most tokens held; below 1 means max(Rate, 1).
	Burst float64
	// Now returns the current time; nil means time.Now. Tests set a fake clock.
	Now func() time.Time

	mu      sync.Mutex
	tokens  float64
	last    time.Time
	started bool
	refused atomic.Int64
}

// Allow takes a token if one is there.
func (b *Bucket) Allow() bool {
	if b == nil || b.Rate <= 0 {
		return true
	}
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	t := now()
	burst := b.Burst
	if burst < 1 {
		burst = max(b.Rate, 1)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.started {
		b.started, b.tokens, b.last = true, burst, t
	}
	if d := t.Sub(b.last); d > 0 {
		b.tokens = min(burst, b.tokens+d.Seconds()*b.Rate)
		b.last = t
	}
	if b.tokens < 1 {
		b.refused.Add(1)
		return false
	}
	b.tokens--
	return true
}

// Refused counts the calls to Allow that found no token.
func (b *Bucket) Refused() int64 { return b.refused.Load() }
