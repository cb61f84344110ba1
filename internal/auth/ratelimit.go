package auth

import (
	"sync"
	"time"
)

// FailureLimiter slows down password guessing: after Burst failures for one key (a source address or a username)
// within Window, further attempts for that key are refused until the window has passed. Successes do not reset
// the count, so an attacker cannot interleave a known-good login to keep guessing.
type FailureLimiter struct {
	// Burst is how many failures are allowed per window; zero means 5.
	Burst int
	// Window is the period failures are counted over; zero means one minute.
	Window time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Shared, if set, counts failures for every node of a cluster (over the last minute), so that Burst holds for
	// the cluster as a whole; nil counts on this process only. Scope names this limiter's counts there; empty
	// means "login-failure".
	Shared SharedCounts
	Scope  string

	mu    sync.Mutex
	fails map[string][]time.Time
}

func (l *FailureLimiter) params() (int, time.Duration, time.Time) {
	burst, window := l.Burst, l.Window
	if burst <= 0 {
		burst = 5
	}
	if window <= 0 {
		window = time.Minute
	}
	now := time.Now()
	if l.Now != nil {
		now = l.Now()
	}
	return burst, window, now
}

// SharedCounts counts events over the last minute on every node of a cluster.
type SharedCounts interface {
	Add(scope, key string)
	Total(scope, key string) int
}

func (l *FailureLimiter) scope() string {
	if l.Scope == "" {
		return "login-failure"
	}
	return l.Scope
}

// Allow reports whether an attempt for every key may proceed, and if not, how long to wait.
func (l *FailureLimiter) Allow(keys ...string) (bool, time.Duration) {
	burst, window, now := l.params()
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		recent := l.prune(k, now, window)
		if len(recent) >= burst {
			if w := recent[0].Add(window).Sub(now); w > wait {
				wait = w
			}
		} else if l.Shared != nil && l.Shared.Total(l.scope(), k) >= burst {
			// The failures were on other nodes too; their times are not known here, so wait the whole window.
			wait = max(wait, window)
		}
	}
	if wait > 0 {
		return false, wait.Round(time.Second) + time.Second
	}
	return true, 0
}

// Fail records a failed attempt for every key.
func (l *FailureLimiter) Fail(keys ...string) {
	burst, window, now := l.params()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fails == nil {
		l.fails = map[string][]time.Time{}
	}
	for _, k := range keys {
		list := append(l.prune(k, now, window), now)
		if len(list) > burst { // only the latest burst failures matter; keep memory bounded per key
			list = list[len(list)-burst:]
		}
		l.fails[k] = list
		if l.Shared != nil {
			l.Shared.Add(l.scope(), k)
		}
	}
	// Bound memory under a spray of keys: drop keys whose failures have all aged out.
	if len(l.fails) > 10000 {
		for k := range l.fails {
			if len(l.prune(k, now, window)) == 0 {
				delete(l.fails, k)
			}
		}
	}
}

func (l *FailureLimiter) prune(k string, now time.Time, window time.Duration) []time.Time {
	list := l.fails[k]
	i := 0
	for i < len(list) && now.Sub(list[i]) >= window {
		i++
	}
	list = list[i:]
	if len(list) == 0 {
		delete(l.fails, k)
		return nil
	}
	l.fails[k] = list
	return list
}

// Recent returns how many failures key has within the window (in the cluster, when Shared is set).
func (l *FailureLimiter) Recent(key string) int {
	_, window, now := l.params()
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.prune(key, now, window))
	if l.Shared != nil {
		n = max(n, l.Shared.Total(l.scope(), key))
	}
	return n
}
