package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// result aggregates the rounds of one workload through one endpoint.
type result struct {
	Endpoint   string        `json:"endpoint"`
	Rounds     []sample      `json:"rounds"`
	ReqPerSec  float64       `json:"req_per_sec"` // median over rounds
	MiBPerSec  float64       `json:"mib_per_sec"` // median over rounds
	P50        time.Duration `json:"p50_ns"`      // over every request of every round
	P99        time.Duration `json:"p99_ns"`
	CPUPerReq  time.Duration `json:"cpu_per_request_ns"`
	PeakRSSKB  int64         `json:"peak_rss_kb"`
	PerTunnel  float64       `json:"per_tunnel_kb,omitempty"`
	Errors     int           `json:"errors"`
	FirstError string        `json:"first_error,omitempty"`
	NA         string        `json:"not_applicable,omitempty"`
}

// report is everything the JSON file holds.
type report struct {
	When      time.Time                     `json:"when"`
	Command   string                        `json:"command"`
	Machine   map[string]string             `json:"machine"`
	Versions  map[string]string             `json:"versions"`
	Quick     bool                          `json:"quick"`
	Rounds    int                           `json:"rounds"`
	Order     []string                      `json:"endpoints"`
	Workloads []workloadReport              `json:"workloads"`
	Store     *storeResult                  `json:"store,omitempty"`
	Targets   []targetCheck                 `json:"targets"`
	Notes     []string                      `json:"notes"`
	results   map[string]map[string]*result // workload -> endpoint
}

type workloadReport struct {
	Name    string    `json:"name"`
	Desc    string    `json:"description"`
	Results []*result `json:"results"`
}

type targetCheck struct {
	Target string `json:"target"`
	Got    string `json:"got"`
	Met    bool   `json:"met"`
	Known  bool   `json:"measured"`
}

func aggregate(name string, rounds []sample) *result {
	r := &result{Endpoint: name, Rounds: rounds}
	var rps, mibs []float64
	var lat []time.Duration
	var cpu time.Duration
	reqs := 0
	for _, s := range rounds {
		if s.NA != "" {
			r.NA = s.NA
			continue
		}
		if s.Elapsed > 0 {
			rps = append(rps, float64(s.Requests)/s.Elapsed.Seconds())
			mibs = append(mibs, float64(s.Bytes)/(1<<20)/s.Elapsed.Seconds())
		}
		lat = append(lat, s.lat...)
		cpu += s.CPU
		reqs += s.Requests
		r.PeakRSSKB = max(r.PeakRSSKB, s.PeakKB)
		r.Errors += s.Errors
		if r.FirstError == "" {
			r.FirstError = s.FirstErr
		}
		r.PerTunnel = max(r.PerTunnel, s.PerTunnelKB)
	}
	r.ReqPerSec, r.MiBPerSec = median(rps), median(mibs)
	if len(lat) > 0 {
		slices.Sort(lat)
		r.P50, r.P99 = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
	}
	if reqs > 0 {
		r.CPUPerReq = cpu / time.Duration(reqs)
	}
	return r
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func (rep *report) get(workload, endpoint string) *result {
	if m := rep.results[workload]; m != nil {
		return m[endpoint]
	}
	return nil
}

// ratio formats a/b, or "-" when either is unknown.
func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond))
}

func us(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(d)/float64(time.Microsecond))
}

func mib(kb int64) string {
	if kb == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(kb)/1024)
}

