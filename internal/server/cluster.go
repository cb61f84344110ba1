package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/ca"
	"github.com/gatehouse-dev/gatehouse/internal/cluster"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/recording"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/prometheus/client_golang/prometheus"
)

// joinCluster sets the node up on its database: under the cluster's init lock (nodes may start at once) it checks
// the master key against the database's check value, creates the first admin on an empty database and opens the
// CA kept in the database.
func (s *Server) joinCluster(ctx context.Context, adminPassword string, out io.Writer) error {
	id, err := cluster.LoadOrCreateID(s.cfg.DataDir)
	if err != nil {
		return err
	}
	s.node = &cluster.Node{Store: s.store, ID: id, Timeout: s.cfg.NodeTimeout, Log: s.log.With("component", "cluster")}
	if s.store.Clustered() {
		// Bad proxy secrets count for the cluster as a whole: three nodes do not give a guesser three times the
		// attempts.
		s.shared = &cluster.Counters{Store: s.store, Node: id, Log: s.node.Log}
	}
	err = s.store.Exclusive(ctx, "init", func(ctx context.Context) error {
		if err := s.store.CheckMasterKey(ctx); errors.Is(err, store.ErrWrongMasterKey) {
			return fmt.Errorf("master key: %w: start this node with the cluster's key (--master-key-file or GATEHOUSE_MASTER_KEY)", err)
		} else if err != nil {
			return err
		}
		if err := bootstrap(ctx, s.store, s.cfg.DataDir, adminPassword, out, s.log); err != nil {
			return err
		}
		files := &dbFiles{ctx: ctx, st: s.store, local: ca.Dir(filepath.Join(s.cfg.DataDir, "ca"))}
		if err := files.adopt(); err != nil {
			return fmt.Errorf("proxy ca: %w", err)
		}
		c, err := ca.OpenFiles(files, string(files.local), s.keys, s.log)
		if err != nil {
			return fmt.Errorf("proxy ca: %w", err)
		}
		s.ca = c
		return nil
	})
	if err != nil {
		return err
	}
	// Before the session manager recovers "its" sessions: a second process with this id must not close the
	// first one's. Waiting for a dead predecessor's heartbeat to go stale takes at most the node timeout.
	s.node.APIAddress, s.node.ProxyAddress = advertised(s.apiLn.Addr().String()), advertised(s.proxyLn.Addr().String())
	cctx, cancel := context.WithTimeout(ctx, 3*s.node.Timeout+30*time.Second)
	defer cancel()
	if err := s.node.Claim(cctx); err != nil {
		return &StartError{Flag: "data-dir", Value: s.cfg.DataDir, Err: err}
	}
	return nil
}

// runNode registers the node and runs it (heartbeats, change feed, leadership) until ctx is done.
func (s *Server) runNode(ctx context.Context) {
	n := s.node
	n.APIAddress, n.ProxyAddress = advertised(s.APIAddr()), advertised(s.ProxyAddr())
	n.OnChange = s.reloadAll
	n.OnCooldown = func(ctx context.Context) {
		if err := s.dp.sessions.ReloadCooldowns(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("reading cool-downs failed", "err", err)
		}
	}
	n.OnTerminate = func(ctx context.Context) {
		if err := s.dp.sessions.ApplyTerminationRequests(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("reading termination requests failed", "err", err)
		}
	}
	n.OnDeclaredDead = func(ctx context.Context) {
		s.dp.sessions.CloseAll(ctx, "interrupted: the node serving the session stopped answering")
	}
	n.Jobs = []func(context.Context){s.dir.Run, n.Reaper}
	if s.dp.retention != nil {
		// Retention deletes for the whole cluster (sessions, index entries, the database copies of trails), so
		// it runs once, on the leader; each node deletes its own local trail files of what it deleted.
		n.Jobs = append(n.Jobs, func(ctx context.Context) { s.dp.retention.Run(ctx, retentionInterval) })
		s.dp.retention.OnDeleted = func(ctx context.Context) { n.Publish(ctx, cluster.TopicTrailsDeleted) }
		n.Loops = append(n.Loops, func(ctx context.Context) { s.dp.sweep.Run(ctx, retentionInterval) })
		n.OnTrailsDeleted = func(ctx context.Context) {
			if _, err := s.dp.sweep.Tick(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("sweeping local trails failed; the next sweep tries again", "err", err)
			}
		}
	}
	// Ending role grants on time is the leader's: one node ends each grant and tells the others through the feed.
	n.Jobs = append(n.Jobs, func(ctx context.Context) { s.jit.Run(ctx, jitInterval) })
	if s.store.Clustered() {
		n.Jobs = append(n.Jobs, s.reapExtenderLinks)
	}
	if s.shared != nil {
		n.Loops = append(n.Loops, s.shared.Run)
		n.Jobs = append(n.Jobs, s.shared.Forget)
	}
	if err := n.Register(ctx); err != nil {
		s.log.Error("registering the node failed; its heartbeats retry", "err", err)
	}
	n.Run(ctx)
}

// jitInterval is how often the leader looks for role grants that start or end: a grant ends within this of its
// window, and the user's sessions with it.
const jitInterval = time.Second

