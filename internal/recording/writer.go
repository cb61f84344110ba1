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
type Writer struct {
	store *Store
	id    string
	red   *Redactor
	limit int

	mu        sync.Mutex
	mac       hash.Hash // HMAC-SHA256 under the store's chain key, made on the first write
	line      []byte    // the last line written, reused for the next
	f         appendFile
	prev      [sha256.Size]byte
	records   int64
	exchanges int64
	reqBytes  int64
	respBytes int64
	err       error
	closed    bool

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
	w := &Writer{store: s, id: meta.SessionID, red: red, limit: limit, f: f}
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
// (see NewBodyTap): the body limit plus the redactor's slack, so that a
// secret crossing the limit is redacted whole before the body is cut.
func (w *Writer) CaptureLimit() int {
	if w.limit == 0 {
		return 0
	}
	return w.limit + w.red.Slack()
}

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
	red.Seq = w.exchanges + 1
	if err := w.writeLocked(ctx, &record{Kind: KindExchange, Time: w.store.now(), Exchange: &red}); err != nil {
		return Exchange{}, err
	}
	w.exchanges++
	w.reqBytes += red.RequestBytes
	w.respBytes += red.ResponseBytes
	w.store.publish(w.id, red)
	return red, nil
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

// writeLocked chains rec to the trail with one write. A failure breaks the
// writer; the chain head does not move, so a partial line it may have left
// is a torn tail that Recover and Verify understand.
func (w *Writer) writeLocked(ctx context.Context, rec *record) error {
	rec.N = w.records + 1
	if w.mac == nil {
		w.mac = hmac.New(sha256.New, w.store.key)
	}
	line, mac, err := appendLineMAC(w.line[:0], w.mac, w.prev, rec)
	if cap(line) <= maxKeptLine {
		w.line = line // written below, then free for the next record
	}
	if err == nil {
		var n int
		n, err = w.f.Write(line)
		if err == nil && n != len(line) {
			err = io.ErrShortWrite
		}
	}
	if err != nil {
		w.fail(fmt.Errorf("append to trail %s: %w", w.id, err))
		w.store.log.ErrorContext(ctx, "session recording failed", "session", w.id, "err", err)
		return w.err
	}
	w.prev = mac
	w.records++
	return nil
}