// printTable writes one table per workload, with the ratios of Gatehouse (recording on) to every other endpoint.
func (rep *report) printTable(w io.Writer) {
	fmt.Fprintf(w, "\nGatehouse benchmark, %s, %s\n", rep.When.Format(time.RFC3339), rep.Machine["summary"])
	for _, wl := range rep.Workloads {
		fmt.Fprintf(w, "\n## %s: %s\n", wl.Name, wl.Desc)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		idle := wl.Name == "idle-tunnels"
		if idle {
			fmt.Fprintln(tw, "endpoint\ttunnels\tKiB/tunnel\tpeak RSS MiB\tsetup s\terrors\t")
		} else {
			fmt.Fprintln(tw, "endpoint\treq/s\tMiB/s\tp50 ms\tp99 ms\tCPU µs/req\tpeak RSS MiB\tvs direct\tgatehouse vs it\terrors\t")
		}
		gh := rep.get(wl.Name, "gatehouse")
		direct := rep.get(wl.Name, "direct")
		for _, r := range wl.Results {
			if idle {
				if r.Endpoint == "direct" {
					continue
				}
				n := 0
				var el time.Duration
				for _, s := range r.Rounds {
					n, el = s.Requests, s.Elapsed
				}
				fmt.Fprintf(tw, "%s\t%d\t%.1f\t%s\t%.1f\t%d\t\n", r.Endpoint, n, r.PerTunnel, mib(r.PeakRSSKB), el.Seconds(), r.Errors)
				continue
			}
			if r.NA != "" {
				fmt.Fprintf(tw, "%s\tn/a\t\t\t\t\t\t\t\t\t\n", r.Endpoint)
				continue
			}
			vsDirect, vsIt := "-", "-"
			if direct != nil && r.Endpoint != "direct" {
				vsDirect = ratio(r.ReqPerSec, direct.ReqPerSec)
			}
			if gh != nil && r.Endpoint != "gatehouse" {
				vsIt = ratio(gh.ReqPerSec, r.ReqPerSec)
			}
			fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", r.Endpoint, r.ReqPerSec, r.MiBPerSec,
				ms(r.P50), ms(r.P99), us(r.CPUPerReq), mib(r.PeakRSSKB), vsDirect, vsIt, r.Errors)
		}
		tw.Flush()
		for _, r := range wl.Results {
			if r.FirstError != "" {
				fmt.Fprintf(w, "  first error via %s: %s\n", r.Endpoint, r.FirstError)
			}
			if r.NA != "" {
				fmt.Fprintf(w, "  n/a via %s: %s\n", r.Endpoint, r.NA)
			}
		}
	}
	if s := rep.Store; s != nil {
		fmt.Fprintf(w, "\n## large store: %d targets, %d credentials\n", s.Targets, s.Credentials)
		fmt.Fprintf(w, "seeded in %.1fs; policy snapshot built in %s; start-up to healthy: %s; peak RSS at start-up %s MiB\n",
			s.Seed.Seconds(), s.Snapshot.Round(time.Millisecond), durations(s.Startup), mib(s.PeakKB))
		fmt.Fprintf(w, "policy decision (gate.Authorize), %d single decisions: p50 %s, p99 %s\n", s.Decisions, s.P50, s.P99)
	}
	fmt.Fprintf(w, "\n## targets (gatehouse with authentication, injection and recording on)\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range rep.Targets {
		state := "MET"
		switch {
		case !t.Known:
			state = "not measured"
		case !t.Met:
			state = "MISSED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", state, t.Target, t.Got)
	}
	tw.Flush()
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func durations(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, d.Round(time.Millisecond).String())
	}
	return strings.Join(parts, ", ")
}

// checkTargets compares the run against the targets.
func (rep *report) checkTargets() {
	add := func(target, got string, known, met bool) {
		rep.Targets = append(rep.Targets, targetCheck{Target: target, Got: got, Known: known, Met: known && met})
	}
	gh32, base32, squid32, mitm32 := rep.get("small-get-c32", "gatehouse"), rep.get("small-get-c32", "baseline"),
		rep.get("small-get-c32", "squid"), rep.get("small-get-c32", "mitmproxy")
	cmpRate := func(target string, other *result, want float64) {
		if gh32 == nil || other == nil || other.ReqPerSec == 0 {
			add(target, "", false, false)
			return
		}
		got := gh32.ReqPerSec / other.ReqPerSec
		add(target, fmt.Sprintf("%.2fx (%.0f vs %.0f req/s)", got, gh32.ReqPerSec, other.ReqPerSec), true, got >= want)
	}
	cmpRate("small GET c32: >= 0.9x the bare baseline's req/s", base32, 0.9)
	cmpRate("small GET c32: >= 1.25x squid's req/s", squid32, 1.25)
	cmpRate("small GET c32: >= 20x mitmproxy's req/s", mitm32, 20)
	if gh32 != nil && squid32 != nil && squid32.P99 > 0 {
		add("small GET c32: p99 no worse than squid's", fmt.Sprintf("%s vs %s ms", ms(gh32.P99), ms(squid32.P99)), true, gh32.P99 <= squid32.P99)
	} else {
		add("small GET c32: p99 no worse than squid's", "", false, false)
	}
	rep.checkNewTargets(add)
	gh1m, squid1m := rep.get("1mib-down-c8", "gatehouse"), rep.get("1mib-down-c8", "squid")
	if gh1m != nil && squid1m != nil && squid1m.MiBPerSec > 0 {
		got := gh1m.MiBPerSec / squid1m.MiBPerSec
		add("1 MiB responses c8: >= 2x squid's MiB/s", fmt.Sprintf("%.2fx (%.0f vs %.0f MiB/s)", got, gh1m.MiBPerSec, squid1m.MiBPerSec), true, got >= 2)
	} else {
		add("1 MiB responses c8: >= 2x squid's MiB/s", "", false, false)
	}
	peak := int64(0)
	known := false
	for _, wl := range []string{"stream-down", "stream-up"} {
		if r := rep.get(wl, "gatehouse"); r != nil && r.PeakRSSKB > 0 {
			peak, known = max(peak, r.PeakRSSKB), true
		}
	}
	add("streamed GiB with recording: peak RSS <= 100 MiB", mib(peak)+" MiB", known, peak <= 100<<10)
	if r := rep.get("idle-tunnels", "gatehouse"); r != nil && r.PerTunnel > 0 {
		add("idle tunnels: <= 40 KiB RSS per tunnel", fmt.Sprintf("%.1f KiB", r.PerTunnel), true, r.PerTunnel <= 40)
	} else {
		add("idle tunnels: <= 40 KiB RSS per tunnel", "", false, false)
	}
	if s := rep.Store; s != nil {
		add("policy decision with the large store: p99 <= 5 µs", s.P99.String(), true, s.P99 <= 5*time.Microsecond)
		worst := slices.Max(s.Startup)
		add("start-up with the large store: <= 2 s", worst.Round(time.Millisecond).String()+" (slowest)", true, worst <= 2*time.Second)
	} else {
		add("policy decision with the large store: p99 <= 5 µs", "", false, false)
		add("start-up with the large store: <= 2 s", "", false, false)
	}
}

