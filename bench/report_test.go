package main

import (
	"strings"
	"testing"
	"time"
)

// TestNewTargets checks the HTTP/2, scale and extender targets against hand-made results: met, missed, and not
// measured when a row is missing or not applicable.
func TestNewTargets(t *testing.T) {
	row := func(rps, mibs float64, cpu, p99 time.Duration) *result {
		return &result{ReqPerSec: rps, MiBPerSec: mibs, CPUPerReq: cpu, P99: p99}
	}
	for _, tc := range []struct {
		name    string
		results map[string]map[string]*result
		want    map[string]string // target prefix -> MET, MISSED or not measured
	}{
		{"all met", map[string]map[string]*result{
			"h2-c32x4":         {"gatehouse": row(950, 0, 0, 0), "baseline": row(1000, 0, 0, 0)},
			"scale-c32":        {"gatehouse": row(1000, 0, 100, 10), "gatehouse-scale": row(950, 0, 105, 10), "gatehouse-scale-spread": row(920, 0, 109, 11)},
			"extender-1mib-c8": {"gatehouse": row(100, 100, 0, 0), "gatehouse-extender": row(75, 75, 0, 0)},
		}, map[string]string{"HTTP/2": "MET", "scale: req/s": "MET", "scale: CPU": "MET", "scale: p99": "MET",
			"scale, spread over the open sessions: req/s": "MET", "1 MiB responses through an extender": "MET"}},
		{"all missed", map[string]map[string]*result{
			"h2-c32x4":         {"gatehouse": row(850, 0, 0, 0), "baseline": row(1000, 0, 0, 0)},
			"scale-c32":        {"gatehouse": row(1000, 0, 100, 10), "gatehouse-scale": row(800, 0, 120, 12), "gatehouse-scale-spread": row(800, 0, 120, 12)},
			"extender-1mib-c8": {"gatehouse": row(100, 100, 0, 0), "gatehouse-extender": row(60, 60, 0, 0)},
		}, map[string]string{"HTTP/2": "MISSED", "scale: req/s": "MISSED", "scale: CPU": "MISSED", "scale: p99": "MISSED",
			"scale, spread over the open sessions: p99": "MISSED", "1 MiB responses through an extender": "MISSED"}},
		{"not applicable or absent", map[string]map[string]*result{
			"h2-c32x4":  {"gatehouse": row(950, 0, 0, 0), "baseline": {NA: "no HTTP/2"}},
			"scale-c32": {"gatehouse": row(1000, 0, 100, 10)},
		}, map[string]string{"HTTP/2": "not measured", "scale: req/s": "not measured",
			"scale, spread over the open sessions: CPU": "not measured", "1 MiB responses through an extender": "not measured"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := &report{results: tc.results}
			rep.checkTargets()
			for prefix, want := range tc.want {
				found := false
				for _, c := range rep.Targets {
					if !strings.HasPrefix(c.Target, prefix) {
						continue
					}
					found = true
					got := "MET"
					switch {
					case !c.Known:
						got = "not measured"
					case !c.Met:
						got = "MISSED"
					}
					if got != want {
						t.Errorf("%s: %s (%s), want %s", c.Target, got, c.Got, want)
					}
				}
				if !found {
					t.Errorf("no target starting %q", prefix)
				}
			}
		})
	}
}

// TestWorkloadEndpoints pins which endpoints a workload runs on: the dedicated ones only where named.
func TestWorkloadEndpoints(t *testing.T) {
	names := map[string][]string{}
	var eps []*endpoint
	for _, n := range []string{"direct", "baseline", "gatehouse", "gatehouse-extender", "gatehouse-scale", "gatehouse-scale-spread", "squid"} {
		eps = append(eps, &endpoint{Name: n})
	}
	for _, w := range workloads(limits{}) {
		for _, e := range w.endpoints(eps) {
			names[w.Name] = append(names[w.Name], e.Name)
		}
	}
	for wl, want := range map[string]string{
		"small-get-c32":    "direct baseline gatehouse squid",
		"h2-c32x4":         "direct baseline gatehouse squid",
		"extender-1mib-c8": "gatehouse gatehouse-extender",
		"scale-c32":        "gatehouse gatehouse-scale gatehouse-scale-spread",
	} {
		if got := strings.Join(names[wl], " "); got != want {
			t.Errorf("%s runs on %q, want %q", wl, got, want)
		}
	}
}

// TestAggregateNotApplicable keeps an endpoint's reason and no figures when it cannot run a workload.
func TestAggregateNotApplicable(t *testing.T) {
	r := aggregate("squid", []sample{{NA: "no HTTP/2"}})
	if r.NA != "no HTTP/2" || r.ReqPerSec != 0 || r.Errors != 0 {
		t.Fatalf("got %+v", r)
	}
}
