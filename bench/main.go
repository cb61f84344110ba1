// Command bench measures Gatehouse side by side with a direct connection, a bare interception baseline, squid
// (ssl-bump) and mitmproxy (mitmdump), in one run on one machine, and reports ratios.
//
//	go run ./bench              # full run: 3 rounds, 1 GiB streams, 10,000 tunnels and sessions, 100,000 credentials
//	go run ./bench -quick       # a few minutes: 1 round and smaller sizes
//	go run ./bench -workloads small-get-c32,store -peers=false
//
// It builds the gatehouse binary, starts an HTTPS origin on loopback, every proxy as its own process, runs each
// workload through each endpoint in alternating order, prints a table and writes a JSON file. Everything it starts
// it stops (process groups, temp dirs), also on SIGINT and SIGTERM; all traffic stays on loopback. Installing the
// peers (squid-openssl, mitmproxy) needs root; without it, pass -peers=false.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	var (
		quick      = flag.Bool("quick", false, "smaller sizes and one round: a few minutes")
		rounds     = flag.Int("rounds", 0, "rounds of alternating endpoints (default 3, 1 with -quick)")
		only       = flag.String("workloads", "", "comma-separated workloads to run (default all; names: small-get-c1, small-get-c32, small-get-c256, h2-c32x4, new-conn-c8, 1mib-down-c8, 1mib-up-c8, extender-1mib-c8, scale-c32, stream-down, stream-up, idle-tunnels, store)")
		endpoints  = flag.String("endpoints", "direct,baseline,gatehouse,gatehouse-norec,gatehouse-extender,gatehouse-scale,gatehouse-scale-spread,squid,mitmproxy", "endpoints to compare (each starts only if a chosen workload uses it)")
		peers      = flag.Bool("peers", true, "install (if missing) and run squid and mitmdump")
		out        = flag.String("out", "bench-results.json", "JSON results file")
		keep       = flag.Bool("keep", false, "keep the temp dir (logs, data dirs) for inspection")
		perRun     = flag.Duration("run-limit", 0, "wall-clock cap of one run (default 20s, 8s with -quick)")
		streamSize = flag.Int64("stream-bytes", 0, "size of the streamed response and upload (default 1 GiB, 128 MiB with -quick)")
		tunnels    = flag.Int("tunnels", 0, "idle tunnels (default 10000, 1000 with -quick)")
		targets    = flag.Int("store-targets", 0, "targets in the large store (default 10000, 1000 with -quick)")
		creds      = flag.Int("store-credentials", 0, "credentials in the large store (default 100000, 10000 with -quick)")
		sessions   = flag.Int("scale-sessions", 0, "open API sessions of the gatehouse-scale endpoint (default 10000, 1000 with -quick)")
		scaleCreds = flag.Int("scale-credentials", 0, "credentials of the gatehouse-scale endpoint (default 100000, 10000 with -quick)")

		serveBase = flag.Bool("serve-baseline", false, "internal: run the bare interception baseline")
		listen    = flag.String("listen", "127.0.0.1:0", "internal: baseline listen address")
		caCert    = flag.String("ca-cert", "", "internal: baseline interception CA certificate")
		caKey     = flag.String("ca-key", "", "internal: baseline interception CA key")
		upCA      = flag.String("upstream-ca", "", "internal: CA the baseline trusts upstream")
	)
	flag.Parse()
	if *serveBase {
		// serveBaseline serves until the bench kills it; it returns only on failure.
		fmt.Fprintln(os.Stderr, "baseline:", serveBaseline(*listen, *caCert, *caKey, *upCA))
		os.Exit(1)
	}
	l := limits{small: 50000, newConn: 2000, mib: 400, stream: 1 << 30, tunnels: 10000, sessions: 10000, creds: 100000,
		perRun: 20 * time.Second}
	nTargets, nCreds := 10000, 100000
	if *quick {
		l = limits{small: 10000, newConn: 300, mib: 100, stream: 128 << 20, tunnels: 1000, sessions: 1000, creds: 10000,
			perRun: 8 * time.Second}
		nTargets, nCreds = 1000, 10000
	}
	if *rounds == 0 {
		*rounds = 3
		if *quick {
			*rounds = 1
		}
	}
	setIf := func(dst *int, v int) {
		if v > 0 {
			*dst = v
		}
	}
	setIf(&l.tunnels, *tunnels)
	setIf(&l.sessions, *sessions)
	setIf(&l.creds, *scaleCreds)
	if l.creds < l.sessions {
		fmt.Fprintln(os.Stderr, "bench: -scale-credentials must be at least -scale-sessions (one credential per session)")
		os.Exit(2)
	}
	setIf(&nTargets, *targets)
	setIf(&nCreds, *creds)
	if *streamSize > 0 {
		l.stream = *streamSize
	}
	if *perRun > 0 {
		l.perRun = *perRun
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	cl := &cleanups{}
	go func() {
		<-ctx.Done()
		// A second chance for a run stuck past its bounds: clean up and leave.
		time.Sleep(15 * time.Second)
		cl.run()
		os.Exit(130)
	}()
	rep, err := run(ctx, cl, runOpts{l: l, rounds: *rounds, only: splitList(*only), endpoints: splitList(*endpoints),
		peers: *peers, keep: *keep, nTargets: nTargets, nCreds: nCreds, quick: *quick})
	cl.run()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	rep.Command = strings.Join(os.Args, " ")
	rep.printTable(os.Stdout)
	if err := rep.writeJSON(*out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	fmt.Printf("\nJSON: %s\n", *out)
}

type runOpts struct {
	l                limits
	rounds           int
	only, endpoints  []string
	peers, keep      bool
	nTargets, nCreds int
	quick            bool
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func run(ctx context.Context, cl *cleanups, o runOpts) (*report, error) {
	limit := raiseFileLimit()
	dir, err := os.MkdirTemp("", "gatehouse-bench-")
	if err != nil {
		return nil, err
	}
	// World-traversable so squid, after dropping root, can reach its own subdirectory.
	_ = os.Chmod(dir, 0o755)
	if o.keep {
		fmt.Fprintln(os.Stderr, "keeping", dir)
	} else {
		cl.add(func() { os.RemoveAll(dir) })
	}
	rep := &report{When: time.Now().UTC(), Machine: machine(), Versions: map[string]string{"go": runtime.Version()},
		Quick: o.quick, Rounds: o.rounds, results: map[string]map[string]*result{}}
	want := func(name string) bool { return len(o.only) == 0 || slices.Contains(o.only, name) }
	if limit < uint64(4*o.l.tunnels+1000) && want("idle-tunnels") {
		rep.Notes = append(rep.Notes, fmt.Sprintf("descriptor limit %d is low for %d tunnels", limit, o.l.tunnels))
	}
	if limit < uint64(o.l.sessions+2000) && want("scale-c32") {
		rep.Notes = append(rep.Notes, fmt.Sprintf("descriptor limit %d is low for %d open sessions (each holds its trail file open)", limit, o.l.sessions))
	}
	rep.Notes = append(rep.Notes,
		"figures are from a shared 2-core machine with the load generator and origin on the same cores: compare ratios, not absolute numbers",
		"chunked request bodies are read whole by Gatehouse before forwarding (limit 10 MiB), so uploads use Content-Length",
		"mitmdump runs with stream_large_bodies=1m, as one must for gigabyte bodies; squid with cache deny all")

	var wls []workload
	for _, w := range workloads(o.l) {
		if want(w.Name) {
			wls = append(wls, w)
		}
	}
	// Only the endpoints some chosen workload runs on are started (the scale endpoint's seeding takes a while).
	var needed []string
	for _, name := range o.endpoints {
		if slices.ContainsFunc(wls, func(w workload) bool { return w.uses(name) }) {
			needed = append(needed, name)
		}
	}
	o.endpoints = needed

	fmt.Fprintln(os.Stderr, "building gatehouse...")
	bin, err := buildGatehouse(ctx, dir)
	if err != nil {
		return nil, err
	}
	eps, err := startEndpoints(ctx, cl, dir, bin, o, rep)
	if err != nil {
		return nil, err
	}
	for _, e := range eps {
		rep.Order = append(rep.Order, e.Name)
	}
	samples := map[string]map[string][]sample{}
	for round := range o.rounds {
		for _, w := range wls {
			if w.Once && round > 0 {
				continue
			}
			if samples[w.Name] == nil {
				samples[w.Name] = map[string][]sample{}
			}
			weps := w.endpoints(eps)
			// Rotate the order each round, so no endpoint always runs first (or right after the heaviest one).
			for i := range weps {
				e := weps[(i+round)%len(weps)]
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if w.NA != nil {
					if why := w.NA(e); why != "" {
						samples[w.Name][e.Name] = append(samples[w.Name][e.Name], sample{NA: why})
						continue
					}
				}
				fmt.Fprintf(os.Stderr, "round %d/%d  %-16s %-18s ", round+1, o.rounds, w.Name, e.Name)
				s := w.run(ctx, e)
				fmt.Fprintf(os.Stderr, "%6d req %8.1fs %d errors\n", s.Requests, s.Elapsed.Seconds(), s.Errors)
				samples[w.Name][e.Name] = append(samples[w.Name][e.Name], s)
			}
		}
	}
	for _, w := range wls {
		wr := workloadReport{Name: w.Name, Desc: w.Desc}
		rep.results[w.Name] = map[string]*result{}
		for _, e := range w.endpoints(eps) {
			r := aggregate(e.Name, samples[w.Name][e.Name])
			rep.results[w.Name][e.Name] = r
			wr.Results = append(wr.Results, r)
		}
		rep.Workloads = append(rep.Workloads, wr)
	}
	if want("store") {
		fmt.Fprintf(os.Stderr, "large store: seeding %d targets and %d credentials...\n", o.nTargets, o.nCreds)
		decisions := 200000
		if rep.Store, err = runStore(ctx, cl, bin, dir, o.nTargets, o.nCreds, max(o.rounds, 3), decisions); err != nil {
			return nil, fmt.Errorf("large store: %w", err)
		}
	}
	rep.checkTargets()
	return rep, nil
}

// startEndpoints starts the origin and every proxy that was asked for.
func startEndpoints(ctx context.Context, cl *cleanups, dir, bin string, o runOpts, rep *report) ([]*endpoint, error) {
	originCA, err := newCA("gatehouse bench origin CA")
	if err != nil {
		return nil, err
	}
	originCAPath := filepath.Join(dir, "origin-ca.pem")
	if err := os.WriteFile(originCAPath, originCA.certPEM, 0o644); err != nil {
		return nil, err
	}
	org, err := startOrigin(cl, originCA)
	if err != nil {
		return nil, err
	}
	originAddr = org.addr
	peers := o.peers && (slices.Contains(o.endpoints, "squid") || slices.Contains(o.endpoints, "mitmproxy"))
	if peers {
		if err := ensurePackages(ctx); err != nil {
			return nil, err
		}
		rep.Versions["squid"] = peerVersion("squid", "-v")
		rep.Versions["mitmdump"] = peerVersion("mitmdump", "--version")
	}
	var eps []*endpoint
	procs := map[string]*gatehouseProc{}
	var scale *endpoint // both scale endpoints share one process
	for _, name := range o.endpoints {
		fmt.Fprintf(os.Stderr, "starting %s...\n", name)
		switch name {
		case "direct":
			eps = append(eps, &endpoint{Name: name, roots: originCA.pool(), secret: targetToken, h2Host: org.h2addr})
		case "baseline":
			ca, err := newCA("gatehouse bench baseline CA")
			if err != nil {
				return nil, err
			}
			certPath, keyPath := filepath.Join(dir, "baseline-ca.pem"), filepath.Join(dir, "baseline-ca.key")
			if err := ca.writeFiles(certPath, keyPath); err != nil {
				return nil, err
			}
			self, err := os.Executable()
			if err != nil {
				return nil, err
			}
			addr, err := freeAddr()
			if err != nil {
				return nil, err
			}
			c, err := startChild(cl, name, filepath.Join(dir, "baseline.log"), nil, self, "-serve-baseline",
				"-listen", addr, "-ca-cert", certPath, "-ca-key", keyPath, "-upstream-ca", originCAPath)
			if err != nil {
				return nil, err
			}
			if err := waitListening(ctx, c, addr, 10*time.Second); err != nil {
				return nil, err
			}
			// The baseline swaps no credential: its client holds the target's own.
			eps = append(eps, &endpoint{Name: name, proxyAddr: addr, roots: ca.pool(), secret: targetToken, pid: c.cmd.Process.Pid})
		case "gatehouse", "gatehouse-norec":
			g, err := startGatehouse(ctx, cl, bin, filepath.Join(dir, "data-"+name), filepath.Join(dir, name+".log"))
			if err != nil {
				return nil, err
			}
			secret, pool, err := g.configure(org.addr, originCA.certPEM, name == "gatehouse")
			if err != nil {
				return nil, fmt.Errorf("configure %s: %w", name, err)
			}
			procs[name] = g
			eps = append(eps, &endpoint{Name: name, proxyAddr: g.proxyAddr, roots: pool, secret: secret, pid: g.cmd.Process.Pid})
		case "gatehouse-extender":
			g := procs["gatehouse"]
			if g == nil {
				return nil, errors.New("gatehouse-extender runs on the gatehouse endpoint's process: list gatehouse before it")
			}
			gh := eps[slices.IndexFunc(eps, func(e *endpoint) bool { return e.Name == "gatehouse" })]
			e, err := startExtender(ctx, cl, dir, bin, g, gh, org.addr, originCA.certPEM)
			if err != nil {
				return nil, fmt.Errorf("extender: %w", err)
			}
			eps = append(eps, e)
		case "gatehouse-scale", "gatehouse-scale-spread":
			if scale == nil {
				if scale, err = startScale(ctx, cl, dir, bin, org.addr, originCA.certPEM, o.l.sessions, o.l.creds); err != nil {
					return nil, fmt.Errorf("scale: %w", err)
				}
			}
			e := *scale
			e.Name = name
			if name == "gatehouse-scale" {
				e.spread = nil
			}
			eps = append(eps, &e)
		case "squid":
			if !o.peers {
				continue
			}
			ca, err := newCA("gatehouse bench squid CA")
			if err != nil {
				return nil, err
			}
			c, addr, err := startSquid(ctx, cl, filepath.Join(dir, "squid"), ca, originCAPath)
			if err != nil {
				return nil, err
			}
			eps = append(eps, &endpoint{Name: name, proxyAddr: addr, roots: ca.pool(), secret: "user-secret-squid", pid: c.cmd.Process.Pid,
				noH2: "squid does not speak HTTP/2: ssl-bump offers the client HTTP/1.1 only"})
		case "mitmproxy":
			if !o.peers {
				continue
			}
			c, addr, pool, err := startMitmdump(ctx, cl, filepath.Join(dir, "mitmproxy"), originCAPath)
			if err != nil {
				return nil, err
			}
			eps = append(eps, &endpoint{Name: name, proxyAddr: addr, roots: pool, secret: "user-secret-mitm", pid: c.cmd.Process.Pid})
		default:
			return nil, fmt.Errorf("unknown endpoint %q", name)
		}
	}
	// One request through each before any measurement, so a misconfigured endpoint fails fast and clearly.
	for _, e := range eps {
		l := limits{perRun: 20 * time.Second}
		s := requests(ctx, e, l, 1, 1, false, func(int) (*http.Request, error) { return get(e, "/small") })
		if s.Errors > 0 || s.Requests != 1 {
			return nil, fmt.Errorf("smoke request through %s failed: %s", e.Name, s.FirstErr)
		}
	}
	return eps, nil
}

// machine describes where the run happened.
func machine() map[string]string {
	m := map[string]string{"cpus": fmt.Sprint(runtime.NumCPU()), "goos": runtime.GOOS, "goarch": runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m["cpu"] = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		m["memory"] = strings.Join(strings.Fields(strings.TrimPrefix(line, "MemTotal:")), " ")
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m["kernel"] = strings.TrimSpace(string(out))
	}
	m["summary"] = fmt.Sprintf("%s CPUs (%s), %s RAM, %s", m["cpus"], m["cpu"], m["memory"], m["kernel"])
	return m
}
