package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestDeletedTrailsAmong pins the tombstone lookup a node's trail sweep relies on, across more ids than one query
// takes: it returns exactly the tombstoned ones, and forgetting drops only the old tombstones.
func TestDeletedTrailsAmong(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		now := time.Now()
		var ids, want []string
		for i := range 1203 {
			id := fmt.Sprintf("s%04d", i)
			ids = append(ids, id)
			if i%2 == 0 {
				continue // no tombstone
			}
			at := now
			if i%3 == 0 {
				at = now.Add(-100 * 24 * time.Hour)
			}
			e.exec(t, `INSERT INTO deleted_trails (session_id, deleted) VALUES (?, ?)`, id, at.UnixMicro())
			want = append(want, id)
		}
		got, err := e.S.DeletedTrailsAmong(ctx, ids)
		slices.Sort(got)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("DeletedTrailsAmong: %d ids (%v), want %d", len(got), err, len(want))
		}
		if got, err := e.S.DeletedTrailsAmong(ctx, nil); err != nil || len(got) != 0 {
			t.Errorf("no ids: %v, %v", got, err)
		}
		if err := e.S.ForgetDeletedTrails(ctx, now.Add(-90*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, _ = e.S.DeletedTrailsAmong(ctx, ids)
		for _, id := range got {
			var i int
			fmt.Sscanf(id, "s%04d", &i)
			if i%3 == 0 {
				t.Fatalf("tombstone %s older than the cut is kept", id)
			}
		}
		if n := len(want) - len(got); n != 200 {
			t.Errorf("forgot %d tombstones, want the 200 old ones", n)
		}
	})
}
