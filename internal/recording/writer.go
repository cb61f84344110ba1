package recording

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// appendFile is what a Writer needs of its file; tests substitute failing
// implementations because chmod does not stop root.
type appendFile interface {
	io.Writer
	Sync() error
	Close() error
}

// Writer appends the records of one session to its trail. It is safe for
// concurrent use by the many requests of a session. Once a write fails the
// Writer is broken: every later Append returns the same error, so that the
// proxy can refuse traffic it can no longer record.
//
// Concurrent exchanges of one session are group-committed: each is chained
// and encoded under mu, and whichever request finds no write in progress
// writes every line queued so far with one write(2), the others waiting for
// it. Every Append still returns only once its own line is written, as with a
// write per record: batching changes how many system calls a busy session
// makes, not what an acknowledged request has on disk.
type Writer struct {
	store *Store
	id    string
	red   *Redactor
	limit int

	mu   sync.Mutex
	cond *sync.Cond // on mu: a batch was written
	mac  hash.Hash  // HMAC-SHA256 under the store's chain key, made on the first write
	f    appendFile

	// What is written: the seal (prev, records) and the close record's totals.
	prev      [sha256.Size]byte
	records   int64
	exchanges int64
	reqBytes  int64
	respBytes int64

	// The chain including queued lines: the next record's number, its prev and its exchange's seq.
	head          [sha256.Size]byte
	headRecords   int64
	headExchanges int64

	// The batch being filled (number batch), which the next write takes whole.
	pend        []byte
	pendRecords int64
	pendReq     int64
	pendResp    int64
	pendPub     []Exchange // published to live followers once written
	sparePub    []Exchange // the pendPub of the last batch written, emptied, reused for the next
	rec         record     // the exchange record being encoded (under mu), kept rather than allocated per call
	batch       uint64     // number of the batch being filled; written counts those done
	written     uint64
	failedFrom  uint64 // the first batch whose write failed, 0 while none did
	flushing    bool   // a request is writing a batch, with mu released
	spare       []byte // the buffer of the last batch written, reused for the next

	err    error
	closed bool

	// broken mirrors err for Err, which the session manager calls on every request under its own lock: reading it
	// must not wait for a trail write in progress (that serialised all of a gateway's requests behind one disk).
	broken atomic.Pointer[error]
}

// Create starts the trail of a new session and writes its open record. The
// trail must not exist yet. red removes the session's secrets from every
// exchange; nil redacts DefaultRedactedHeaders only. A zero meta.Started is
// set to the current time.
func (s *Store) Create(ctx context.Context, meta SessionMeta, red *Redactor) (*Writer, error) {
	name, err := trailName(meta.SessionID)
	if err != nil {
		return nil, fmt.Errorf("create trail: %w", err)
	}
	if meta.Started.IsZero() {
		meta.Started = s.now()
	}
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create trail: %w", err)
	}
	limit := s.bodyLimit()
	if meta.BodyLimit > 0 {
		limit = meta.BodyLimit
	} else if meta.BodyLimit < 0 {
		limit = 0
	}
	w := &Writer{store: s, id: meta.SessionID, red: red, limit: limit, f: f, batch: 1}
	w.cond = sync.NewCond(&w.mu)
	if err := w.writeLocked(ctx, &record{Kind: KindOpen, Time: meta.Started, Open: &meta}); err != nil {
		f.Close()
		return nil, err
	}
	s.mu.Lock()
	s.live[w.id] = w
	s.mu.Unlock()
	return w, nil
}

// SessionID returns the id of the writer's session.
func (w *Writer) SessionID() string { return w.id }

// CaptureLimit returns how many bytes of each body the proxy should capture
// (the proxy's body tap): the body limit plus the redactor's slack, so that a
// secret crossing the limit is redacted whole before the body is cut.
func (w *Writer) CaptureLimit() int {
	if w.limit == 0 {
		return 0
	}
	return w.limit + w.red.Slack()
}

// maxKeptPub bounds the pendPub array a writer keeps for its next batch.
const maxKeptPub = 64

// Append redacts ex, numbers it and appends it to the trail in a single
// write. ex itself is not modified. ctx carries request-scoped values for
// logging only: an exchange must be recorded even when its client has gone
// away, so cancellation does not stop the write.
func (w *Writer) Append(ctx context.Context, ex *Exchange) error {
	_, err := w.AppendRedacted(ctx, ex)
	return err
}

// AppendRedacted is Append that also returns the exchange as written: redacted, cut to the body limit and
// numbered. It is what may be passed on (to the trail index, say) without leaking a secret.
func (w *Writer) AppendRedacted(ctx context.Context, ex *Exchange) (Exchange, error) {
	red := w.red.Exchange(ex, w.limit)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return Exchange{}, ErrClosed
	}
	if w.err != nil {
		return Exchange{}, w.err
	}
	red.Seq = w.headExchanges + 1
	w.rec = record{N: w.headRecords + 1, Kind: KindExchange, Time: w.store.now(), Exchange: &red}
	line, mac, err := appendLineMAC(w.pend, w.mac, w.head, &w.rec)
	w.rec = record{} // holds no exchange past the call
	if err != nil {
		w.fail(fmt.Errorf("append to trail %s: %w", w.id, err))
		return Exchange{}, w.err
	}
	w.pend, w.head = line, mac
	w.headRecords++
	w.headExchanges++
	w.pendRecords++
	w.pendReq += red.RequestBytes
	w.pendResp += red.ResponseBytes
	w.pendPub = append(w.pendPub, red)
	mine := w.batch
	for w.written < mine {
		if w.flushing {
			w.cond.Wait()
		} else {
			w.flushLocked(ctx, mine)
		}
	}
	if w.failedFrom != 0 && mine >= w.failedFrom {
		return Exchange{}, w.err
	}
	return red, nil
}

