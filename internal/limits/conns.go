// Package limits bounds what peers that have not proven who they are can hold of the process: connections per
// listener and per client address, connections not yet authenticated, bytes buffered, certificate mints. It is
// pure bookkeeping (no I/O but closing what it evicts), so the proxy and the management API share one model and
// tests can drive it without sockets.
package limits

import (
	"io"
	"net/netip"
	"sync"
)

// Limit names, as passed to OnLimit and used as metric labels.
const (
	LimitConns           = "conns"
	LimitConnsPerClient  = "conns_per_client"
	LimitUnauthenticated = "unauthenticated"
)

// Conns counts the connections of one listener. A connection is evictable while it has not been authenticated
// (the proxy) or is not serving a request (the API): when a cap is reached, the oldest evictable connection
// that counts against it is closed to make room, and only when none is evictable is the new one refused. So a
// flood of idle or half-open connections costs its sender its own oldest connections, never a working client
// its place.
//
// A zero cap means no cap. Methods are safe for concurrent use; the zero value counts without limits.
type Conns struct {
	// Max caps the connections of the listener.
	Max int
	// MaxPerClient caps the connections of one client address.
	MaxPerClient int
	// MaxUnauthenticated caps the evictable connections; beyond it the oldest one is closed.
	MaxUnauthenticated int
	// OnLimit, if set, is called (without locks held) with the name of each limit that evicted or refused a
	// connection.
	OnLimit func(limit string)

	mu       sync.Mutex
	n        int
	evict    slotList // evictable slots, oldest first
	byClient map[netip.Addr]*client
}

type client struct {
	n     int
	evict slotList
}

// Slot is one admitted connection. Its methods are safe for concurrent use.
type Slot struct {
	c      *Conns
	closer io.Closer
	cl     *client // nil until Bind
	addr   netip.Addr
	// released is set once the slot stopped counting; guarded by c.mu like the links.
	released  bool
	evictable bool
	g, a      links // in c.evict and in cl.evict
}

type links struct{ prev, next *Slot }

// Admit counts a new connection, evictable until Protect, and returns its slot, or nil when the listener is
// full of connections that cannot be evicted. closer is closed when the slot is evicted.
func (c *Conns) Admit(closer io.Closer) *Slot {
	var victims []*Slot
	var hits []string
	c.mu.Lock()
	if c.Max > 0 && c.n >= c.Max {
		v := c.evict.head()
		if v == nil {
			c.mu.Unlock()
			c.report([]string{LimitConns}, nil)
			return nil
		}
		victims, hits = append(victims, c.releaseLocked(v)), append(hits, LimitConns)
	}
	if c.MaxUnauthenticated > 0 && c.evict.len >= c.MaxUnauthenticated {
		if v := c.evict.head(); v != nil {
			victims, hits = append(victims, c.releaseLocked(v)), append(hits, LimitUnauthenticated)
		}
	}
	s := &Slot{c: c, closer: closer, evictable: true}
	c.n++
	c.evict.push(s, false)
	c.mu.Unlock()
	c.report(hits, victims)
	return s
}

// Bind counts the slot against its client address, which may only be known once a PROXY protocol header has
// been read. It reports false, and releases the slot, when the address is full of connections that cannot be
// evicted. Bind is called at most once per slot.
func (s *Slot) Bind(addr netip.Addr) bool {
	c := s.c
	addr = addr.Unmap()
	var victims []*Slot
	var hits []string
	c.mu.Lock()
	if s.released || s.cl != nil {
		ok := !s.released
		c.mu.Unlock()
		return ok
	}
	cl := c.byClient[addr]
	if cl == nil {
		cl = &client{}
		if c.byClient == nil {
			c.byClient = make(map[netip.Addr]*client)
		}
		c.byClient[addr] = cl
	}
	if c.MaxPerClient > 0 && cl.n >= c.MaxPerClient {
		v := cl.evict.head()
		if v == nil {
			c.releaseLocked(s)
			if cl.n == 0 {
				delete(c.byClient, addr)
			}
			c.mu.Unlock()
			c.report([]string{LimitConnsPerClient}, nil)
			return false
		}
		victims, hits = append(victims, c.releaseLocked(v)), append(hits, LimitConnsPerClient)
	}
	s.cl, s.addr = cl, addr
	cl.n++
	if s.evictable {
		cl.evict.push(s, true)
	}
	c.mu.Unlock()
	c.report(hits, victims)
	return true
}

