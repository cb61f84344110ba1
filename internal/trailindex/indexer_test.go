package trailindex

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/recording"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/wsframe"
	"github.com/google/go-cmp/cmp"
)

// gatedBackend holds every write until its gate opens, like a database that has stalled.
type gatedBackend struct {
	gate    chan struct{}
	mu      sync.Mutex
	batches [][]store.TrailEntry
	fail    int // fail this many writes first
}

func (b *gatedBackend) IndexExchanges(ctx context.Context, entries []store.TrailEntry) error {
	select {
	case <-b.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail > 0 {
		b.fail--
		return errors.New("database is busy")
	}
	b.batches = append(b.batches, append([]store.TrailEntry(nil), entries...))
	return nil
}

func (b *gatedBackend) written() (n int, largest int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, x := range b.batches {
		n += len(x)
		largest = max(largest, len(x))
	}
	return n, largest
}

// TestEnqueueNeverBlocks: with the database stalled, the request path's Enqueue returns at once; past the queue's
// bound entries are dropped and counted, and what was queued is written in bounded batches once the database
// answers again.
func TestEnqueueNeverBlocks(t *testing.T) {
	be := &gatedBackend{gate: make(chan struct{})}
	ix := &Indexer{Backend: be, QueueSize: 10, BatchSize: 4}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ix.Run(ctx); close(done) }()
	queued := 0
	// The worker holds at most one batch of the first entries while the gate is shut, so at most
	// QueueSize+BatchSize entries fit; everything past that must be refused without waiting.
	for i := range 100 {
		if ix.Enqueue(store.TrailEntry{SessionID: "s", Seq: int64(i + 1)}) {
			queued++
		}
	}
	indexed, dropped, failed, _ := ix.Stats()
	if queued > 10+4 || queued < 10 || dropped != int64(100-queued) || indexed != 0 || failed != 0 {
		t.Fatalf("queued %d, stats indexed %d dropped %d failed %d", queued, indexed, dropped, failed)
	}
	close(be.gate)
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer fcancel()
	if err := ix.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	n, largest := be.written()
	if n != queued || largest > 4 {
		t.Errorf("written %d in batches of at most %d, want %d in batches of at most 4", n, largest, queued)
	}
	cancel()
	<-done
}

func TestFailedBatchIsRetriedOnceThenCounted(t *testing.T) {
	gate := make(chan struct{})
	close(gate)
	be := &gatedBackend{gate: gate, fail: 1}
	ix := &Indexer{Backend: be, BatchSize: 100}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ix.Enqueue(store.TrailEntry{SessionID: "s", Seq: 1})
	go ix.Run(ctx)
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer fcancel()
	if err := ix.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	if indexed, _, failed, _ := ix.Stats(); indexed != 1 || failed != 0 {
		t.Errorf("after one busy answer: indexed %d failed %d, want the retry to succeed", indexed, failed)
	}
	be.mu.Lock()
	be.fail = 2
	be.mu.Unlock()
	ix.Enqueue(store.TrailEntry{SessionID: "s", Seq: 2})
	if err := ix.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	if indexed, _, failed, _ := ix.Stats(); indexed != 1 || failed != 1 {
		t.Errorf("after two failures: indexed %d failed %d", indexed, failed)
	}
}

func TestEntry(t *testing.T) {
	started := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	ex := &recording.Exchange{Seq: 7, ID: "req-1", Started: started, DurationMS: 12.5, Method: "PATCH",
		URL: "https://k8s.example:6443/apis/apps/v1/namespaces/prod/deployments/web%2Fx?dryRun=All", Proto: "HTTP/2", Status: 200,
		RequestBody: []byte(`{"replicas":3}`), ResponseBody: []byte("caf\xc3"), ResponseBodyTruncated: true, Decision: "allowed",
		WebSocket: true, WSMessages: []wsframe.Message{
			{Direction: wsframe.ToTarget, Opcode: "text", Text: "sub pods"},
			{Direction: wsframe.ToClient, Opcode: "binary", Size: 9},
			{Direction: wsframe.ToClient, Opcode: "text", Text: "event 1"},
		}}
	got := Entry(Session{ID: "s1", UserID: "u1", UserName: "alice", TargetID: "t1", TargetName: "k8s", ClientAddress: "10.0.0.5"}, ex)
	want := store.TrailEntry{SessionID: "s1", Seq: 7, RequestID: "req-1", Started: started, DurationMS: 12.5, UserID: "u1",
		UserName: "alice", TargetID: "t1", TargetName: "k8s", ClientAddress: "10.0.0.5", Method: "PATCH", Scheme: "https",
		Host: "k8s.example:6443", Path: "/apis/apps/v1/namespaces/prod/deployments/web%2Fx", Query: "dryRun=All", Status: 200,
		Decision: "allowed", Proto: "HTTP/2", WebSocket: true, RequestText: "{\"replicas\":3}\nsub pods", ResponseText: "caf\nevent 1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entry (-want +got):\n%s", diff)
	}
	bin := Entry(Session{ID: "s"}, &recording.Exchange{URL: "http://h/", RequestBody: []byte{0xff, 0xfe, 0}})
	if bin.RequestText != "" {
		t.Errorf("a binary body was indexed as %q", bin.RequestText)
	}
}

