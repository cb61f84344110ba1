package recording

import (
	"bytes"
	"context"
	"os"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestVerifyDetectsTampering edits a closed trail of 5 lines (open, three
// exchanges, close) the way someone with file access could.
func TestVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(lines [][]byte) [][]byte
		want   VerifyReport // only the fields compared below
		sealed bool         // Records and Head still match the seal
	}{
		{
			name:   "untouched",
			edit:   func(l [][]byte) [][]byte { return l },
			want:   VerifyReport{OK: true, Closed: true},
			sealed: true,
		},
		{
			name: "byte flipped in the middle",
			edit: func(l [][]byte) [][]byte {
				i := bytes.Index(l[2], []byte(`"status":200`))
				l[2][i+10] = '4' // 200 -> 400
				return l
			},
			want: VerifyReport{FirstBadLine: 3},
		},
		{
			name: "mac rewritten",
			edit: func(l [][]byte) [][]byte {
				n := len(l[1])
				l[1][n-4] ^= 1
				return l
			},
			want: VerifyReport{FirstBadLine: 2},
		},
		{
			name: "line deleted",
			edit: func(l [][]byte) [][]byte { return slices.Delete(l, 2, 3) },
			want: VerifyReport{FirstBadLine: 3},
		},
		{
			name: "lines swapped",
			edit: func(l [][]byte) [][]byte { l[1], l[2] = l[2], l[1]; return l },
			want: VerifyReport{FirstBadLine: 2},
		},
		{
			name: "line duplicated",
			edit: func(l [][]byte) [][]byte { return slices.Insert(l, 2, l[1]) },
			want: VerifyReport{FirstBadLine: 3},
		},
		{
			name: "blank line inserted",
			edit: func(l [][]byte) [][]byte { return slices.Insert(l, 2, []byte("\n")) },
			want: VerifyReport{FirstBadLine: 3},
		},
		{
			name: "close record altered",
			edit: func(l [][]byte) [][]byte { l[4] = bytes.Replace(l[4], []byte("idle"), []byte("IDLE"), 1); return l },
			want: VerifyReport{FirstBadLine: 5},
		},
		{
			name:   "line appended after close",
			edit:   func(l [][]byte) [][]byte { return append(l, l[2]) },
			want:   VerifyReport{FirstBadLine: 6},
			sealed: true, // the records up to the close still verify
		},
		{
			// Not detectable from the file alone: the chain is intact
			// but shorter than the seal the database holds.
			name: "close record removed",
			edit: func(l [][]byte) [][]byte { return l[:4] },
			want: VerifyReport{OK: true},
		},
		{
			// A crash's torn tail, not tampering: OK, but not closed.
			name: "last line cut short",
			edit: func(l [][]byte) [][]byte { l[4] = l[4][:30]; return l },
			want: VerifyReport{OK: true, TornTail: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := newTestStore(t, dir)
			seal := writeTrail(t, s, "s", 3)
			path := trailPath(dir, "s")
			lines := tt.edit(readLines(t, path))
			if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
				t.Fatal(err)
			}
			rep, err := s.Verify(context.Background(), "s")
			if err != nil {
				t.Fatal(err)
			}
			got := VerifyReport{OK: rep.OK, FirstBadLine: rep.FirstBadLine, Closed: rep.Closed, Interrupted: rep.Interrupted, TornTail: rep.TornTail}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Verify (-want +got):\n%s\nproblem: %s", diff, rep.Problem)
			}
			if sealed := rep.Records == seal.Records && rep.Head == seal.Head; sealed != tt.sealed {
				t.Errorf("report matches seal = %v, want %v", sealed, tt.sealed)
			}
			if !rep.OK && rep.Problem == "" {
				t.Error("bad trail without a problem description")
			}
		})
	}
}

