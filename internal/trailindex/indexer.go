// Package trailindex feeds recorded exchanges to the searchable trail index off the request path: the proxy's
// recorder hands each exchange to a bounded queue and returns at once; one worker writes them to the store in
// batches. A full queue (in entries, or in the body bytes they hold) drops the entry and counts it rather than slow
// a request.
package trailindex

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/internal/recording"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/wsframe"
	"github.com/prometheus/client_golang/prometheus"
)

// Backend stores index entries. *store.Store implements it on SQLite (FTS5 trigram) and PostgreSQL (pg_trgm); a
// cluster that moves trails elsewhere supplies its own.
type Backend interface {
	IndexExchanges(ctx context.Context, entries []store.TrailEntry) error
}

var _ Backend = (*store.Store)(nil)

// Defaults of Indexer's zero fields.
const (
	DefaultQueueSize = 10000
	// DefaultQueueBytes bounds the bodies held by queued exchanges: each may hold up to twice the recording body
	// limit, so a backlog of DefaultQueueSize exchanges could otherwise hold gigabytes while the database is slow.
	DefaultQueueBytes = 64 << 20
	DefaultBatchSize  = 256
	DefaultLinger     = 100 * time.Millisecond
)

// Indexer is the queue and its worker. Set the fields, then call Run once; Enqueue is safe for concurrent use and
// never blocks.
type Indexer struct {
	// Backend receives the batches. Required.
	Backend Backend
	// Log reports failed batches and the first drop; nil discards.
	Log *slog.Logger
	// QueueSize bounds the entries waiting to be written; 0 means DefaultQueueSize.
	QueueSize int
	// QueueBytes bounds the body bytes (request and response bodies, WebSocket texts) of the exchanges waiting to
	// be written; 0 means DefaultQueueBytes.
	QueueBytes int64
	// BatchSize bounds the entries written in one transaction; 0 means DefaultBatchSize.
	BatchSize int
	// Linger is how long the worker waits for more entries once it has one, so that a steady trickle is written
	// in a few large transactions rather than one per exchange (each costs the database a commit and a new
	// text-index segment). 0 means DefaultLinger; negative writes what is queued at once.
	Linger time.Duration

	once    sync.Once
	queue   chan queued
	pending atomic.Int64 // queued or being written, for Flush
	held    atomic.Int64 // body bytes of queued exchanges, against QueueBytes

	indexed, dropped, failed atomic.Int64
	batchSeconds             prometheus.Histogram
}

// queued is an entry, or an exchange whose entry the worker builds (off the request path).
type queued struct {
	e     store.TrailEntry
	s     Session
	ex    *recording.Exchange
	bytes int64 // ex's body bytes, held against QueueBytes until the entry is built
}

// exchangeBytes is what an exchange holds that the queue's byte budget counts.
func exchangeBytes(ex *recording.Exchange) int64 {
	n := int64(len(ex.RequestBody) + len(ex.ResponseBody))
	for _, m := range ex.WSMessages {
		n += int64(len(m.Text))
	}
	return n
}

func (ix *Indexer) init() {
	ix.once.Do(func() {
		n := ix.QueueSize
		if n <= 0 {
			n = DefaultQueueSize
		}
		ix.queue = make(chan queued, n)
		ix.batchSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "gatehouse", Subsystem: "trail_index",
			Name: "batch_seconds", Help: "Time to write one batch of exchanges to the trail index.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)})
	})
}

func (ix *Indexer) log() *slog.Logger {
	if ix.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return ix.Log
}

// Enqueue hands an entry to the worker and reports whether it was queued. It never waits: when the queue is full
// the entry is dropped and counted (gatehouse_trail_index_dropped_total); the trail itself still has it.
func (ix *Indexer) Enqueue(e store.TrailEntry) bool { return ix.enqueue(queued{e: e}) }

// EnqueueExchange is Enqueue for a recorded exchange of session s: the entry is built by the worker, so the
// request path pays for one channel send. ex must not change afterwards.
func (ix *Indexer) EnqueueExchange(s Session, ex *recording.Exchange) bool {
	return ix.enqueue(queued{s: s, ex: ex, bytes: exchangeBytes(ex)})
}

func (ix *Indexer) enqueue(q queued) bool {
	ix.init()
	budget := ix.QueueBytes
	if budget <= 0 {
		budget = DefaultQueueBytes
	}
	if q.bytes > 0 && ix.held.Add(q.bytes) > budget {
		ix.held.Add(-q.bytes)
		ix.drop()
		return false
	}
	ix.pending.Add(1)
	select {
	case ix.queue <- q:
		return true
	default:
		ix.pending.Add(-1)
		ix.held.Add(-q.bytes)
		ix.drop()
		return false
	}
}

