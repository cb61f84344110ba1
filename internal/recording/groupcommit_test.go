package recording

import (
	"context"
	"errors"
	"os"
	"sync"
	"syscall"
	"testing"
)

// gateFile holds its first write until released, counts writes and can fail the writes after the first.
type gateFile struct {
	f        *os.File
	entered  chan struct{} // closed when the first write starts
	release  chan struct{}
	once     sync.Once
	mu       sync.Mutex
	writes   int
	failRest error
}

func (g *gateFile) Write(p []byte) (int, error) {
	g.mu.Lock()
	g.writes++
	first := g.writes == 1
	g.mu.Unlock()
	if first {
		g.once.Do(func() { close(g.entered) })
		<-g.release
	} else if g.failRest != nil {
		return 0, g.failRest
	}
	return g.f.Write(p)
}
func (g *gateFile) Sync() error  { return g.f.Sync() }
func (g *gateFile) Close() error { return g.f.Close() }

// startGroup has one exchange's write held in the file and k more appends queued behind it, and returns their
// results once the write is released.
func startGroup(t *testing.T, w *Writer, g *gateFile, k int) (rest []error, first error) {
	t.Helper()
	ctx := context.Background()
	firstDone := make(chan error, 1)
	go func() { firstDone <- w.Append(ctx, testExchange(0)) }()
	<-g.entered
	errs := make(chan error, k)
	for i := range k {
		go func() { errs <- w.Append(ctx, testExchange(i+1)) }()
	}
	// Bounded by the appends themselves: each queues its line under mu while the first write is held.
	for queued := false; !queued; {
		w.mu.Lock()
		queued = w.pendRecords == int64(k)
		w.mu.Unlock()
	}
	close(g.release)
	first = <-firstDone
	for range k {
		rest = append(rest, <-errs)
	}
	return rest, first
}

// TestGroupCommit: appends that arrive while a write is in progress are written together with one write, each
// returns only once its line is written, and the trail verifies with every exchange in order.
func TestGroupCommit(t *testing.T) {
	s := newTestStore(t, t.TempDir())
	w, err := s.Create(context.Background(), testMeta("group"), nil)
	if err != nil {
		t.Fatal(err)
	}
	g := &gateFile{f: w.f.(*os.File), entered: make(chan struct{}), release: make(chan struct{})}
	w.f = g
	const k = 6
	rest, first := startGroup(t, w, g, k)
	if first != nil {
		t.Fatal(first)
	}
	for _, err := range rest {
		if err != nil {
			t.Fatal(err)
		}
	}
	if g.writes != 2 {
		t.Errorf("%d writes for 1+%d exchanges, want 2 (the held one, then the queued ones together)", g.writes, k)
	}
	seal, err := w.Close("done")
	if err != nil {
		t.Fatal(err)
	}
	if seal.Records != k+3 {
		t.Errorf("seal counts %d records, want %d", seal.Records, k+3)
	}
	rep, err := s.Verify(context.Background(), "group")
	if err != nil || !rep.OK || rep.Records != k+3 || rep.Head != seal.Head {
		t.Fatalf("Verify = %+v, %v (seal %+v)", rep, err, seal)
	}
	page, err := s.Read(context.Background(), "group", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, ex := range page.Items {
		if ex.Seq != int64(i+1) {
			t.Fatalf("item %d has seq %d", i, ex.Seq)
		}
	}
}

// TestGroupCommitFailure: when a batch's write fails, every exchange of that batch gets the error (none is
// acknowledged without being written), the writer is broken, and the seal stays at the last line written.
func TestGroupCommitFailure(t *testing.T) {
	s := newTestStore(t, t.TempDir())
	w, err := s.Create(context.Background(), testMeta("groupfail"), nil)
	if err != nil {
		t.Fatal(err)
	}
	g := &gateFile{f: w.f.(*os.File), entered: make(chan struct{}), release: make(chan struct{}), failRest: syscall.ENOSPC}
	w.f = g
	rest, first := startGroup(t, w, g, 4)
	if first != nil {
		t.Fatalf("the written exchange failed: %v", first)
	}
	for i, err := range rest {
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("queued exchange %d: err = %v, want ENOSPC", i, err)
		}
	}
	if !errors.Is(w.Err(), syscall.ENOSPC) {
		t.Errorf("Err = %v", w.Err())
	}
	if seal := w.Seal(); seal.Records != 2 {
		t.Errorf("seal counts %d records, want 2 (open and the one written)", seal.Records)
	}
	w.Close("done")
	rep, err := s.Verify(context.Background(), "groupfail")
	if err != nil || rep.Records != 2 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}
