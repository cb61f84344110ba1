package retention_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/recording"
	"github.com/gatehouse-dev/gatehouse/internal/retention"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/storetest"
	"github.com/gatehouse-dev/gatehouse/internal/testpg"
)

func TestMain(m *testing.M) { testpg.Main(m) }

func openStore(t *testing.T, pg bool) *store.Store { return storetest.New(t, pg) }

// TestRetention runs the job on both engines with a fake clock over sessions of several ages and policies.
func TestRetention(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := "sqlite"
		if pg {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) { testRetention(t, openStore(t, pg)) })
	}
}

func testRetention(t *testing.T, st *store.Store) {
	ctx := context.Background()
	trails, err := recording.Open(t.TempDir(), make([]byte, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	type sess struct {
		id, policy string
		age        time.Duration // since it closed; 0 = still open
		hold       bool
	}
	all := []sess{
		{"p1-old", "p1", 8 * day, false},                  // p1 keeps 7 days
		{"p1-young", "p1", 6 * day, false},                //
		{"p1-edge-in", "p1", 7*day - time.Minute, false},  // the edges of the 7 days: kept a minute before,
		{"p1-edge-out", "p1", 7*day + time.Minute, false}, // deleted a minute after
		{"p1-held", "p1", 90 * day, true},                 // a legal hold outlives every rule
		{"p2-old", "p2", 20 * day, false},                 // p2 has no rule of its own: the global 30 days
		{"p2-older", "p2", 31 * day, false},
		{"none-older", "", 31 * day, false}, // no policy: global
		{"open-ancient", "p1", 0, false},    // an open session is never deleted
	}
	for _, s := range all {
		connected := now.Add(-s.age - time.Hour)
		if s.age == 0 {
			connected = now.Add(-100 * day)
		}
		w, err := trails.Create(ctx, recording.SessionMeta{SessionID: s.id, User: "alice", Target: "api", Started: connected}, nil)
		if err != nil {
			t.Fatal(err)
		}
		row := &store.APISession{ID: s.id, Key: s.id, ClientAddress: "10.0.0.1", Status: store.SessionConnected, Connected: connected,
			LastActivity: connected, AuditEnabled: true, ConnectionPolicy: s.policy}
		if err := st.InsertSession(ctx, row); err != nil {
			t.Fatal(err)
		}
		if err := st.IndexExchanges(ctx, []store.TrailEntry{{SessionID: s.id, Seq: 1, Started: connected, Method: "GET", Path: "/x"}}); err != nil {
			t.Fatal(err)
		}
		// A cluster keeps a copy of each closed trail in the database; retention removes it with the session.
		if err := st.PutTrail(ctx, s.id, strings.NewReader("trail of "+s.id)); err != nil {
			t.Fatal(err)
		}
		if s.age > 0 {
			if _, err := w.Close("done"); err != nil {
				t.Fatal(err)
			}
			row.Status, row.Disconnected = store.SessionDisconnected, now.Add(-s.age)
			if err := st.CloseSession(ctx, row); err != nil {
				t.Fatal(err)
			}
		}
		if s.hold {
			if err := st.SetLegalHold(ctx, s.id, true, "case 9"); err != nil {
				t.Fatal(err)
			}
		}
	}
	job := &retention.Job{Store: st, Trails: trails, Now: func() time.Time { return now },
		Rules: func() retention.Rules { return retention.Rules{Global: 30, PerPolicy: map[string]int{"p1": 7}} }}
	res := job.Tick(ctx)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	p1 := res.Deleted["p1"]
	slices.Sort(p1)
	if !slices.Equal(p1, []string{"p1-edge-out", "p1-old"}) {
		t.Errorf("p1 rule deleted %v", p1)
	}
	got := res.Deleted[""]
	slices.Sort(got)
	if !slices.Equal(got, []string{"none-older", "p2-older"}) {
		t.Errorf("global rule deleted %v", got)
	}
	deleted := map[string]bool{"p1-old": true, "p1-edge-out": true, "p2-older": true, "none-older": true}
	for _, s := range all {
		_, serr := st.Session(ctx, s.id)
		_, terr := trails.Verify(ctx, s.id)
		hits, _, _, _ := st.SearchTrails(ctx, store.TrailQuery{SessionID: s.id})
		copyRC, cerr := st.Trail(ctx, s.id)
		if cerr == nil {
			copyRC.Close()
		}
		if gone := deleted[s.id]; gone != (serr != nil) || gone != (terr != nil) || gone != (len(hits) == 0) || gone != (cerr != nil) {
			t.Errorf("%s: want deleted %v; row err %v, trail err %v, index entries %d, stored copy err %v", s.id, gone, serr, terr, len(hits), cerr)
		}
	}
	events, _, err := st.ListAudit(ctx, store.AuditFilter{Action: "retention-cleanup"}, store.ListOptions{})
	if err != nil || len(events) != 1 || events[0].Diff["deleted"] != float64(4) || events[0].Outcome != "success" {
		t.Fatalf("audit: %v %+v", err, events)
	}
	// A second run finds nothing and leaves no event.
	if res := job.Tick(ctx); len(res.Deleted) != 0 || res.Err != nil {
		t.Errorf("second run: %+v", res)
	}
	if events, _, _ := st.ListAudit(ctx, store.AuditFilter{Action: "retention-cleanup"}, store.ListOptions{}); len(events) != 1 {
		t.Errorf("a quiet run was audited: %d events", len(events))
	}
	// A retention too long to compute (it would overflow into the future) keeps everything.
	job.Rules = func() retention.Rules {
		return retention.Rules{Global: 1 << 40, PerPolicy: map[string]int{"p1": 1 << 40}}
	}
	if res := job.Tick(ctx); len(res.Deleted) != 0 {
		t.Errorf("with a huge retention: %+v", res.Deleted)
	}
	// No rules, no deletions, whatever the age.
	job.Rules = func() retention.Rules { return retention.Rules{} }
	job.Now = func() time.Time { return now.Add(1000 * day) }
	if res := job.Tick(ctx); len(res.Deleted) != 0 {
		t.Errorf("with cleanup off: %+v", res.Deleted)
	}
}