// Protect makes the slot no longer evictable: its connection authenticated, or started serving a request.
func (s *Slot) Protect() {
	c := s.c
	c.mu.Lock()
	if !s.released && s.evictable {
		s.evictable = false
		c.evict.remove(s, false)
		if s.cl != nil {
			s.cl.evict.remove(s, true)
		}
	}
	c.mu.Unlock()
}

// Expose makes the slot evictable again, as the youngest: its connection went idle between requests.
func (s *Slot) Expose() {
	var victims []*Slot
	var hits []string
	c := s.c
	c.mu.Lock()
	if !s.released && !s.evictable {
		if c.MaxUnauthenticated > 0 && c.evict.len >= c.MaxUnauthenticated {
			if v := c.evict.head(); v != nil {
				victims, hits = append(victims, c.releaseLocked(v)), append(hits, LimitUnauthenticated)
			}
		}
		s.evictable = true
		c.evict.push(s, false)
		if s.cl != nil {
			s.cl.evict.push(s, true)
		}
	}
	c.mu.Unlock()
	c.report(hits, victims)
}

// Release stops counting the slot; it is idempotent and does not close anything.
func (s *Slot) Release() {
	s.c.mu.Lock()
	s.c.releaseLocked(s)
	s.c.mu.Unlock()
}

// releaseLocked uncounts s and returns it; c.mu must be held.
func (c *Conns) releaseLocked(s *Slot) *Slot {
	if s.released {
		return s
	}
	s.released = true
	c.n--
	if s.evictable {
		c.evict.remove(s, false)
	}
	if cl := s.cl; cl != nil {
		if s.evictable {
			cl.evict.remove(s, true)
		}
		cl.n--
		if cl.n == 0 {
			delete(c.byClient, s.addr)
		}
	}
	return s
}

// report closes evicted connections and tells OnLimit, outside the lock: a Close may block briefly and OnLimit
// is the caller's code.
func (c *Conns) report(hits []string, victims []*Slot) {
	for _, v := range victims {
		if v.closer != nil {
			_ = v.closer.Close()
		}
	}
	if c.OnLimit != nil {
		for _, h := range hits {
			c.OnLimit(h)
		}
	}
}

// Stats is a point-in-time count, for tests and gauges.
type Stats struct {
	Conns, Evictable, Clients int
}

// Stats reports the current counts.
func (c *Conns) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Conns: c.n, Evictable: c.evict.len, Clients: len(c.byClient)}
}

// slotList is an intrusive doubly linked list of slots, through either their g (listener) or a (client) links,
// so admitting a connection allocates nothing but its slot.
type slotList struct {
	first, last *Slot
	len         int
}

func lnk(s *Slot, perClient bool) *links {
	if perClient {
		return &s.a
	}
	return &s.g
}

func (l *slotList) head() *Slot { return l.first }

func (l *slotList) push(s *Slot, perClient bool) {
	k := lnk(s, perClient)
	k.prev, k.next = l.last, nil
	if l.last != nil {
		lnk(l.last, perClient).next = s
	} else {
		l.first = s
	}
	l.last = s
	l.len++
}

func (l *slotList) remove(s *Slot, perClient bool) {
	k := lnk(s, perClient)
	if k.prev != nil {
		lnk(k.prev, perClient).next = k.next
	} else {
		l.first = k.next
	}
	if k.next != nil {
		lnk(k.next, perClient).prev = k.prev
	} else {
		l.last = k.prev
	}
	k.prev, k.next = nil, nil
	l.len--
}
