package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/retention"
	"github.com/gatehouse-dev/gatehouse/internal/trailindex"
)

// searchIndex is the trail index's queue and worker, fed by the session manager.
type searchIndex struct {
	ix   *trailindex.Indexer
	done chan struct{} // closed when the worker has written its last batch; nil until it runs
}

// newSearchIndex builds the indexer over the store and hooks it into the session manager.
func (s *Server) newSearchIndex(log *slog.Logger) {
	dp := s.dp
	dp.index.ix = &trailindex.Indexer{Backend: s.store, Log: log.With("component", "trail-index")}
	dp.index.ix.Register(dp.registry)
	dp.sessions.Index = dp.index.ix
}

// run starts the worker; it stops with ctx, after writing what is queued.
func (si *searchIndex) run(ctx context.Context) {
	si.done = make(chan struct{})
	go func() { si.ix.Run(ctx); close(si.done) }()
}

// wait blocks until the worker has stopped, so nothing writes to the store after it is closed.
func (si *searchIndex) wait() {
	if si.done != nil {
		<-si.done
	}
}

// retentionInterval is how often the retention job looks for sessions past their days.
const retentionInterval = time.Hour

// newRetention builds the retention job over the committed configuration; serve runs it.
func (s *Server) newRetention(log *slog.Logger) {
	s.dp.retention = &retention.Job{Store: s.store, Trails: s.dp.trails, Log: log.With("component", "retention"),
		Rules: func() retention.Rules {
			r := s.cfgapi.Policies().Retention()
			return retention.Rules{Global: r.Global, PerPolicy: r.PerPolicy}
		}}
	s.dp.sweep = &retention.Sweep{Store: s.store, Trails: s.dp.trails, Log: log.With("component", "retention")}
}

// TrailSweep returns this node's sweep of local trails, for tests that run it at once.
func (s *Server) TrailSweep() *retention.Sweep { return s.dp.sweep }

// TrailIndexer returns the trail index's queue, for tests that wait for it to drain.
func (s *Server) TrailIndexer() *trailindex.Indexer { return s.dp.index.ix }

// Retention returns the retention job, for tests that run it on a clock of their own.
func (s *Server) Retention() *retention.Job { return s.dp.retention }