func (ix *Indexer) drop() {
	if ix.dropped.Add(1) == 1 {
		ix.log().Warn("trail index queue full; exchanges are recorded but not indexed", "queue_size", cap(ix.queue))
	}
}

// entry builds q's index entry and gives back the body bytes it held.
func (ix *Indexer) entry(q queued) store.TrailEntry {
	if q.ex == nil {
		return q.e
	}
	e := Entry(q.s, q.ex)
	ix.held.Add(-q.bytes)
	return e
}

// Run writes queued entries until ctx ends, then writes what is still queued (for at most five seconds).
func (ix *Indexer) Run(ctx context.Context) {
	ix.init()
	size := ix.BatchSize
	if size <= 0 {
		size = DefaultBatchSize
	}
	linger := ix.Linger
	if linger == 0 {
		linger = DefaultLinger
	}
	batch := make([]store.TrailEntry, 0, size)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			ix.drain(ctx, batch[:0], size)
			return
		case q := <-ix.queue:
			batch = append(batch[:0], ix.entry(q))
			if linger > 0 {
				batch = ix.gather(ctx, timer, linger, batch, size)
			}
			if ctx.Err() != nil {
				ix.drain(ctx, batch, size) // what it gathered is written with the rest
				return
			}
			ix.write(ctx, ix.fill(batch, size))
		}
	}
}

// gather adds entries as they arrive until the batch is full, linger has passed or ctx ends.
func (ix *Indexer) gather(ctx context.Context, timer *time.Timer, linger time.Duration, batch []store.TrailEntry, size int) []store.TrailEntry {
	timer.Reset(linger)
	defer timer.Stop()
	for len(batch) < size {
		select {
		case q := <-ix.queue:
			batch = append(batch, ix.entry(q))
		case <-timer.C:
			return batch
		case <-ctx.Done():
			return batch
		}
	}
	return batch
}

// drain writes batch and what is still queued once ctx has ended, for at most five seconds.
func (ix *Indexer) drain(ctx context.Context, batch []store.TrailEntry, size int) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for {
		batch = ix.fill(batch, size)
		if len(batch) == 0 {
			return
		}
		ix.write(dctx, batch)
		batch = batch[:0]
	}
}

// fill takes what is queued right now, up to size entries: a batch grows under load and stays small when quiet.
func (ix *Indexer) fill(batch []store.TrailEntry, size int) []store.TrailEntry {
	for len(batch) < size {
		select {
		case q := <-ix.queue:
			batch = append(batch, ix.entry(q))
		default:
			return batch
		}
	}
	return batch
}

func (ix *Indexer) write(ctx context.Context, batch []store.TrailEntry) {
	start := time.Now()
	err := ix.Backend.IndexExchanges(ctx, batch)
	if err != nil && ctx.Err() == nil {
		// One retry covers a busy database; a batch that fails twice is dropped, counted and logged, because
		// holding it would stall every later exchange behind it.
		err = ix.Backend.IndexExchanges(ctx, batch)
	}
	ix.batchSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		ix.failed.Add(int64(len(batch)))
		ix.log().Error("writing to the trail index failed; these exchanges are recorded but not indexed", "exchanges", len(batch), "err", err)
	} else {
		ix.indexed.Add(int64(len(batch)))
	}
	ix.pending.Add(-int64(len(batch)))
}

// Flush waits until everything queued before the call has been written (or failed), or ctx ends. Tests and
// shutdown use it; a search right after a request does not need it.
func (ix *Indexer) Flush(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for ix.pending.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// Stats counts entries indexed, dropped for a full queue and lost to failed writes, and the queue's length.
func (ix *Indexer) Stats() (indexed, dropped, failed int64, queued int) {
	ix.init()
	return ix.indexed.Load(), ix.dropped.Load(), ix.failed.Load(), len(ix.queue)
}

// Register adds the indexer's metrics to reg.
func (ix *Indexer) Register(reg prometheus.Registerer) {
	ix.init()
	counter := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "gatehouse", Subsystem: "trail_index", Name: name, Help: help},
			func() float64 { return float64(v.Load()) })
	}
	reg.MustRegister(
		counter("indexed_total", "Exchanges written to the trail index.", &ix.indexed),
		counter("dropped_total", "Exchanges not indexed because the queue was full.", &ix.dropped),
		counter("failed_total", "Exchanges not indexed because writing failed.", &ix.failed),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "gatehouse", Subsystem: "trail_index", Name: "queue_length",
			Help: "Exchanges waiting to be indexed."}, func() float64 { return float64(len(ix.queue)) }),
		ix.batchSeconds,
	)
}

