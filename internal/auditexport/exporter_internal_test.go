package auditexport

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestQueueDropsOldest(t *testing.T) {
	q := newQueue(3)
	var dropped int
	for i := int64(1); i <= 5; i++ {
		if q.push(model.AuditEvent{ID: i}) {
			dropped++
		}
	}
	if dropped != 2 || q.len() != 3 {
		t.Fatalf("dropped %d, len %d; want 2 and 3", dropped, q.len())
	}
	var got []int64
	for {
		e, ok := q.tryPop()
		if !ok {
			break
		}
		got = append(got, e.ID)
	}
	if diff := cmp.Diff([]int64{3, 4, 5}, got); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
}

// fakeSink fails the first failures sends of each event, and refuses events whose action is "poison".
type fakeSink struct {
	mu       sync.Mutex
	failures int
	tries    map[int64]int
	got      []int64
	block    chan struct{} // if set, send waits on it
}

func (f *fakeSink) name() string { return "fake" }
func (f *fakeSink) close() error { return nil }
func (f *fakeSink) send(ctx context.Context, e model.AuditEvent) error {
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if e.Action == "poison" {
		return permanent("HTTP 400")
	}
	f.tries[e.ID]++
	if f.tries[e.ID] <= f.failures {
		return errors.New("collector down")
	}
	f.got = append(f.got, e.ID)
	return nil
}

// newTestExporter is an Exporter over fake sinks whose waits are recorded instead of slept.
func newTestExporter(t *testing.T, size int, sinks ...sink) (*Exporter, *[]time.Duration, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	m := &metrics{
		events:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "events_total"}, []string{"sink", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "retries_total"}, []string{"sink"}),
	}
	reg.MustRegister(m.events, m.retries)
	var mu sync.Mutex
	waits := &[]time.Duration{}
	ctx, cancel := context.WithCancel(context.Background())
	x := &Exporter{cancel: cancel}
	for _, s := range sinks {
		x.workers = append(x.workers, &worker{sink: s, q: newQueue(size), m: m, log: discard(), min: 100 * time.Millisecond, max: 400 * time.Millisecond,
			sleep: func(ctx context.Context, d time.Duration) bool {
				mu.Lock()
				*waits = append(*waits, d)
				mu.Unlock()
				return ctx.Err() == nil
			}})
	}
	for _, w := range x.workers {
		x.wg.Add(1)
		go func() { defer x.wg.Done(); w.run(ctx) }()
	}
	t.Cleanup(func() { x.Close(context.Background()) })
	return x, waits, reg
}

func TestRetriesWithBackoffInOrder(t *testing.T) {
	s := &fakeSink{failures: 4, tries: map[int64]int{}}
	x, waits, reg := newTestExporter(t, 10, s)
	x.Export(model.AuditEvent{ID: 1, Action: "create"})
	x.Export(model.AuditEvent{ID: 2, Action: "poison"})
	x.Export(model.AuditEvent{ID: 3, Action: "delete"})
	if err := x.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{1, 3}, s.got); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
	// Doubling from 100ms, capped at 400ms, for each of the two retried events.
	want := []time.Duration{100, 200, 400, 400, 100, 200, 400, 400}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if diff := cmp.Diff(want, *waits); diff != "" {
		t.Errorf("backoff (-want +got):\n%s", diff)
	}
	for result, n := range map[string]float64{"sent": 2, "failed": 1, "dropped": 0} {
		if got := counter(x.workers[0].m.events.WithLabelValues("fake", result)); got != n {
			t.Errorf("events_total{result=%s} = %v, want %v", result, got, n)
		}
	}
	if got := counter(x.workers[0].m.retries.WithLabelValues("fake")); got != 8 {
		t.Errorf("retries_total = %v, want 8", got)
	}
	_ = reg
}