func TestSnippet(t *testing.T) {
	long := strings.Repeat("a", 200) + "Needle-42" + strings.Repeat("é", 200)
	e := &store.TrailEntry{Method: "GET", Host: "h", Path: "/p", ResponseText: long}
	s := Snippet(e, store.TrailQuery{ResponseText: "needle-42"})
	if !strings.Contains(s, "Needle-42") || !strings.HasPrefix(s, "…") || !strings.HasSuffix(s, "…") || len(s) > 2*snippetRadius+len("Needle-42")+8 {
		t.Errorf("snippet %q", s)
	}
	if s := Snippet(e, store.TrailQuery{Keywords: "/p"}); s != "GET h/p" {
		t.Errorf("keyword in the request line: %q", s)
	}
	if s := Snippet(&store.TrailEntry{ResponseText: "short"}, store.TrailQuery{}); s != "short" {
		t.Errorf("no text query: %q", s)
	}
}

type nopBackend struct{}

func (nopBackend) IndexExchanges(context.Context, []store.TrailEntry) error { return nil }

// BenchmarkEnqueue is what indexing adds to a recorded request: one non-blocking send (the worker builds the entry).
func BenchmarkEnqueue(b *testing.B) {
	ix := &Indexer{Backend: nopBackend{}, QueueSize: 1 << 16}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ix.Run(ctx)
	ex := &recording.Exchange{Seq: 1, Method: "GET", URL: "https://k8s.example:6443/api/v1/namespaces/prod/pods?limit=5",
		ResponseBody: []byte(strings.Repeat(`{"kind":"Pod","metadata":{"name":"web"}}`, 50)), Status: 200}
	s := Session{ID: "s1", UserName: "alice", TargetName: "k8s"}
	b.ReportAllocs()
	for b.Loop() {
		ix.EnqueueExchange(s, ex)
	}
}

// TestQueueBytesBound: the queue also bounds the body bytes its exchanges hold, so a backlog behind a slow database
// cannot hold up to QueueSize times twice the body limit; the bytes are given back once the worker builds the
// entries.
func TestQueueBytesBound(t *testing.T) {
	be := &gatedBackend{gate: make(chan struct{})}
	close(be.gate)
	ix := &Indexer{Backend: be, QueueSize: 100, QueueBytes: 1000}
	body := func(n int) *recording.Exchange {
		return &recording.Exchange{Method: "POST", URL: "https://api.example/x", RequestBody: []byte(strings.Repeat("q", n/2)),
			ResponseBody: []byte(strings.Repeat("r", n-n/2))}
	}
	// No worker runs yet: nothing drains.
	for i, want := range []bool{true, true, false} {
		if got := ix.EnqueueExchange(Session{ID: "s"}, body(400)); got != want {
			t.Fatalf("exchange %d of 400 body bytes against a budget of 1000: queued %v, want %v", i, got, want)
		}
	}
	if !ix.EnqueueExchange(Session{ID: "s"}, body(0)) {
		t.Error("an exchange without a body was refused while entries still fit")
	}
	if _, dropped, _, _ := ix.Stats(); dropped != 1 {
		t.Errorf("dropped %d, want the one over the byte budget", dropped)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ix.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer fcancel()
	if err := ix.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := be.written(); n != 3 {
		t.Errorf("written %d entries, want the 3 queued", n)
	}
	// The worker gave the bytes back: two more fit again.
	for i := range 2 {
		if !ix.EnqueueExchange(Session{ID: "s"}, body(400)) {
			t.Fatalf("exchange %d after the backlog drained was refused", i)
		}
	}
}

// TestLingerGathersOneBatch: entries that arrive one after another while the worker lingers go to the database in
// one batch (one commit and one text-index segment), not one each; ending the worker writes what it holds.
func TestLingerGathersOneBatch(t *testing.T) {
	gate := make(chan struct{})
	close(gate)
	be := &gatedBackend{gate: gate}
	// The linger is far longer than the test: the first batch can only be written because it filled up.
	ix := &Indexer{Backend: be, BatchSize: 5, Linger: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ix.Run(ctx); close(done) }()
	for i := range 7 {
		ix.Enqueue(store.TrailEntry{SessionID: "s", Seq: int64(i + 1)})
	}
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer fcancel()
	for {
		if n, _ := be.written(); n >= 5 {
			break
		}
		select {
		case <-fctx.Done():
			t.Fatal("the first full batch was not written")
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	<-done
	be.mu.Lock()
	defer be.mu.Unlock()
	var sizes []int
	for _, b := range be.batches {
		sizes = append(sizes, len(b))
	}
	if diff := cmp.Diff([]int{5, 2}, sizes); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}
	if indexed, _, _, _ := ix.Stats(); indexed != 7 {
		t.Errorf("indexed %d, want 7", indexed)
	}
}
