package recording

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := newTestStore(t, dir)
	const id = "0f8fad5b-d9cb-469f-a165-70867728950e"
	seal := writeTrail(t, s, id, 5)
	if seal.Records != 7 {
		t.Errorf("seal.Records = %d, want 7 (open, 5 exchanges, close)", seal.Records)
	}

	fi, err := os.Stat(trailPath(dir, id))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("trail mode = %v, want 0600", got)
	}

	tests := []struct {
		offset, limit int
		wantSeqs      []int64
	}{
		{0, 0, []int64{1, 2, 3, 4, 5}},
		{0, 2, []int64{1, 2}},
		{3, 10, []int64{4, 5}},
		{5, 10, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("offset=%d,limit=%d", tt.offset, tt.limit), func(t *testing.T) {
			page, err := s.Read(context.Background(), id, tt.offset, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var seqs []int64
			for _, ex := range page.Items {
				seqs = append(seqs, ex.Seq)
			}
			if diff := cmp.Diff(tt.wantSeqs, seqs); diff != "" {
				t.Errorf("seqs (-want +got):\n%s", diff)
			}
			if page.Total != 5 || page.Meta.User != "alice" || page.Close == nil || page.Close.Exchanges != 5 {
				t.Errorf("page = total %d meta %+v close %+v", page.Total, page.Meta, page.Close)
			}
		})
	}

	page, _ := s.Read(context.Background(), id, 0, 1)
	want := testExchange(0)
	want.Seq = 1
	if diff := cmp.Diff(*want, page.Items[0]); diff != "" {
		t.Errorf("exchange did not survive the trail (-want +got):\n%s", diff)
	}

	rep, err := s.Verify(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || !rep.Closed || rep.Interrupted || rep.TornTail || rep.Records != seal.Records || rep.Head != seal.Head {
		t.Errorf("Verify = %+v, want OK, closed, matching seal %+v", rep, seal)
	}
}

func TestSessionIDCannotEscape(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "trails")
	s := newTestStore(t, dir)
	for _, id := range []string{"", "../escape", "a/b", `a\b`, ".hidden", "x.trail", "-lead", "a\x00b", "é", string(make([]byte, 129))} {
		t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
			if _, err := s.Create(context.Background(), testMeta(id), nil); !errors.Is(err, ErrInvalidSessionID) {
				t.Errorf("Create(%q) error = %v, want ErrInvalidSessionID", id, err)
			}
			if _, err := s.Read(context.Background(), id, 0, 0); !errors.Is(err, ErrInvalidSessionID) {
				t.Errorf("Read(%q) error = %v, want ErrInvalidSessionID", id, err)
			}
		})
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 1 {
		t.Errorf("files appeared beside the trail directory: %v", ents)
	}
}

func TestUnknownSession(t *testing.T) {
	s := newTestStore(t, t.TempDir())
	if _, err := s.Read(context.Background(), "nope", 0, 0); !errors.Is(err, ErrNotExist) {
		t.Errorf("Read error = %v, want ErrNotExist", err)
	}
	if _, err := s.Verify(context.Background(), "nope"); !errors.Is(err, ErrNotExist) {
		t.Errorf("Verify error = %v, want ErrNotExist", err)
	}
}

func TestCreateTwiceFails(t *testing.T) {
	s := newTestStore(t, t.TempDir())
	writeTrail(t, s, "s1", 1)
	if _, err := s.Create(context.Background(), testMeta("s1"), nil); !errors.Is(err, os.ErrExist) {
		t.Errorf("second Create error = %v, want os.ErrExist: a trail must never be reopened or replaced", err)
	}
}

func TestConcurrentAppend(t *testing.T) {
	s := newTestStore(t, t.TempDir())
	ctx := context.Background()
	w, err := s.Create(ctx, testMeta("busy"), nil)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 50
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			for i := range each {
				if err := w.Append(ctx, testExchange(g*each+i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if _, err := w.Close("done"); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Verify(ctx, "busy")
	if err != nil || !rep.OK || rep.Records != workers*each+2 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	page, err := s.Read(ctx, "busy", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, ex := range page.Items {
		if ex.Seq != int64(i+1) {
			t.Fatalf("item %d has seq %d: seqs must follow trail order", i, ex.Seq)
		}
	}
	if page.Total != workers*each {
		t.Errorf("Total = %d, want %d", page.Total, workers*each)
	}
}

// failingFile writes the first keep bytes of each write and then fails, as
// a full disk does.
type failingFile struct {
	f    *os.File
	keep int
	err  error
}

func (ff *failingFile) Write(p []byte) (int, error) {
	n, _ := ff.f.Write(p[:min(ff.keep, len(p))])
	return n, ff.err
}
func (ff *failingFile) Sync() error  { return ff.f.Sync() }
func (ff *failingFile) Close() error { return ff.f.Close() }

func TestWriteFailureSurfaced(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(t *testing.T, w *Writer)
		want   error
	}{
		{"closed file", func(t *testing.T, w *Writer) { w.f.(*os.File).Close() }, os.ErrClosed},
		{"disk full after partial write", func(t *testing.T, w *Writer) {
			w.f = &failingFile{f: w.f.(*os.File), keep: 40, err: syscall.ENOSPC}
		}, syscall.ENOSPC},
		{"short write", func(t *testing.T, w *Writer) {
			w.f = &failingFile{f: w.f.(*os.File), keep: 10}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := newTestStore(t, dir)
			ctx := context.Background()
			w, err := s.Create(ctx, testMeta("s"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Append(ctx, testExchange(0)); err != nil {
				t.Fatal(err)
			}
			before := w.Seal()
			tt.break_(t, w)

			err = w.Append(ctx, testExchange(1))
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("Append error = %v, want %v", err, tt.want)
			}
			if !errors.Is(w.Err(), err) {
				t.Errorf("Err() = %v, want %v", w.Err(), err)
			}
			if err2 := w.Append(ctx, testExchange(2)); !errors.Is(err2, err) {
				t.Errorf("Append after failure = %v, want the same error: a broken writer must stay broken", err2)
			}
			if got := w.Seal(); got != before {
				t.Errorf("seal moved on a failed write: %+v, was %+v", got, before)
			}
			if _, err := w.Close("done"); err == nil {
				t.Error("Close of a broken writer reported success")
			}

			// After a restart the trail verifies as interrupted.
			s2 := newTestStore(t, dir)
			ids, err := s2.Recover(ctx)
			if err != nil || len(ids) != 1 {
				t.Fatalf("Recover = %v, %v", ids, err)
			}
			rep, err := s2.Verify(ctx, "s")
			if err != nil || !rep.OK || !rep.Interrupted || rep.Records != before.Records+1 {
				t.Errorf("Verify after recovery = %+v, %v", rep, err)
			}
		})
	}
}

func TestAppendAfterClose(t *testing.T) {
	s := newTestStore(t, t.TempDir())
	w, err := s.Create(context.Background(), testMeta("s"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close("done"); err != nil {
		t.Fatal(err)
	}
	if err := w.Append(context.Background(), testExchange(0)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if _, err := w.Close("again"); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
}