// flushLocked writes queued batches, each with one write(2) and mu released, until batch upto is written. Called
// with mu held and no flush in progress. A failed write breaks the writer, and the batches queued behind it fail
// unwritten: the chain head stays at the last line written, so a partial line is a torn tail that Recover and
// Verify understand.
func (w *Writer) flushLocked(ctx context.Context, upto uint64) {
	w.flushing = true
	for w.written < upto {
		buf, b, recs, reqB, respB, pub := w.pend, w.batch, w.pendRecords, w.pendReq, w.pendResp, w.pendPub
		head, broken := w.head, w.err
		w.pend, w.pendRecords, w.pendReq, w.pendResp, w.pendPub = w.spare[:0], 0, 0, 0, w.sparePub[:0]
		w.spare, w.sparePub = nil, nil
		w.batch++
		w.mu.Unlock()
		err := broken
		if err == nil {
			var n int
			n, err = w.f.Write(buf)
			if err == nil && n != len(buf) {
				err = io.ErrShortWrite
			}
			if err != nil {
				err = fmt.Errorf("append to trail %s: %w", w.id, err)
				w.store.log.ErrorContext(ctx, "session recording failed", "session", w.id, "err", err)
			}
		}
		w.mu.Lock()
		if err != nil {
			if w.err == nil {
				w.fail(err)
			}
			if w.failedFrom == 0 {
				w.failedFrom = b
			}
		} else {
			w.prev = head
			w.records += recs
			w.exchanges += int64(len(pub))
			w.reqBytes += reqB
			w.respBytes += respB
			for _, ex := range pub {
				w.store.publish(w.id, ex)
			}
		}
		if cap(pub) <= maxKeptPub {
			clear(pub) // the followers got copies; keep no bodies alive
			w.sparePub = pub[:0]
		}
		if cap(buf) <= maxKeptLine {
			w.spare = buf // free for the batch after next
		}
		w.written = b
	}
	w.flushing = false
	w.cond.Broadcast()
}

// Close writes the close record with reason, flushes the trail to stable
// storage and closes it. It returns the seal to keep in the database. After
// an earlier write failure it only closes the file and returns that failure;
// Store.Recover marks such a trail interrupted at the next start.
func (w *Writer) Close(reason string) (Seal, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.sealLocked(), ErrClosed
	}
	w.closed = true
	// Exchanges queued before the close are written before the close record (their requests are waiting for it).
	for w.written < w.batch-1 || len(w.pend) > 0 {
		if w.flushing {
			w.cond.Wait()
		} else {
			w.flushLocked(context.Background(), w.batch)
		}
	}
	defer func() {
		w.store.mu.Lock()
		w.store.endLocked(w.id)
		w.store.mu.Unlock()
	}()
	if w.err != nil {
		w.f.Close()
		return w.sealLocked(), w.err
	}
	info := &CloseInfo{Reason: reason, Exchanges: w.exchanges, RequestBytes: w.reqBytes, ResponseBytes: w.respBytes}
	err := w.writeLocked(context.Background(), &record{Kind: KindClose, Time: w.store.now(), Close: info})
	if err == nil {
		if err = w.f.Sync(); err != nil {
			err = fmt.Errorf("close trail %s: sync: %w", w.id, err)
		}
	}
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close trail %s: %w", w.id, cerr)
	}
	if err != nil {
		w.fail(err)
	}
	return w.sealLocked(), err
}

// Err returns the error that broke the writer, or nil while it works.
func (w *Writer) Err() error {
	if p := w.broken.Load(); p != nil {
		return *p
	}
	return nil
}

// fail breaks the writer with err; w.mu is held.
func (w *Writer) fail(err error) {
	w.err = err
	w.broken.Store(&err)
}

// Seal returns the MAC of the last record written and the record count.
func (w *Writer) Seal() Seal {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sealLocked()
}

func (w *Writer) sealLocked() Seal {
	return Seal{Head: hex.EncodeToString(w.prev[:]), Records: w.records}
}

// maxKeptLine bounds the line buffer a writer keeps between records: a session that once recorded a large body
// does not hold that much memory for the rest of its life.
const maxKeptLine = 256 << 10

// writeLocked chains rec (an open or close record) to the trail with one
// write; no batch is queued or being written. A failure breaks the writer;
// the chain head does not move, so a partial line it may have left is a torn
// tail that Recover and Verify understand.
func (w *Writer) writeLocked(ctx context.Context, rec *record) error {
	rec.N = w.records + 1
	if w.mac == nil {
		w.mac = hmac.New(sha256.New, w.store.key)
	}
	line, mac, err := appendLineMAC(w.spare[:0], w.mac, w.prev, rec)
	if err == nil {
		var n int
		n, err = w.f.Write(line)
		if err == nil && n != len(line) {
			err = io.ErrShortWrite
		}
	}
	if cap(line) <= maxKeptLine {
		w.spare = line
	}
	if err != nil {
		w.fail(fmt.Errorf("append to trail %s: %w", w.id, err))
		w.store.log.ErrorContext(ctx, "session recording failed", "session", w.id, "err", err)
		return w.err
	}
	w.prev, w.head = mac, mac
	w.records++
	w.headRecords = w.records
	return nil
}
