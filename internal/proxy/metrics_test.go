package proxy

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// TestMetricsObserve checks that the collectors observe keeps per target, decision and code are the ones the
// registry exports, each request counted once in each.
func TestMetricsObserve(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.observe("api", "allow", "200", 10*time.Millisecond, 5, 7)
	m.observe("api", "allow", "200", 10*time.Millisecond, 5, 7)
	m.observe("api", "allow", "502", time.Millisecond, 1, 0)
	m.observe("", "deny", "403", time.Millisecond, 0, 9)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range families {
		for _, s := range mf.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			key := fmt.Sprintf("%s{%s}", mf.GetName(), strings.Join(labels, ","))
			switch {
			case s.GetCounter() != nil:
				got[key] = s.GetCounter().GetValue()
			case s.GetHistogram() != nil:
				got[key] = float64(s.GetHistogram().GetSampleCount())
			}
		}
	}
	want := map[string]float64{
		"gatehouse_proxy_requests_total{code=200,decision=allow,target=api}": 2,
		"gatehouse_proxy_requests_total{code=502,decision=allow,target=api}": 1,
		"gatehouse_proxy_requests_total{code=403,decision=deny,target=none}": 1,
		"gatehouse_proxy_request_duration_seconds{target=api}":               3,
		"gatehouse_proxy_request_duration_seconds{target=none}":              1,
		"gatehouse_proxy_bytes_total{direction=in,target=api}":               11,
		"gatehouse_proxy_bytes_total{direction=out,target=api}":              14,
		"gatehouse_proxy_bytes_total{direction=in,target=none}":              0,
		"gatehouse_proxy_bytes_total{direction=out,target=none}":             9,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("exported metrics (-want +got):\n%s", diff)
	}
}

// BenchmarkMetricsObserve is one request's metrics.
func BenchmarkMetricsObserve(b *testing.B) {
	m := NewMetrics(nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.observe("api", "allow", "200", 10*time.Millisecond, 120, 3400)
		}
	})
}
