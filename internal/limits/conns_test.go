package limits

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"
)

// closer records whether the limiter closed (evicted) it.
type closer struct{ closed bool }

func (c *closer) Close() error { c.closed = true; return nil }

var (
	addrA = netip.MustParseAddr("127.0.0.2")
	addrB = netip.MustParseAddr("127.0.0.3")
)

func admit(t *testing.T, c *Conns, addr netip.Addr) (*Slot, *closer) {
	t.Helper()
	cl := &closer{}
	s := c.Admit(cl)
	if s != nil && !s.Bind(addr) {
		return nil, cl
	}
	return s, cl
}

func TestConnsEvictOldestUnauthenticated(t *testing.T) {
	var hits []string
	c := &Conns{Max: 4, MaxPerClient: 3, OnLimit: func(l string) { hits = append(hits, l) }}
	// A flood from A fills its share; each further connection from A costs A its own oldest.
	var flood []*closer
	for range 3 {
		s, cl := admit(t, c, addrA)
		if s == nil {
			t.Fatal("refused below the caps")
		}
		flood = append(flood, cl)
	}
	s4, _ := admit(t, c, addrA)
	if s4 == nil || !flood[0].closed || flood[1].closed {
		t.Fatalf("fourth connection from A: slot %v, evicted %v", s4 != nil, []bool{flood[0].closed, flood[1].closed})
	}
	// A client from B that authenticates keeps its place against the flood.
	b, bcl := admit(t, c, addrB)
	if b == nil {
		t.Fatal("B refused")
	}
	b.Protect()
	for range 10 {
		if s, _ := admit(t, c, addrA); s == nil {
			t.Fatal("flood connection refused although older flood connections are evictable")
		}
	}
	if bcl.closed {
		t.Fatal("the authenticated connection was evicted")
	}
	if st := c.Stats(); st.Conns != 4 || st.Evictable != 3 {
		t.Fatalf("stats %+v, want 4 connections, 3 evictable", st)
	}
	if len(hits) == 0 || hits[0] != LimitConnsPerClient {
		t.Fatalf("limit hits %v", hits)
	}
}

func TestConnsRefuseWhenNothingEvictable(t *testing.T) {
	tests := []struct {
		name    string
		c       *Conns
		second  netip.Addr
		wantHit string
	}{
		{"listener full", &Conns{Max: 1}, addrB, LimitConns},
		{"client full", &Conns{MaxPerClient: 1}, addrA, LimitConnsPerClient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hit string
			tt.c.OnLimit = func(l string) { hit = l }
			s, _ := admit(t, tt.c, addrA)
			s.Protect()
			if s2, _ := admit(t, tt.c, tt.second); s2 != nil {
				t.Fatal("admitted beyond a cap with nothing evictable")
			}
			if hit != tt.wantHit {
				t.Fatalf("hit %q, want %q", hit, tt.wantHit)
			}
			s.Release()
			if s3, _ := admit(t, tt.c, tt.second); s3 == nil {
				t.Fatal("refused after the place was released")
			}
			if st := tt.c.Stats(); st.Conns != 1 || st.Clients != 1 {
				t.Fatalf("stats %+v after release and one admission", st)
			}
		})
	}
}

func TestConnsUnauthenticatedCap(t *testing.T) {
	c := &Conns{MaxUnauthenticated: 2}
	s1, c1 := admit(t, c, addrA)
	s2, c2 := admit(t, c, addrB)
	_, _ = s1, s2
	if s3, _ := admit(t, c, addrB); s3 == nil || !c1.closed || c2.closed {
		t.Fatalf("third unauthenticated: evicted %v %v", c1.closed, c2.closed)
	}
	s2.Protect()
	s2.Expose() // idle again: evictable, as the youngest
	if st := c.Stats(); st.Evictable != 2 || st.Conns != 2 {
		t.Fatalf("stats %+v", st)
	}
	s1.Release() // an evicted slot releases once
	if st := c.Stats(); st.Conns != 2 {
		t.Fatalf("releasing an evicted slot changed the count: %+v", st)
	}
}

func TestBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	b := &Bucket{Rate: 2, Burst: 3, Now: func() time.Time { return now }}
	got := 0
	for range 10 {
		if b.Allow() {
			got++
		}
	}
	if got != 3 || b.Refused() != 7 {
		t.Fatalf("burst allowed %d, refused %d", got, b.Refused())
	}
	now = now.Add(time.Second)
	got = 0
	for range 10 {
		if b.Allow() {
			got++
		}
	}
	if got != 2 {
		t.Fatalf("after one second allowed %d, want 2", got)
	}
	if !(*Bucket)(nil).Allow() || !(&Bucket{}).Allow() {
		t.Fatal("an unset bucket must allow")
	}
}

func TestBudget(t *testing.T) {
	b := &Budget{Max: 10}
	if !b.Reserve(6) || b.Reserve(5) || !b.Reserve(4) {
		t.Fatal("reservations disagree with the budget")
	}
	b.Return(6)
	if b.Used() != 4 || !b.Reserve(6) {
		t.Fatalf("used %d after return", b.Used())
	}
}

func TestDefaultsFor(t *testing.T) {
	for _, n := range []uint64{0, 1, 256, 1024, 20000, 1 << 20, 1 << 30} {
		d := DefaultsFor(n)
		if d.ProxyConns <= 0 || d.APIConns <= 0 || d.ProxyConnsPerClient > d.ProxyConns && n >= 256 ||
			d.ProxyUnauthenticated <= 0 || d.APIConnsPerClient <= 0 {
			t.Errorf("DefaultsFor(%d) = %+v", n, d)
		}
		if d.ProxyUnauthenticated > 1<<16 {
			t.Errorf("DefaultsFor(%d) = %+v: too many unauthenticated connections", n, d)
		}
		if eff := max(n, 64); n != 0 && uint64(d.ProxyConns+d.APIConns) > eff*6/10+16 {
			t.Errorf("DefaultsFor(%d) = %+v leaves too little of the table", n, d)
		}
	}
}

func TestIsTemporary(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.EMFILE)}, true},
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.ENFILE)}, true},
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.ECONNABORTED)}, true},
		{fmt.Errorf("wrapped: %w", syscall.EMFILE), true},
		{net.ErrClosed, false},
		{&net.OpError{Op: "accept", Err: net.ErrClosed}, false},
		{errors.New("something else"), false},
		{syscall.EBADF, false},
	}
	for _, tt := range tests {
		if got := IsTemporary(tt.err); got != tt.want {
			t.Errorf("IsTemporary(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
