package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestTrailTextSearchPlan pins how SQLite runs a text search, which no result check would notice going wrong: the
// text index's blocks drive it in rowid order, only the rows within one block are sorted (so a page of a common
// needle stops early instead of sorting every match), and each block's rows are a range of ids (not every row
// another condition's index holds, once per block).
func TestTrailTextSearchPlan(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, q := range []TrailQuery{
		{ResponseText: "replicas"},
		{Method: "DELETE", ResponseText: `"status":"ok"`},
		{UserName: "alice", Keywords: "app-4242", Ascending: true},
	} {
		sq := s.trailWhere(q)
		dir := "DESC"
		if q.Ascending {
			dir = "ASC"
		}
		rows, err := s.db.QueryContext(ctx, "EXPLAIN QUERY PLAN SELECT "+trailColumns+" FROM "+sq.from+sq.where+
			" ORDER BY "+sq.orderBy(dir)+" LIMIT 50", sq.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		text := strings.Join(plan, "\n")
		for _, want := range []string{"SCAN trail_index_blocks VIRTUAL TABLE", "SEARCH t USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
			"USE TEMP B-TREE FOR LAST TERM OF ORDER BY"} {
			if !strings.Contains(text, want) {
				t.Errorf("%+v: the plan lacks %q:\n%s", q, want, text)
			}
		}
		if strings.Contains(text, "USE TEMP B-TREE FOR ORDER BY") {
			t.Errorf("%+v: the plan sorts every match:\n%s", q, text)
		}
	}
}