// TestExportNeverBlocks holds the sink so nothing drains, and fills the queue past its size: Export returns every
// time and the oldest are dropped and counted.
func TestExportNeverBlocks(t *testing.T) {
	s := &fakeSink{tries: map[int64]int{}, block: make(chan struct{})}
	x, _, _ := newTestExporter(t, 4, s)
	for i := int64(1); i <= 100; i++ {
		x.Export(model.AuditEvent{ID: i, Action: "login"})
	}
	w := x.workers[0]
	// The worker may hold one event in its send; the queue holds the newest four.
	if n := w.q.len(); n != 4 {
		t.Fatalf("queue len %d, want 4", n)
	}
	dropped := counter(w.m.events.WithLabelValues("fake", "dropped"))
	if dropped != 95 && dropped != 96 {
		t.Errorf("dropped %v, want 95 or 96", dropped)
	}
	close(s.block)
	x.Close(context.Background())
	if got := s.got[len(s.got)-4:]; !cmp.Equal(got, []int64{97, 98, 99, 100}) {
		t.Errorf("delivered last %v, want the newest four", got)
	}
}

func TestFormatSyslog(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 30, 0, 123456000, time.UTC)
	for _, tc := range []struct {
		name string
		e    model.AuditEvent
		want string
	}{
		{"success", model.AuditEvent{ID: 7, Time: at, Actor: "admin", ActorID: "u-1", Action: "create", ObjectType: "user", ObjectID: "u-2",
			SourceAddress: "127.0.0.1", Outcome: "success"},
			`<109>1 2026-12-01T09:30:00.123456Z gw 42 create [gatehouse@32473 id="7" action="create" actor="admin" actor_id="u-1" ` +
				`object_type="user" object_id="u-2" source_address="127.0.0.1" outcome="success"] {"id":7,`},
		{"failure with hostile names", model.AuditEvent{ID: 8, Time: at, Actor: "ev\"il]\\\nx", Action: "log in", ObjectType: "session", Outcome: "failure"},
			`<108>1 2026-12-01T09:30:00.123456Z gw 42 log_in [gatehouse@32473 id="8" action="log in" actor="ev\"il\]\\?x" ` +
				`object_type="session" outcome="failure"] {"id":8,`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := FormatSyslog(tc.e, "gw", "42")
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Replace(string(b), " gatehouse ", " ", 1)
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("got  %s\nwant %s...", got, tc.want)
			}
			if strings.ContainsAny(string(b), "\n\r") {
				t.Errorf("message holds a line break: %q", b)
			}
		})
	}
	if got := string(frame([]byte("<1>1 - - - - - -"))); got != "16 <1>1 - - - - - -" {
		t.Errorf("frame = %q", got)
	}
}

func FuzzFormatSyslog(f *testing.F) {
	f.Add("admin", "create", "user", "u-1", "success")
	f.Add("ev\"il]\\", "log in", "", "", "failure")
	f.Add("\x00\n\u2028", "\xff", "]", "\"", "")
	f.Fuzz(func(t *testing.T, actor, action, objectType, objectID, outcome string) {
		b, err := FormatSyslog(model.AuditEvent{ID: 1, Actor: actor, Action: action, ObjectType: objectType, ObjectID: objectID, Outcome: outcome}, "h", "1")
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if strings.ContainsAny(s, "\n\r\x00") {
			t.Fatalf("control character in %q", s)
		}
		// The header has exactly six space-separated fields before the structured data.
		f := strings.SplitN(s, " ", 7)
		if len(f) != 7 || !strings.HasPrefix(f[6], "[gatehouse@32473 ") || len(f[5]) > 32 {
			t.Fatalf("header fields %q", f)
		}
		// The structured data ends at the first unescaped ']'.
		sd, esc := f[6], false
		end := -1
		for i := 1; i < len(sd); i++ {
			switch {
			case esc:
				esc = false
			case sd[i] == '\\':
				esc = true
			case sd[i] == ']':
				end = i
			}
			if end >= 0 {
				break
			}
		}
		if end < 0 || !strings.HasPrefix(sd[end+1:], " {") {
			t.Fatalf("structured data does not end before the JSON: %q", sd)
		}
	})
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
