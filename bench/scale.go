package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// The scale endpoint is a gatehouse of its own, configured like the gatehouse endpoint (one audited target for the
// origin, one credential the load uses), then stopped, given creds-1 more credentials of that target straight
// through the store (spread over users of a thousand credentials each), restarted, and given `sessions` open API
// sessions: one request each with distinct credentials. The scale workload then runs the same load through it
// and through the gatehouse endpoint (one session), so the two rows differ only in what the store and the session
// table hold; gatehouse-scale-spread is the same process with each request on the next of the open sessions (the
// worst case for caches: every session busy). Its idle session timeout is raised so the sessions stay open
// through a full run. The returned endpoint carries the open sessions' secrets in spread.

// scaleIdleTimeout outlasts a full run; the default of 15 minutes would close the sessions part-way.
const scaleIdleTimeout = 4 * 3600

func startScale(ctx context.Context, cl *cleanups, dir, bin, originAddr string, originCA []byte, sessions, creds int) (*endpoint, error) {
	dataDir := filepath.Join(dir, "data-gatehouse-scale")
	g, err := startGatehouse(ctx, cl, bin, dataDir, filepath.Join(dir, "gatehouse-scale-setup.log"))
	if err != nil {
		return nil, err
	}
	secret, pool, err := g.configure(originAddr, originCA, true)
	g.stop() // the store has one writer: seeding waits for serve to end
	if err != nil {
		return nil, fmt.Errorf("configure: %w", err)
	}
	fmt.Fprintf(os.Stderr, "seeding %d credentials...\n", creds-1)
	t0 := time.Now()
	keys, err := seedScale(ctx, dataDir, g.roleID, g.targetID, creds-1, sessions)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	seeded := time.Since(t0)
	if g, err = startGatehouse(ctx, cl, bin, dataDir, filepath.Join(dir, "gatehouse-scale.log")); err != nil {
		return nil, err
	}
	if err := g.login(); err != nil {
		return nil, err
	}
	e := &endpoint{Name: "gatehouse-scale", proxyAddr: g.proxyAddr, roots: pool, secret: secret, pid: g.cmd.Process.Pid, spread: keys}
	t0 = time.Now()
	s := requests(ctx, e, limits{perRun: 5 * time.Minute}, 32, len(keys), true, func(i int) (*http.Request, error) {
		return getAt(e.authority(), e.secretFor(i), "/small")
	})
	if s.Errors > 0 || s.Requests != len(keys) {
		return nil, fmt.Errorf("opening %d sessions: %d done, %d errors, first: %s", len(keys), s.Requests, s.Errors, s.FirstErr)
	}
	var open struct {
		Count int `json:"count"`
	}
	if err := g.call("POST", "/connection-manager/api/v1/connections/search?limit=1", map[string]any{"status": []string{"CONNECTED"}}, 200, &open); err != nil {
		return nil, err
	}
	if open.Count < len(keys) {
		return nil, fmt.Errorf("%d sessions open after opening %d", open.Count, len(keys))
	}
	fmt.Fprintf(os.Stderr, "gatehouse-scale: %d credentials seeded in %.1fs, %d sessions opened in %.1fs\n",
		creds-1, seeded.Seconds(), open.Count, time.Since(t0).Seconds())
	return e, nil
}

// seedScale adds n credentials of target, owned by users holding role, and returns the secrets of the first
// `sessions` of them. Every one is valid from loopback now.
func seedScale(ctx context.Context, dataDir, role, target string, n, sessions int) ([]string, error) {
	cfg := config.Config{DataDir: dataDir}
	master, err := secrets.LoadOrCreateMasterKey(cfg.MasterKeyPath())
	if err != nil {
		return nil, err
	}
	keys, err := secrets.NewKeyring(master)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.DatabaseDSN(), keys, nil)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	set, err := st.Settings(ctx)
	if err != nil {
		return nil, err
	}
	set.IdleSessionTimeout = scaleIdleTimeout
	if err := st.SaveSettings(ctx, set); err != nil {
		return nil, err
	}
	now := time.Now()
	var out []string
	var user string
	for i := range n {
		if i%1000 == 0 {
			u := &model.User{Username: "scale-" + strconv.Itoa(i/1000), Enabled: true}
			if err := st.CreateUser(ctx, u, "bench"); err != nil {
				return nil, err
			}
			if err := st.SetUserRoles(ctx, u.ID, []string{role}); err != nil {
				return nil, err
			}
			user = u.ID
		}
		c := &model.ProxyCredential{UserID: user, TargetID: target, Name: "s" + strconv.Itoa(i), Enabled: true,
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour), SourceAddress: []string{"127.0.0.0/8"},
			Secret: secrets.RandomToken(24)}
		if err := st.CreateCredential(ctx, c, "bench"); err != nil {
			return nil, err
		}
		if len(out) < sessions {
			out = append(out, c.Secret)
		}
	}
	return out, nil
}
