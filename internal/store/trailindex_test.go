package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func TestTrailIndexSearch(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		week := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
		entry := func(sess string, seq int64, day int, user, method, path, req, resp string) store.TrailEntry {
			return store.TrailEntry{SessionID: sess, Seq: seq, Started: week.Add(time.Duration(day) * 24 * time.Hour), UserName: user,
				TargetName: "k8s", Method: method, Scheme: "https", Host: "k8s.example:6443", Path: path, Status: 200,
				Decision: "allowed", Proto: "HTTP/2", RequestText: req, ResponseText: resp}
		}
		entries := []store.TrailEntry{
			entry("s1", 1, 1, "alice", "DELETE", "/apis/apps/v1/namespaces/prod/deployments/web", "", `{"kind":"Status"}`),
			entry("s1", 2, 2, "alice", "GET", "/apis/apps/v1/namespaces/prod/deployments", "", `{"items":[{"name":"Web-Frontend"}]}`),
			entry("s2", 1, 3, "bob", "DELETE", "/apis/apps/v1/namespaces/production/pods/x", "", ""),
			entry("s2", 2, 4, "bob", "DELETE", "/apis/apps/v1/namespaces/prod", "", ""),
			entry("s3", 1, -10, "carol", "DELETE", "/apis/apps/v1/namespaces/prod/secrets/db", "", "old"),
			entry("s3", 2, 5, "carol", "POST", "/api/v1/namespaces/prod/pods", `{"image":"nginx:1.27","pct":"100%_done"}`, "created \x00 nul"),
			entry("s4", 1, 6, "dave", "GET", "/apis/apps/v1/namespaces/prod-x/pods", "", ""),
			entry("s4", 2, 6, "dave", "GET", "/apis/apps/v1/namespaces/prod.old", "", ""),
		}
		if err := e.S.IndexExchanges(ctx, entries); err != nil {
			t.Fatal(err)
		}
		// A retried batch is harmless.
		if err := e.S.IndexExchanges(ctx, entries[:2]); err != nil {
			t.Fatalf("re-indexing: %v", err)
		}
		keys := func(list []store.TrailEntry) []string {
			var out []string
			for _, x := range list {
				out = append(out, fmt.Sprintf("%s/%d", x.SessionID, x.Seq))
			}
			return out
		}
		for _, tc := range []struct {
			name string
			q    store.TrailQuery
			want []string
		}{
			{"every DELETE under prod last week, by anyone", store.TrailQuery{Method: "DELETE", PathPrefix: "/apis/apps/v1/namespaces/prod",
				From: week, To: week.Add(7 * 24 * time.Hour)}, []string{"s2/2", "s1/1"}},
			{"response containing a string, any case", store.TrailQuery{ResponseText: "web-frontend"}, []string{"s1/2"}},
			{"keywords reach the request line", store.TrailQuery{Keywords: "namespaces/production"}, []string{"s2/1"}},
			{"keywords reach request bodies", store.TrailQuery{Keywords: "nginx:1.27"}, []string{"s3/2"}},
			{"LIKE wildcards are literal", store.TrailQuery{RequestText: "100%_d"}, []string{"s3/2"}},
			{"wildcards do not match other text", store.TrailQuery{RequestText: "1%0"}, nil},
			{"a three-character needle", store.TrailQuery{ResponseText: "OLD"}, []string{"s3/1"}},
			{"path prefixes are case-sensitive", store.TrailQuery{PathPrefix: "/APIS/apps"}, nil},
			{"a path prefix is not a string prefix", store.TrailQuery{PathPrefix: "/apis/apps/v1/namespaces/pro"}, nil},
			{"a path prefix matches the path itself", store.TrailQuery{PathPrefix: "/apis/apps/v1/namespaces/prod/", Method: "DELETE", UserName: "bob"}, []string{"s2/2"}},
			{"a sibling that sorts inside the range", store.TrailQuery{PathPrefix: "/apis/apps/v1/namespaces/prod", UserName: "dave"}, nil},
			{"request text is not response text", store.TrailQuery{ResponseText: "nginx"}, nil},
			{"a quote in the needle", store.TrailQuery{ResponseText: `"kind"`}, []string{"s1/1"}},
			{"user and oldest first", store.TrailQuery{UserName: "carol", Ascending: true}, []string{"s3/1", "s3/2"}},
			{"NUL stored as space", store.TrailQuery{ResponseText: "created   nul"}, []string{"s3/2"}},
			{"paging", store.TrailQuery{Limit: 2, Offset: 3}, []string{"s2/2", "s2/1"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, total, exact, err := e.S.SearchTrails(ctx, tc.q)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(keys(got), tc.want) {
					t.Errorf("got %v, want %v", keys(got), tc.want)
				}
				if !exact {
					t.Error("a count of a few was reported as capped")
				}
				if tc.q.Limit == 0 && total != len(tc.want) {
					t.Errorf("total %d, want %d", total, len(tc.want))
				}
			})
		}
		if _, _, _, err := e.S.SearchTrails(ctx, store.TrailQuery{ResponseText: "ol"}); !errors.Is(err, store.ErrBadQuery) {
			t.Errorf("a two-character needle: %v, want ErrBadQuery", err)
		}
		if _, total, _, _ := e.S.SearchTrails(ctx, store.TrailQuery{Limit: 2, Offset: 1}); total != len(entries) {
			t.Errorf("total with paging %d, want %d", total, len(entries))
		}
		if err := e.S.DeleteTrailIndex(ctx, []string{"s1", "s3"}); err != nil {
			t.Fatal(err)
		}
		got, _, _, err := e.S.SearchTrails(ctx, store.TrailQuery{})
		if err != nil || !slices.Equal(keys(got), []string{"s4/2", "s4/1", "s2/2", "s2/1"}) {
			t.Errorf("after deleting s1 and s3: %v %v", keys(got), err)
		}
		// Deleted rows leave the text index too: the FTS table must not find them.
		if got, _, _, _ := e.S.SearchTrails(ctx, store.TrailQuery{ResponseText: "web-frontend"}); len(got) != 0 {
			t.Errorf("text search finds deleted entries: %v", keys(got))
		}
	})
}

