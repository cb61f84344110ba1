package ca

import (
	"container/list"
	"crypto/tls"
	"sync"
	"time"
)

// leafCache is a bounded LRU of minted leaves that also collapses concurrent
// requests for one name into a single mint: a burst of connections to a new
// host costs one signature, not hundreds. The zero value is ready to use.
type leafCache struct {
	mu       sync.Mutex
	lru      list.List // of *leafEntry, most recently used at the front
	byName   map[string]*list.Element
	inflight map[string]*mintCall
}

type leafEntry struct {
	name    string
	cert    *tls.Certificate
	renewAt time.Time
}

// mintCall is one mint in progress; waiters block on done, then read cert/err.
type mintCall struct {
	done chan struct{}
	cert *tls.Certificate
	err  error
}

// get returns the cached leaf for name if it is still fresh at now; otherwise it
// calls mint, at most once at a time per name, caches a successful result
// until renewAt, and evicts the least recently used entries beyond size.
func (lc *leafCache) get(name string, now time.Time, size int, mint func() (*tls.Certificate, time.Time, error)) (*tls.Certificate, error) {
	lc.mu.Lock()
	if el, ok := lc.byName[name]; ok {
		e := el.Value.(*leafEntry)
		if now.Before(e.renewAt) {
			lc.lru.MoveToFront(el)
			lc.mu.Unlock()
			return e.cert, nil
		}
	}
	if call, ok := lc.inflight[name]; ok {
		lc.mu.Unlock()
		<-call.done
		return call.cert, call.err
	}
	if lc.inflight == nil {
		lc.inflight = make(map[string]*mintCall)
		lc.byName = make(map[string]*list.Element)
	}
	call := &mintCall{done: make(chan struct{})}
	lc.inflight[name] = call
	lc.mu.Unlock()

	var renewAt time.Time
	// The deferred cleanup runs even if mint panics, so waiters are never
	// left blocked on a call that will not finish.
	defer func() {
		lc.mu.Lock()
		delete(lc.inflight, name)
		if call.err == nil && call.cert != nil {
			lc.put(name, call.cert, renewAt, size)
		}
		lc.mu.Unlock()
		close(call.done)
	}()
	call.err = errMintPanicked
	call.cert, renewAt, call.err = mint()
	return call.cert, call.err
}

// put stores a leaf; lc.mu must be held.
func (lc *leafCache) put(name string, cert *tls.Certificate, renewAt time.Time, size int) {
	if el, ok := lc.byName[name]; ok {
		e := el.Value.(*leafEntry)
		e.cert, e.renewAt = cert, renewAt
		lc.lru.MoveToFront(el)
		return
	}
	lc.byName[name] = lc.lru.PushFront(&leafEntry{name: name, cert: cert, renewAt: renewAt})
	for lc.lru.Len() > size {
		oldest := lc.lru.Back()
		lc.lru.Remove(oldest)
		delete(lc.byName, oldest.Value.(*leafEntry).name)
	}
}