func TestVerifyWrongKey(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, newTestStore(t, dir), "s", 1)
	other, err := Open(dir, bytes.Repeat([]byte("x"), 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	rep, err := other.Verify(context.Background(), "s")
	if err != nil || rep.OK || rep.FirstBadLine != 1 {
		t.Errorf("Verify with another key = %+v, %v; want failure at line 1", rep, err)
	}
}

func TestVerifyTrailOfAnotherSession(t *testing.T) {
	dir := t.TempDir()
	s := newTestStore(t, dir)
	writeTrail(t, s, "a", 1)
	b, _ := os.ReadFile(trailPath(dir, "a"))
	os.WriteFile(trailPath(dir, "b"), b, 0o600)
	rep, err := s.Verify(context.Background(), "b")
	if err != nil || rep.OK || rep.FirstBadLine != 1 {
		t.Errorf("Verify of a copied trail = %+v, %v; want failure at line 1", rep, err)
	}
}

// crash leaves a trail with n exchanges, no close record and, if torn is
// set, a partial line at the end, as a process killed mid-write does.
func crash(t *testing.T, dir, id string, n int, torn []byte) {
	t.Helper()
	s := newTestStore(t, dir)
	w, err := s.Create(context.Background(), testMeta(id), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := w.Append(context.Background(), testExchange(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.f.Write(torn); err != nil {
		t.Fatal(err)
	}
	w.f.Close() // no close record: the process died
}

func TestRecover(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	partial := []byte(`{"n":4,"kind":"exchange","time":"2025-03-14T09:`)
	crash(t, dir, "torn", 2, partial)
	crash(t, dir, "clean", 2, nil)
	crash(t, dir, "open-only", 0, partial[:5])
	// A crash during the very first write leaves only torn bytes.
	if err := os.WriteFile(trailPath(dir, "torn-open"), []byte(`{"n":1,"ki`), 0o600); err != nil {
		t.Fatal(err)
	}
	writeTrail(t, newTestStore(t, dir), "closed", 1)

	s := newTestStore(t, dir)
	rep, _ := s.Verify(ctx, "torn")
	if !rep.OK || !rep.TornTail || rep.Interrupted {
		t.Errorf("before Recover: %+v, want OK torn tail", rep)
	}

	ids, err := s.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"clean", "open-only", "torn", "torn-open"}, ids); diff != "" {
		t.Errorf("Recover ids (-want +got):\n%s", diff)
	}

	wants := map[string]VerifyReport{
		"torn":      {OK: true, Interrupted: true, TornTail: true, Records: 4},
		"clean":     {OK: true, Interrupted: true, Records: 4},
		"open-only": {OK: true, Interrupted: true, TornTail: true, Records: 2},
		"torn-open": {OK: true, Interrupted: true, TornTail: true, Records: 1},
		"closed":    {OK: true, Closed: true, Records: 3},
	}
	for id, want := range wants {
		t.Run(id, func(t *testing.T) {
			rep, err := s.Verify(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			got := VerifyReport{OK: rep.OK, Closed: rep.Closed, Interrupted: rep.Interrupted, TornTail: rep.TornTail, Records: rep.Records}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Verify after Recover (-want +got):\n%s\nproblem at line %d: %s", diff, rep.FirstBadLine, rep.Problem)
			}
		})
	}

	page, err := s.Read(ctx, "torn", 0, 0)
	if err != nil || page.Total != 2 || page.Interrupted == nil || page.Interrupted.TornBytes != len(partial) {
		t.Errorf("Read after Recover = %+v, %v", page, err)
	}

	if again, err := s.Recover(ctx); err != nil || len(again) != 0 {
		t.Errorf("second Recover = %v, %v; want nothing to do", again, err)
	}
}

// TestTornRuleIsNarrow pins that the torn-tail allowance cannot hide an
// edit: the bad line must be exactly the torn bytes the interrupted record
// names and must be followed by that record alone.
func TestTornRuleIsNarrow(t *testing.T) {
	tests := []struct {
		name string
		edit func(lines [][]byte) [][]byte
		bad  int
	}{
		// lines: open, ex, ex, torn, interrupted
		{"torn bytes removed", func(l [][]byte) [][]byte { return slices.Delete(l, 3, 4) }, 4},
		{"torn bytes lengthened", func(l [][]byte) [][]byte { l[3] = append([]byte("xx"), l[3]...); return l }, 4},
		{"line after interrupted", func(l [][]byte) [][]byte { return append(l, l[1]) }, 6},
		{"middle line replaced by garbage", func(l [][]byte) [][]byte { l[1] = []byte("garbage\n"); return l }, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			crash(t, dir, "s", 2, []byte(`{"n":4,"kind":"exch`))
			s := newTestStore(t, dir)
			if _, err := s.Recover(context.Background()); err != nil {
				t.Fatal(err)
			}
			path := trailPath(dir, "s")
			os.WriteFile(path, bytes.Join(tt.edit(readLines(t, path)), nil), 0o600)
			rep, err := s.Verify(context.Background(), "s")
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK || rep.FirstBadLine != tt.bad {
				t.Errorf("Verify = %+v, want failure at line %d", rep, tt.bad)
			}
		})
	}
}

func TestRecoverLeavesTamperedTrail(t *testing.T) {
	dir := t.TempDir()
	crash(t, dir, "s", 2, nil)
	path := trailPath(dir, "s")
	lines := readLines(t, path)
	lines[1] = bytes.Replace(lines[1], []byte("GET"), []byte("PUT"), 1)
	os.WriteFile(path, bytes.Join(lines, nil), 0o600)
	before, _ := os.ReadFile(path)

	s := newTestStore(t, dir)
	ids, err := s.Recover(context.Background())
	if err != nil || len(ids) != 0 {
		t.Errorf("Recover = %v, %v; want the tampered trail skipped", ids, err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("Recover wrote to a tampered trail")
	}
}