// TestTrailIndexLargeBatch: a batch larger than one statement's rows (IndexExchanges splits it) is indexed whole and
// searchable, a duplicate inside it is harmless, and a retry of the whole batch adds nothing.
func TestTrailIndexLargeBatch(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		start := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
		var entries []store.TrailEntry
		for i := range 450 {
			entries = append(entries, store.TrailEntry{SessionID: "big", Seq: int64(i + 1), Started: start.Add(time.Duration(i) * time.Second),
				Method: "GET", Scheme: "https", Host: "api.example", Path: fmt.Sprintf("/items/%d", i), Status: 200,
				ResponseText: fmt.Sprintf(`{"marker":"m%04dx"}`, i)})
		}
		entries = append(entries, entries[7]) // the same exchange twice in one batch
		for range 2 {
			if err := e.S.IndexExchanges(ctx, entries); err != nil {
				t.Fatal(err)
			}
		}
		_, count, exact, err := e.S.SearchTrails(ctx, store.TrailQuery{SessionID: "big"})
		if err != nil || count != 450 || !exact {
			t.Fatalf("count %d exact %v err %v, want 450", count, exact, err)
		}
		for _, i := range []int{0, 199, 200, 399, 449} {
			got, _, _, err := e.S.SearchTrails(ctx, store.TrailQuery{ResponseText: fmt.Sprintf("m%04dx", i)})
			if err != nil || len(got) != 1 || got[0].Seq != int64(i+1) || got[0].Path != fmt.Sprintf("/items/%d", i) {
				t.Errorf("search for entry %d: %+v, %v", i, got, err)
			}
		}
	})
}

// TestTrailIndexTextIsExact: the SQLite text index narrows a search to the rows holding every trigram of the
// needle; the stored text decides. A row with all of them, but not in a row, is not a match.
func TestTrailIndexTextIsExact(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		at := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
		if err := e.S.IndexExchanges(ctx, []store.TrailEntry{
			{SessionID: "x", Seq: 1, Started: at, Method: "GET", Host: "h", Path: "/a", ResponseText: "abcXdef bcdYcde"},
			{SessionID: "x", Seq: 2, Started: at, Method: "GET", Host: "h", Path: "/b", ResponseText: "..ABCdef.."},
			{SessionID: "x", Seq: 3, Started: at, Method: "GET", Host: "h", Path: "/abcdef", RequestText: "zzz"},
		}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			q    store.TrailQuery
			want []int64
		}{
			{store.TrailQuery{ResponseText: "abcdef"}, []int64{2}},
			{store.TrailQuery{Keywords: "abcdef"}, []int64{3, 2}},
			{store.TrailQuery{RequestText: "abcdef"}, nil},
			{store.TrailQuery{ResponseText: "cXd"}, []int64{1}},
		} {
			if _, seqs := search(t, e.S, tc.q); !slices.Equal(seqs, tc.want) {
				t.Errorf("%+v: got %v, want %v", tc.q, seqs, tc.want)
			}
		}
	})
}

