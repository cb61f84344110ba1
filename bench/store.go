package main

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/gate"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/proxy"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// storeResult is the large-store workload: how long seeding took (for the record), how long `gatehouse serve`
// takes to become healthy on that store, and the policy decision's latency over it.
type storeResult struct {
	Targets     int             `json:"targets"`
	Credentials int             `json:"credentials"`
	Seed        time.Duration   `json:"seed_ns"`
	Startup     []time.Duration `json:"startup_ns"`
	Snapshot    time.Duration   `json:"snapshot_build_ns"`
	Decisions   int             `json:"decisions"`
	P50         time.Duration   `json:"decision_p50_ns"`
	P99         time.Duration   `json:"decision_p99_ns"`
	PeakKB      int64           `json:"startup_peak_rss_kb"`
}

// seedStore writes targets and credentials straight through the store package into a fresh data dir, as
// `gatehouse serve` would find them, and returns the open store and sample requests that are all allowed.
func seedStore(ctx context.Context, dataDir string, targets, credentials int) (*store.Store, []*proxy.AuthRequest, error) {
	cfg := config.Config{DataDir: dataDir}
	master, err := secrets.LoadOrCreateMasterKey(cfg.MasterKeyPath())
	if err != nil {
		return nil, nil, err
	}
	keys, err := secrets.NewKeyring(master)
	if err != nil {
		return nil, nil, err
	}
	st, err := store.Open(ctx, cfg.DatabaseDSN(), keys, nil)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*store.Store, []*proxy.AuthRequest, error) { st.Close(); return nil, nil, err }
	role := &model.Role{Name: "team", Permissions: []string{}}
	if err := st.CreateRole(ctx, role, "bench"); err != nil {
		return fail(err)
	}
	u := &model.User{Username: "team-member", Enabled: true}
	if err := st.CreateUser(ctx, u, "bench"); err != nil {
		return fail(err)
	}
	if err := st.SetUserRoles(ctx, u.ID, []string{role.ID}); err != nil {
		return fail(err)
	}
	ids := make([]string, targets)
	for i := range targets {
		host := fmt.Sprintf("t%05d.example.com", i)
		t := &model.Target{Name: "t" + strconv.Itoa(i), Roles: []model.Ref{{ID: role.ID}}, AuditEnabled: true,
			AuthorizedEndpoints: []policy.Endpoint{
				{Host: host, Protocols: []string{"https"}, Methods: []string{"GET"}, Paths: []string{"/api/v1/items/*"}},
				{Host: host, Protocols: []string{"https"}, Methods: []string{"GET", "POST"}, Paths: []string{"/api/v1/**"}},
				{Host: host, Protocols: []string{"https"}, Methods: []string{"*"}, Paths: []string{"/healthz"}},
			},
			UnauthorizedEndpoints: []policy.Endpoint{{Host: host, Protocols: []string{"*"}, Methods: []string{"*"}, Paths: []string{"/api/v1/admin/**"}}},
			Credential:            model.TargetCredential{Type: "token", BearerToken: "upstream-" + host}}
		if err := st.CreateTarget(ctx, t, "bench"); err != nil {
			return fail(err)
		}
		ids[i] = t.ID
	}
	now := time.Now()
	var reqs []*proxy.AuthRequest
	for i := range credentials {
		ti := i % targets
		c := &model.ProxyCredential{UserID: u.ID, TargetID: ids[ti], Name: "c" + strconv.Itoa(i), Enabled: true,
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour), SourceAddress: []string{"127.0.0.0/8"},
			Secret: secrets.RandomToken(24)}
		if err := st.CreateCredential(ctx, c, "bench"); err != nil {
			return fail(err)
		}
		if i%max(credentials/4096, 1) == 0 {
			reqs = append(reqs, &proxy.AuthRequest{Client: netip.MustParseAddrPort("127.0.0.1:50000"), Secret: c.Secret,
				Scheme: "https", Host: fmt.Sprintf("t%05d.example.com", ti), Method: "GET",
				Path: "/api/v1/items/" + strconv.Itoa(i), Tunnel: true})
		}
	}
	return st, reqs, nil
}

// runStore seeds a store, times `gatehouse serve` start-ups on it, and times single policy decisions.
func runStore(ctx context.Context, cl *cleanups, bin, dir string, targets, credentials, rounds, decisions int) (*storeResult, error) {
	res := &storeResult{Targets: targets, Credentials: credentials}
	dataDir := filepath.Join(dir, "large-store")
	t0 := time.Now()
	st, reqs, err := seedStore(ctx, dataDir, targets, credentials)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	res.Seed = time.Since(t0)
	t0 = time.Now()
	g, err := gate.New(ctx, st, nil)
	if err != nil {
		st.Close()
		return nil, err
	}
	res.Snapshot = time.Since(t0)
	for _, r := range reqs {
		if _, err := g.Authorize(ctx, r); err != nil {
			st.Close()
			return nil, fmt.Errorf("decision %s %s should be allowed: %w", r.Host, r.Path, err)
		}
	}
	lat := make([]time.Duration, 0, decisions)
	for i := range decisions {
		r := reqs[i%len(reqs)]
		s := time.Now()
		_, _ = g.Authorize(ctx, r)
		lat = append(lat, time.Since(s))
	}
	slices.Sort(lat)
	res.Decisions, res.P50, res.P99 = len(lat), lat[len(lat)/2], lat[len(lat)*99/100]
	st.Close() // serve must be the only writer
	for i := range rounds {
		p, err := startGatehouse(ctx, cl, bin, dataDir, filepath.Join(dir, fmt.Sprintf("large-store-%d.log", i)))
		if err != nil {
			return nil, err
		}
		res.Startup = append(res.Startup, p.startup)
		res.PeakKB = max(res.PeakKB, peakKB(p.cmd.Process.Pid))
		p.stop()
	}
	return res, nil
}
