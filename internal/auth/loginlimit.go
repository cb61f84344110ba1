package auth

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// LoginLimiter throttles the guessing of passwords and secrets at every login (both API dialects and the token
// endpoint). Check runs before any secret is compared, Failed after a failed attempt. The interface is small so
// that a cluster can keep the counts in its shared database.
type LoginLimiter interface {
	Check(ctx context.Context, source, name string) LoginDecision
	Failed(ctx context.Context, source, name string)
}

// LoginDecision is a LoginLimiter's answer: refuse for RetryAfter, or proceed after Delay (both zero: proceed).
type LoginDecision struct {
	RetryAfter time.Duration
	Delay      time.Duration
	// Reason says which count refused or slowed the attempt, for the audit trail.
	Reason string
}

// Wait sleeps for the decision's delay, or until ctx ends.
func (d LoginDecision) Wait(ctx context.Context) error {
	if d.Delay <= 0 {
		return nil
	}
	t := time.NewTimer(d.Delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// MemoryLoginLimiter is the single-node LoginLimiter. It blocks a source address that fails too often (whatever
// names it tries) and a name from one source that fails too often, but only slows a name that fails from many
// sources: blocking a name everywhere would let anyone lock its owner out, so the owner, from an address that
// has not failed, still logs in, after a delay that grows with the name's failures. Failures count within a
// sliding window; successes do not reset them. IPv6 sources count per /64, since one host holds a whole /64.
type MemoryLoginLimiter struct {
	// SourceBurst is how many failures a source may have per window before it is refused; zero means 20.
	SourceBurst int
	// PairBurst is how many failures a name may have from one source per window; zero means 5.
	PairBurst int
	// NameSlowAfter is how many failures of a name (from anywhere) per window start slowing it; zero means 5.
	NameSlowAfter int
	// BaseDelay is the first delay of a slowed name, doubling with each further failure; zero means 250ms.
	BaseDelay time.Duration
	// MaxDelay caps the delay; zero means 2s.
	MaxDelay time.Duration
	// Window is the period failures are counted over; zero means one minute.
	Window time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Shared, if set, counts the failures for every node of a cluster, so that each limit holds for the cluster
	// as a whole; nil counts on this process only. Set it before the first use.
	Shared SharedCounts

	once                 sync.Once
	source, pair, byName *FailureLimiter
}

var _ LoginLimiter = (*MemoryLoginLimiter)(nil)

func (l *MemoryLoginLimiter) init() {
	l.once.Do(func() {
		or := func(v, d int) int {
			if v <= 0 {
				return d
			}
			return v
		}
		l.source = &FailureLimiter{Burst: or(l.SourceBurst, 20), Window: l.Window, Now: l.Now, Shared: l.Shared, Scope: "login-source"}
		l.pair = &FailureLimiter{Burst: or(l.PairBurst, 5), Window: l.Window, Now: l.Now, Shared: l.Shared, Scope: "login-pair"}
		// The name is never refused; it only needs counting up to where the delay stops growing.
		l.byName = &FailureLimiter{Burst: or(l.NameSlowAfter, 5) + 32, Window: l.Window, Now: l.Now, Shared: l.Shared, Scope: "login-name"}
	})
}

// SourceKey is the unit a source address is counted in: the address itself for IPv4, its /64 for IPv6.
func SourceKey(source string) string {
	a, err := netip.ParseAddr(source)
	if err != nil {
		return source
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

func nameKey(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// Check implements LoginLimiter.
func (l *MemoryLoginLimiter) Check(_ context.Context, source, name string) LoginDecision {
	l.init()
	src, n := SourceKey(source), nameKey(name)
	if ok, wait := l.source.Allow(src); !ok {
		return LoginDecision{RetryAfter: wait, Reason: "source address"}
	}
	if ok, wait := l.pair.Allow(n + "\x00" + src); !ok {
		return LoginDecision{RetryAfter: wait, Reason: "name from this source address"}
	}
	slowAfter := l.NameSlowAfter
	if slowAfter <= 0 {
		slowAfter = 5
	}
	fails := l.byName.Recent(n)
	if fails < slowAfter {
		return LoginDecision{}
	}
	base, maxDelay := l.BaseDelay, l.MaxDelay
	if base <= 0 {
		base = 250 * time.Millisecond
	}
	if maxDelay <= 0 {
		maxDelay = 2 * time.Second
	}
	d := base
	for i := slowAfter; i < fails && d < maxDelay; i++ {
		d *= 2
	}
	return LoginDecision{Delay: min(d, maxDelay), Reason: "name failing from many sources"}
}

// Failed implements LoginLimiter.
func (l *MemoryLoginLimiter) Failed(_ context.Context, source, name string) {
	l.init()
	src, n := SourceKey(source), nameKey(name)
	l.source.Fail(src)
	l.pair.Fail(n + "\x00" + src)
	l.byName.Fail(n)
}