// TestTrailIndexTermsBackfilled: rows written without text index documents (before migration 00028) get them when
// the store opens, and are found by text from then on.
func TestTrailIndexTermsBackfilled(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	st, err := store.Open(ctx, path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 250 {
		if _, err := db.Exec(`INSERT INTO trail_index (session_id, seq, started, method, host, path, request_line, response_text)
			VALUES ('old', ?, 0, 'GET', 'h', '/p', 'GET h/p', ?)`, i+1, fmt.Sprintf("legacy body %04d", i)); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	st, err = store.Open(ctx, path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, i := range []int{0, 199, 249} {
		got, _, _, err := st.SearchTrails(ctx, store.TrailQuery{ResponseText: fmt.Sprintf("BODY %04d", i)})
		if err != nil || len(got) != 1 || got[0].Seq != int64(i+1) {
			t.Errorf("entry %d after the backfill: %v %v", i, len(got), err)
		}
	}
}

func TestTrailSearchTextBounds(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		_, _, _, err := e.S.SearchTrails(context.Background(), store.TrailQuery{Keywords: strings.Repeat("x", store.MaxSearchText+1)})
		if !errors.Is(err, store.ErrBadQuery) {
			t.Errorf("a needle over the limit: %v, want ErrBadQuery", err)
		}
		if _, _, _, err := e.S.SearchTrails(context.Background(), store.TrailQuery{Keywords: strings.Repeat("x", store.MaxSearchText)}); err != nil {
			t.Errorf("a needle at the limit: %v", err)
		}
	})
}

// TestTrailIndexBlocks: SQLite's text index keeps one document per block of up to 16 rows with consecutive ids. A
// search returns each matching row once, in order, across pages and blocks, even when a needle's trigrams are
// spread over a block's rows; a block goes with the last of its rows, not before; and rows without a document (a
// store from before blocks) get blocks when the store opens.
func TestTrailIndexBlocks(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var entries []store.TrailEntry
	for i := range 70 {
		body := fmt.Sprintf(`{"n":"row%03dz","common":"shared"}`, i)
		if i == 5 {
			body = "abc" // with row 6's "bcd", every trigram of "abcd" is in the block, but in no one row
		}
		if i == 6 {
			body = "bcd"
		}
		entries = append(entries, store.TrailEntry{SessionID: fmt.Sprintf("s%d", i%3), Seq: int64(i), Started: at.Add(time.Duration(i) * time.Second),
			Method: "GET", Host: "h", Path: "/p", ResponseText: body})
	}
	if err := e.S.IndexExchanges(ctx, entries); err != nil {
		t.Fatal(err)
	}
	blocks := func() int {
		t.Helper()
		var n int
		if err := e.Raw.QueryRow(`SELECT count(*) FROM trail_index_blocks`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := blocks(); n != 5 {
		t.Fatalf("70 rows in %d blocks, want 5 (16, 16, 16, 16, 6)", n)
	}
	seqs := func(q store.TrailQuery) []int64 {
		t.Helper()
		_, s := search(t, e.S, q)
		return s
	}
	if got := seqs(store.TrailQuery{ResponseText: "row040z"}); !slices.Equal(got, []int64{40}) {
		t.Errorf("a needle of one row: %v, want [40]", got)
	}
	if got := seqs(store.TrailQuery{ResponseText: "abcd"}); got != nil {
		t.Errorf("trigrams spread over a block's rows: %v, want none", got)
	}
	var all []int64
	for off := 0; off < 80; off += 9 {
		all = append(all, seqs(store.TrailQuery{ResponseText: "shared", Offset: off, Limit: 9})...)
	}
	var want []int64
	for i := 69; i >= 0; i-- {
		if i != 5 && i != 6 {
			want = append(want, int64(i))
		}
	}
	if !slices.Equal(all, want) {
		t.Errorf("paging through a common needle, newest first:\n got %v\nwant %v", all, want)
	}
	if got := seqs(store.TrailQuery{ResponseText: "shared", SessionID: "s1", Ascending: true, Limit: 4}); !slices.Equal(got, []int64{1, 4, 7, 10}) {
		t.Errorf("oldest first within a session: %v", got)
	}

	// Delete all but one row of the first block: it stays, and still finds that row; then the last goes with it.
	var first int64
	if err := e.Raw.QueryRow(`SELECT min(id) FROM trail_index`).Scan(&first); err != nil {
		t.Fatal(err)
	}
	e.exec(t, `DELETE FROM trail_index WHERE id >= ? AND id < ?`, first, first+15)
	if n := blocks(); n != 5 {
		t.Errorf("after deleting 15 of a block's 16 rows: %d blocks, want 5", n)
	}
	if got := seqs(store.TrailQuery{ResponseText: "row015z"}); !slices.Equal(got, []int64{15}) {
		t.Errorf("the block's last row: %v, want [15]", got)
	}
	e.exec(t, `DELETE FROM trail_index WHERE id = ?`, first+15)
	if n := blocks(); n != 4 {
		t.Errorf("after deleting the block's last row: %d blocks, want 4", n)
	}
	// Retention deletes by session: rows of one session are spread over the blocks, which go only when empty.
	e.exec(t, `DELETE FROM trail_index WHERE session_id IN ('s0', 's1')`)
	if n := blocks(); n != 4 {
		t.Errorf("after deleting two of three sessions: %d blocks, want 4", n)
	}
	e.exec(t, `DELETE FROM trail_index WHERE session_id = 's2'`)
	if n := blocks(); n != 0 {
		t.Errorf("after deleting every row: %d blocks, want 0", n)
	}

	// Rows without documents are given blocks when the store opens.
	if err := e.S.IndexExchanges(ctx, entries); err != nil {
		t.Fatal(err)
	}
	e.exec(t, `DELETE FROM trail_index_blocks`)
	e.exec(t, `UPDATE trail_index SET terms_indexed = FALSE`)
	if got := seqs(store.TrailQuery{ResponseText: "row040z"}); got != nil {
		t.Fatalf("without documents: %v", got)
	}
	s := e.reopen(t)
	if got, _, _, err := s.SearchTrails(ctx, store.TrailQuery{ResponseText: "row040z"}); err != nil || len(got) != 1 || got[0].Seq != 40 {
		t.Errorf("after the backfill: %+v %v", got, err)
	}
	if n := blocks(); n != 5 {
		t.Errorf("the backfill made %d blocks, want 5", n)
	}
}

// TestTrailIndexLongBodies: long bodies (SQLite stores them compressed) are found by text anywhere in them, ASCII
// case-insensitively and with LIKE's wildcards taken literally, and come back from a search as recorded.
func TestTrailIndexLongBodies(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		filler := strings.Repeat(`{"kind":"Pod","metadata":{"name":"web-7d4b9c","namespace":"prod"}},`, 1000) // 64 KiB
		bodies := []string{
			filler + `"Secret-Rotation":"100%_done"` + filler,
			filler + `"secret-rotation":"100x done"` + filler,
			filler,
		}
		var entries []store.TrailEntry
		for i, b := range bodies {
			entries = append(entries, store.TrailEntry{SessionID: "long", Seq: int64(i + 1), Started: at, Method: "GET", Host: "h", Path: "/pods",
				ResponseText: b, RequestText: b[:3000]})
		}
		if err := e.S.IndexExchanges(ctx, entries); err != nil {
			t.Fatal(err)
		}
		if !e.pg {
			var blobs int
			if err := e.Raw.QueryRow(`SELECT count(*) FROM trail_index WHERE typeof(response_text) = 'blob' AND typeof(request_text) = 'blob'`).Scan(&blobs); err != nil || blobs != 3 {
				t.Errorf("%d of 3 long bodies stored compressed (%v)", blobs, err)
			}
		}
		for _, tc := range []struct {
			q    store.TrailQuery
			want []int64
		}{
			{store.TrailQuery{ResponseText: "SECRET-ROTATION"}, []int64{2, 1}},
			{store.TrailQuery{ResponseText: "100%_done"}, []int64{1}},
			{store.TrailQuery{ResponseText: "100%"}, []int64{1}},
			{store.TrailQuery{Keywords: "secret-rotation\":\"100x"}, []int64{2}},
			{store.TrailQuery{RequestText: "web-7d4b9c"}, []int64{3, 2, 1}},
			{store.TrailQuery{RequestText: "secret-rotation"}, nil},
		} {
			got, seqs := search(t, e.S, tc.q)
			for _, g := range got {
				if g.ResponseText != bodies[g.Seq-1] || g.RequestText != bodies[g.Seq-1][:3000] {
					t.Errorf("%+v: entry %d came back changed", tc.q, g.Seq)
				}
			}
			if !slices.Equal(seqs, tc.want) {
				t.Errorf("%+v: got %v, want %v", tc.q, seqs, tc.want)
			}
		}
	})
}

// search runs q and returns the entries found and their sequence numbers, in order.
func search(t *testing.T, s *store.Store, q store.TrailQuery) ([]store.TrailEntry, []int64) {
	t.Helper()
	got, _, _, err := s.SearchTrails(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, g := range got {
		seqs = append(seqs, g.Seq)
	}
	return got, seqs
}
