package auth

import (
	"context"
	"fmt"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// TestLoginLimiterKeepsOwnerIn: an attacker failing logins for a name blocks only itself; the owner, from an
// address that has not failed, is only slowed, with a delay that grows and stays capped.
func TestLoginLimiterKeepsOwnerIn(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := &MemoryLoginLimiter{Now: clock.now}
	attempt := func(src, name string) LoginDecision {
		d := l.Check(ctx, src, name)
		if d.RetryAfter == 0 {
			l.Failed(ctx, src, name)
		}
		return d
	}
	// One attacker address: blocked after 5 failures for the name.
	for i := range 5 {
		if d := attempt("127.0.0.2", "admin"); d.RetryAfter != 0 {
			t.Fatalf("failure %d refused early: %+v", i+1, d)
		}
	}
	if d := attempt("127.0.0.2", "admin"); d.RetryAfter <= 0 || d.RetryAfter > 61*time.Second {
		t.Fatalf("sixth attempt from the attacker: %+v, want refused for up to a minute", d)
	}
	if d := l.Check(ctx, "127.0.0.2", "Admin "); d.RetryAfter == 0 {
		t.Fatalf("the attacker escaped the block by changing the name's case: %+v", d)
	}
	// The owner is not refused, only slowed.
	d := l.Check(ctx, "127.0.0.1", "admin")
	if d.RetryAfter != 0 || d.Delay <= 0 {
		t.Fatalf("owner from a clean address: %+v, want allowed with a delay", d)
	}
	first := d.Delay
	// Many attacker addresses: each is blocked after 5; the name's delay grows but stays capped; the owner still
	// gets in.
	for a := 10; a < 40; a++ {
		for range 6 {
			attempt(fmt.Sprintf("127.0.0.%d", a), "admin")
		}
	}
	d = l.Check(ctx, "127.0.0.1", "admin")
	if d.RetryAfter != 0 || d.Delay <= first || d.Delay > 2*time.Second {
		t.Fatalf("owner during a distributed attack: %+v, want allowed, delay above %v and at most 2s", d, first)
	}
	if d := l.Check(ctx, "127.0.0.1", "bob"); d != (LoginDecision{}) {
		t.Fatalf("another name is affected: %+v", d)
	}
	clock.advance(time.Minute)
	if d := l.Check(ctx, "127.0.0.2", "admin"); d != (LoginDecision{}) {
		t.Fatalf("after the window: %+v, want clear", d)
	}
}

func TestLoginLimiterPerSource(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := &MemoryLoginLimiter{Now: clock.now}
	for i := range 20 {
		if d := l.Check(ctx, "2001:db8::1", "x"); d.RetryAfter != 0 {
			t.Fatalf("refused after %d failures", i)
		}
		// Spread over names and over addresses of one /64.
		l.Failed(ctx, fmt.Sprintf("2001:db8::%x", i+1), fmt.Sprintf("user%d", i))
	}
	for _, src := range []string{"2001:db8::1", "2001:db8::ffff", "2001:db8:0:0:1::1"} {
		if d := l.Check(ctx, src, "someone-new"); d.RetryAfter == 0 {
			t.Errorf("%s (same /64) not refused after 20 failures: %+v", src, d)
		}
	}
	if d := l.Check(ctx, "2001:db8:0:1::1", "someone-new"); d.RetryAfter != 0 {
		t.Errorf("another /64 refused: %+v", d)
	}
	if d := l.Check(ctx, "127.0.0.9", "user1"); d.RetryAfter != 0 {
		t.Errorf("another source refused: %+v", d)
	}
}

func TestSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1": "127.0.0.1", "::ffff:127.0.0.1": "127.0.0.1", "2001:db8::1": "2001:db8::/64",
		"2001:db8::1:2:3:4": "2001:db8::/64", "not-an-ip": "not-an-ip",
	} {
		if got := SourceKey(in); got != want {
			t.Errorf("SourceKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLoginDelayCapped: the delay for a name failing from many sources doubles from BaseDelay and never passes
// MaxDelay, also when the doubling steps over it (300 ms, 600 ms, then 1 s, not 1.2 s).
func TestLoginDelayCapped(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := &MemoryLoginLimiter{Now: clock.now, BaseDelay: 300 * time.Millisecond, MaxDelay: time.Second}
	var delays []time.Duration
	for i := range 9 {
		src := fmt.Sprintf("127.0.1.%d", i+1) // a new source each time: only the name is slowed
		delays = append(delays, l.Check(ctx, src, "admin").Delay)
		l.Failed(ctx, src, "admin")
	}
	want := []time.Duration{0, 0, 0, 0, 0, 300 * time.Millisecond, 600 * time.Millisecond, time.Second, time.Second}
	if fmt.Sprint(delays) != fmt.Sprint(want) {
		t.Fatalf("delays %v, want %v", delays, want)
	}
}
