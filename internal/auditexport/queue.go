package auditexport

import (
	"sync"

	"github.com/gatehouse-dev/gatehouse/internal/model"
)

// queue is a bounded FIFO of events that never blocks the producer: when full, the oldest event is dropped. An
// audit write on the request path must not wait for a SIEM that is slow or down.
type queue struct {
	mu      sync.Mutex
	items   []model.AuditEvent // ring buffer
	head, n int
	ready   chan struct{} // has a token when items may be waiting
}

func newQueue(size int) *queue {
	return &queue{items: make([]model.AuditEvent, size), ready: make(chan struct{}, 1)}
}

// push adds e and reports whether an older event had to be dropped to make room.
func (q *queue) push(e model.AuditEvent) (dropped bool) {
	q.mu.Lock()
	if q.n == len(q.items) {
		q.head = (q.head + 1) % len(q.items)
		q.n--
		dropped = true
	}
	q.items[(q.head+q.n)%len(q.items)] = e
	q.n++
	q.mu.Unlock()
	q.wake()
	return dropped
}

// tryPop takes the oldest event; false when the queue is empty.
func (q *queue) tryPop() (model.AuditEvent, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return model.AuditEvent{}, false
	}
	e := q.items[q.head]
	q.items[q.head] = model.AuditEvent{}
	q.head = (q.head + 1) % len(q.items)
	q.n--
	return e, true
}

// wake makes a waiting worker look at the queue again.
func (q *queue) wake() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// len is the number of waiting events.
func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}