func (rep *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// checkNewTargets adds the targets of the HTTP/2, scale and extender workloads.
func (rep *report) checkNewTargets(add func(target, got string, known, met bool)) {
	measured := func(r *result) bool { return r != nil && r.NA == "" && r.ReqPerSec > 0 }
	const h2 = "HTTP/2 in the tunnel (32 streams, 4 connections): >= 0.9x the bare baseline's req/s"
	if gh, base := rep.get("h2-c32x4", "gatehouse"), rep.get("h2-c32x4", "baseline"); measured(gh) && measured(base) {
		got := gh.ReqPerSec / base.ReqPerSec
		add(h2, fmt.Sprintf("%.2fx (%.0f vs %.0f req/s)", got, gh.ReqPerSec, base.ReqPerSec), true, got >= 0.9)
	} else {
		add(h2, "", false, false)
	}
	one := rep.get("scale-c32", "gatehouse")
	for _, v := range []struct{ endpoint, what string }{{"gatehouse-scale", "scale"}, {"gatehouse-scale-spread", "scale, spread over the open sessions"}} {
		many := rep.get("scale-c32", v.endpoint)
		scale := []string{v.what + ": req/s >= 0.9x the one-session run's", v.what + ": CPU per request <= 1.1x the one-session run's",
			v.what + ": p99 <= 1.1x the one-session run's"}
		if !measured(one) || !measured(many) || one.CPUPerReq == 0 || one.P99 == 0 {
			for _, t := range scale {
				add(t, "", false, false)
			}
			continue
		}
		rate := many.ReqPerSec / one.ReqPerSec
		add(scale[0], fmt.Sprintf("%.2fx (%.0f vs %.0f req/s)", rate, many.ReqPerSec, one.ReqPerSec), true, rate >= 0.9)
		cpu := float64(many.CPUPerReq) / float64(one.CPUPerReq)
		add(scale[1], fmt.Sprintf("%.2fx (%s vs %s µs)", cpu, us(many.CPUPerReq), us(one.CPUPerReq)), true, cpu <= 1.1)
		p99 := float64(many.P99) / float64(one.P99)
		add(scale[2], fmt.Sprintf("%.2fx (%s vs %s ms)", p99, ms(many.P99), ms(one.P99)), true, p99 <= 1.1)
	}
	const ext = "1 MiB responses through an extender: >= 0.7x gatehouse straight to the origin (MiB/s)"
	if gh, ex := rep.get("extender-1mib-c8", "gatehouse"), rep.get("extender-1mib-c8", "gatehouse-extender"); measured(gh) && measured(ex) {
		got := ex.MiBPerSec / gh.MiBPerSec
		add(ext, fmt.Sprintf("%.2fx (%.0f vs %.0f MiB/s)", got, ex.MiBPerSec, gh.MiBPerSec), true, got >= 0.7)
	} else {
		add(ext, "", false, false)
	}
}