// Session is what an entry needs to know about the session its exchange belongs to.
type Session struct {
	ID, UserID, UserName, TargetID, TargetName, ClientAddress string
}

// Entry builds the index entry of a recorded (already redacted) exchange. Bodies that are not text are not
// searchable and are left out; WebSocket text messages are added to the request or response text by direction.
func Entry(s Session, ex *recording.Exchange) store.TrailEntry {
	e := store.TrailEntry{SessionID: s.ID, Seq: ex.Seq, RequestID: ex.ID, Started: ex.Started, DurationMS: ex.DurationMS,
		UserID: s.UserID, UserName: s.UserName, TargetID: s.TargetID, TargetName: s.TargetName, ClientAddress: s.ClientAddress,
		Method: ex.Method, Status: ex.Status, Decision: ex.Decision, Proto: ex.Proto, WebSocket: ex.WebSocket}
	e.Scheme, e.Host, e.Path, e.Query = splitURL(ex.URL)
	var req, resp []string
	if t, ok := bodyText(ex.RequestBody, ex.RequestBodyTruncated); ok {
		req = append(req, t)
	}
	if t, ok := bodyText(ex.ResponseBody, ex.ResponseBodyTruncated); ok {
		resp = append(resp, t)
	}
	for _, m := range ex.WSMessages {
		if m.Text == "" {
			continue
		}
		if m.Direction == wsframe.ToTarget {
			req = append(req, m.Text)
		} else {
			resp = append(resp, m.Text)
		}
	}
	e.RequestText, e.ResponseText = strings.Join(req, "\n"), strings.Join(resp, "\n")
	return e
}

// bodyText returns b as text if it is UTF-8; a body cut at the limit may end inside a character, which is dropped.
func bodyText(b []byte, truncated bool) (string, bool) {
	if len(b) == 0 {
		return "", false
	}
	if truncated {
		for i := 0; i < utf8.UTFMax-1 && len(b) > 0 && !utf8.Valid(b); i++ {
			b = b[:len(b)-1]
		}
	}
	if !utf8.Valid(b) {
		return "", false
	}
	return string(b), true
}

// splitURL cuts scheme://host/path?query without re-encoding the path: the index keeps the path the policy matched.
func splitURL(u string) (scheme, host, path, query string) {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return "", "", u, ""
	}
	host, rest, _ = strings.Cut(rest, "/")
	path = "/" + rest
	path, query, _ = strings.Cut(path, "?")
	return scheme, host, path, query
}

// snippetRadius is how many bytes of context a search result shows on each side of the match.
const snippetRadius = 80

// Snippet is the part of an entry that shows why it matched q: the first text match (request line, request body,
// then response body) with some context, or the start of the response body when q searched no text.
func Snippet(e *store.TrailEntry, q store.TrailQuery) string {
	type field struct{ needle, text string }
	var fields []field
	for _, t := range []string{e.RequestLine(), e.RequestText, e.ResponseText} {
		fields = append(fields, field{q.Keywords, t})
	}
	fields = append(fields, field{q.RequestText, e.RequestText}, field{q.ResponseText, e.ResponseText})
	for _, f := range fields {
		if f.needle == "" {
			continue
		}
		if i := indexFold(f.text, f.needle); i >= 0 {
			return excerpt(f.text, i, i+len(f.needle))
		}
	}
	return excerpt(e.ResponseText, 0, 0)
}

// indexFold is a case-insensitive strings.Index for the ASCII letters both engines fold.
func indexFold(s, sub string) int {
	return strings.Index(strings.ToLower(s), strings.ToLower(sub))
}

// excerpt cuts s around [i,j) on character boundaries, marking cuts with an ellipsis.
func excerpt(s string, i, j int) string {
	from, to := max(0, i-snippetRadius), min(len(s), j+snippetRadius)
	if i == 0 && j == 0 {
		to = min(len(s), 2*snippetRadius)
	}
	for from > 0 && !utf8.RuneStart(s[from]) {
		from--
	}
	for to < len(s) && !utf8.RuneStart(s[to]) {
		to++
	}
	out := s[from:to]
	if from > 0 {
		out = "…" + out
	}
	if to < len(s) {
		out += "…"
	}
	return out
}
