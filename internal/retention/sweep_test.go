package retention_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/recording"
	"github.com/gatehouse-dev/gatehouse/internal/retention"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TestSweep runs retention with one node's trails and sweeps another node's directory: the sweep deletes that
// node's copies of exactly the sessions retention deleted, keeps young, open and unknown trails, and the
// tombstones go after TombstoneDays.
func TestSweep(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := "sqlite"
		if pg {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) { testSweep(t, openStore(t, pg)) })
	}
}

func testSweep(t *testing.T, st *store.Store) {
	ctx := context.Background()
	leader, err := recording.Open(t.TempDir(), make([]byte, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := recording.Open(t.TempDir(), make([]byte, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	day := 24 * time.Hour
	for _, s := range []struct {
		id  string
		age time.Duration // since it closed; 0 = still open
	}{{"gone", 40 * day}, {"young", day}, {"open", 0}} {
		connected := now.Add(-s.age - time.Hour)
		row := &store.APISession{ID: s.id, Key: s.id, ClientAddress: "10.0.0.1", Status: store.SessionConnected, Connected: connected,
			LastActivity: connected, AuditEnabled: true}
		if err := st.InsertSession(ctx, row); err != nil {
			t.Fatal(err)
		}
		for _, trails := range []*recording.Store{leader, other} {
			w, err := trails.Create(ctx, recording.SessionMeta{SessionID: s.id, User: "alice", Target: "api", Started: connected}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if s.age > 0 {
				if _, err := w.Close("done"); err != nil {
					t.Fatal(err)
				}
			}
		}
		if s.age > 0 {
			row.Status, row.Disconnected = store.SessionDisconnected, now.Add(-s.age)
			if err := st.CloseSession(ctx, row); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A trail the database knows nothing about (an older backup restored, say) is not the sweep's to delete.
	if err := os.WriteFile(filepath.Join(other.Dir(), "unknown.trail"), []byte("evidence"), 0o600); err != nil {
		t.Fatal(err)
	}

	announced := 0
	job := &retention.Job{Store: st, Trails: leader, Now: func() time.Time { return now },
		Rules:     func() retention.Rules { return retention.Rules{Global: 30} },
		OnDeleted: func(context.Context) { announced++ }}
	if res := job.Tick(ctx); res.Err != nil || !slices.Equal(res.Deleted[""], []string{"gone"}) {
		t.Fatalf("retention deleted %v (%v), want [gone]", res.Deleted, res.Err)
	}
	if job.Tick(ctx); announced != 1 {
		t.Errorf("retention announced %d runs, want 1 (the run that deleted something)", announced)
	}
	local := func() []string {
		ids, err := other.LocalTrails()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(ids)
		return ids
	}
	if got := local(); !slices.Equal(got, []string{"gone", "open", "unknown", "young"}) {
		t.Fatalf("before the sweep the other node holds %v", got)
	}
	sweep := &retention.Sweep{Store: st, Trails: other}
	if del, err := sweep.Tick(ctx); err != nil || !slices.Equal(del, []string{"gone"}) {
		t.Fatalf("sweep deleted %v (%v), want [gone]", del, err)
	}
	if got := local(); !slices.Equal(got, []string{"open", "unknown", "young"}) {
		t.Errorf("after the sweep the other node holds %v", got)
	}
	if got, err := st.DeletedTrailsAmong(ctx, []string{"gone", "young"}); err != nil || !slices.Equal(got, []string{"gone"}) {
		t.Fatalf("tombstones = %v (%v), want [gone]", got, err)
	}
	sweep.Now = func() time.Time { return now.AddDate(0, 0, retention.TombstoneDays-1) }
	sweep.Tick(ctx)
	if got, _ := st.DeletedTrailsAmong(ctx, []string{"gone"}); len(got) != 1 {
		t.Errorf("a tombstone younger than %d days was forgotten", retention.TombstoneDays)
	}
	sweep.Now = func() time.Time { return now.AddDate(0, 0, retention.TombstoneDays+1) }
	sweep.Tick(ctx)
	if got, _ := st.DeletedTrailsAmong(ctx, []string{"gone"}); len(got) != 0 {
		t.Errorf("a tombstone older than %d days is kept: %v", retention.TombstoneDays, got)
	}
}
