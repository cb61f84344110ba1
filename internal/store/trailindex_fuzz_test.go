package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// FuzzTrailTextSearch: whatever text a user searches for, the search either refuses it as a bad query or answers;
// and text that is in a response body is found (the FTS5 phrase quoting cannot be broken out of or mis-escaped).
func FuzzTrailTextSearch(f *testing.F) {
	for _, s := range []string{`needle`, `"quoted"`, `a"b`, `{col} : x`, `x OR y`, `NEAR(a b)`, `*`, `^start`, `100%_`, `\\x`, `ÄÖü`, `日本語`, "tab\there", `'); DROP TABLE trail_index; --`} {
		f.Add(s)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(f.TempDir(), "gatehouse.db"), nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	n := 0
	f.Fuzz(func(t *testing.T, needle string) {
		n++
		id := fmt.Sprintf("fz-%d", n)
		body := "before " + needle + " after"
		if err := st.IndexExchanges(ctx, []store.TrailEntry{{SessionID: id, Seq: 1, Started: time.Unix(1e9, 0), ResponseText: body}}); err != nil {
			t.Fatalf("index: %v", err)
		}
		got, _, _, err := st.SearchTrails(ctx, store.TrailQuery{SessionID: id, ResponseText: needle})
		if err != nil {
			if !errors.Is(err, store.ErrBadQuery) {
				t.Fatalf("search %q: %v", needle, err)
			}
			return
		}
		// The index stores valid UTF-8 without NUL; a needle that is neither cannot be expected to match itself.
		findable := utf8.ValidString(needle) && !strings.ContainsRune(needle, 0)
		if findable && len(got) != 1 {
			t.Errorf("search %q: %d results, want the exchange that contains it", needle, len(got))
		}
	})
}