// reloadAll applies a change made through another node: settings, the policy snapshot and the connection policies.
func (s *Server) reloadAll(ctx context.Context) {
	if err := s.dp.loadSettings(ctx, s); err != nil && ctx.Err() == nil {
		s.log.Error("reloading settings failed", "err", err)
	}
	if err := s.dp.gate.Reload(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("rebuilding the policy snapshot failed; the previous one stays in force", "err", err)
	}
	if err := s.cfgapi.Reload(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("reloading connection policies failed; keeping the previous ones", "err", err)
	}
	// An extender deleted, disabled or re-keyed through another node loses its sessions here too.
	s.ext.Revalidate()
}

// advertised turns a bound address into one other hosts can use: an unspecified host becomes this host's name.
func advertised(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		return addr
	}
	name, err := os.Hostname()
	if err != nil || name == "" {
		return addr
	}
	return net.JoinHostPort(name, port)
}

// dbFiles keeps the CA's root and intermediate in the database, so every node of a cluster serves one CA. A CA
// made before nodes shared it lives in the data dir: adopt moves it in, so clients keep trusting it.
// Certificates are mirrored to the data dir, where the CLI and operators look for root.crt; keys are not.
type dbFiles struct {
	ctx   context.Context
	st    *store.Store
	local ca.Dir
}

// caFiles are the files of a CA that the cluster shares; the API server certificate names one node and stays local.
var caFiles = []string{"root.crt", "root.key.sealed", "intermediate.crt", "intermediate.key.sealed"}

// adopt copies a CA the data dir holds into a database that holds none, all files at once: the root key is read
// only when the intermediate is renewed, years later, by whichever node does it then.
func (f *dbFiles) adopt() error {
	ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
	defer cancel()
	if _, err := f.st.Blob(ctx, "ca/root.crt"); !errors.Is(err, store.ErrNotExist) {
		return err // the database has a CA (or cannot say): it wins over any local copy
	}
	for _, name := range caFiles {
		b, err := f.local.ReadFile(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // the CA creates what is missing
		} else if err != nil {
			return err
		}
		if err := f.st.PutBlob(ctx, "ca/"+name, b); err != nil {
			return err
		}
	}
	return nil
}

func (f *dbFiles) ReadFile(name string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
	defer cancel()
	b, err := f.st.Blob(ctx, "ca/"+name)
	if errors.Is(err, store.ErrNotExist) {
		return nil, fmt.Errorf("ca file %s: %w", name, fs.ErrNotExist)
	} else if err != nil {
		return nil, err
	}
	f.mirror(name, b)
	return b, nil
}

func (f *dbFiles) WriteFile(name string, data []byte, perm fs.FileMode) error {
	ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
	defer cancel()
	if err := f.st.PutBlob(ctx, "ca/"+name, data); err != nil {
		return err
	}
	f.mirror(name, data)
	return nil
}

func (f *dbFiles) mirror(name string, data []byte) {
	if !strings.HasSuffix(name, ".crt") {
		return
	}
	if old, err := f.local.ReadFile(name); err == nil && string(old) == string(data) {
		return
	}
	f.local.WriteFile(name, data, 0o644)
}

// archivedTrail opens the database's copy of a closed trail, for a trail recorded by another node or lost with
// this node's disk.
func (s *Server) archivedTrail(id string) (io.ReadCloser, error) {
	r, err := s.store.Trail(context.Background(), id)
	if errors.Is(err, store.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", recording.ErrNotExist, id)
	}
	return r, err
}

// Settings returns the proxy settings this node enforces now.
func (s *Server) Settings() model.Settings { return *s.dp.settings.Load() }

// Leading says whether this node runs the cluster's background jobs now.
func (s *Server) Leading() bool { return s.node.Leading() }

// NodeID names this node in its cluster.
func (s *Server) NodeID() string { return s.node.ID }

// registerPoolMetrics exports the database pool's use, so that an operator sees a node queueing for connections
// (a --db-max-conns too small for its load) before requests slow down.
func registerPoolMetrics(reg *prometheus.Registry, st *store.Store) {
	conns := prometheus.NewDesc("gatehouse_db_connections", "Connections of the database query pool by state (in_use, idle).", []string{"state"}, nil)
	reg.MustRegister(
		collectorFunc{desc: conns, collect: func(ch chan<- prometheus.Metric) {
			s := st.PoolStats()
			ch <- prometheus.MustNewConstMetric(conns, prometheus.GaugeValue, float64(s.InUse), "in_use")
			ch <- prometheus.MustNewConstMetric(conns, prometheus.GaugeValue, float64(s.Idle), "idle")
		}},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "gatehouse", Subsystem: "db", Name: "max_connections",
			Help: "The query pool's cap (--db-max-conns); 0 means none (SQLite)."},
			func() float64 { return float64(st.PoolStats().MaxOpenConnections) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "gatehouse", Subsystem: "db", Name: "waits_total",
			Help: "Queries that waited for a free connection of the pool."},
			func() float64 { return float64(st.PoolStats().WaitCount) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "gatehouse", Subsystem: "db", Name: "wait_seconds_total",
			Help: "Time queries spent waiting for a free connection of the pool."},
			func() float64 { return st.PoolStats().WaitDuration.Seconds() }),
	)
}
