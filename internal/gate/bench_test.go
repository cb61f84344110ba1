package gate

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/proxy"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/storetest"
)

// benchSize reads a size from the environment, so a quick run can use a smaller store than the issue's
// 10,000 targets and 100,000 credentials.
func benchSize(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// bigGate is a gate over a store with many targets (three endpoints each, on their own host) and many
// credentials spread over them, and the requests that exercise it.
type bigGate struct {
	g    *Gate
	reqs []*proxy.AuthRequest
}

// newBigGate seeds a SQLite store directly through the store package; one user holds the one role every target
// names, as in a deployment where a team shares a role.
func newBigGate(b *testing.B, targets, credentials int) *bigGate {
	b.Helper()
	ctx := context.Background()
	st := storetest.SQLite(b)
	must := func(err error) {
		b.Helper()
		if err != nil {
			b.Fatal(err)
		}
	}
	role := &model.Role{Name: "team", Permissions: []string{}}
	must(st.CreateRole(ctx, role, "bench"))
	u := &model.User{Username: "alice", Enabled: true}
	must(st.CreateUser(ctx, u, "bench"))
	must(st.SetUserRoles(ctx, u.ID, []string{role.ID}))
	ids := make([]string, targets)
	for i := range targets {
		host := fmt.Sprintf("t%05d.example.com", i)
		t := &model.Target{Name: fmt.Sprintf("t%05d", i), Roles: []model.Ref{{ID: role.ID}},
			AuthorizedEndpoints: []policy.Endpoint{
				{Host: host, Protocols: []string{"https"}, Methods: []string{"GET"}, Paths: []string{"/api/v1/items/*"}},
				{Host: host, Protocols: []string{"https"}, Methods: []string{"GET", "POST"}, Paths: []string{"/api/v1/**"}},
				{Host: host, Protocols: []string{"https"}, Methods: []string{"*"}, Paths: []string{"/healthz"}},
			},
			UnauthorizedEndpoints: []policy.Endpoint{{Host: host, Protocols: []string{"*"}, Methods: []string{"*"}, Paths: []string{"/api/v1/admin/**"}}},
			Credential:            model.TargetCredential{Type: "token", BearerToken: "upstream-" + host}}
		must(st.CreateTarget(ctx, t, "bench"))
		ids[i] = t.ID
	}
	now := time.Now()
	bg := &bigGate{}
	for i := range credentials {
		ti := i % targets
		c := &model.ProxyCredential{UserID: u.ID, TargetID: ids[ti], Name: "c" + strconv.Itoa(i), Enabled: true,
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), SourceAddress: []string{"127.0.0.0/8"},
			Secret: secrets.RandomToken(24)}
		must(st.CreateCredential(ctx, c, "bench"))
		// Keep a sample of requests; every one is allowed, so the whole decision runs.
		if i%max(credentials/4096, 1) == 0 {
			bg.reqs = append(bg.reqs, &proxy.AuthRequest{Client: netip.MustParseAddrPort("127.0.0.1:50000"),
				Secret: c.Secret, Scheme: "https", Host: fmt.Sprintf("t%05d.example.com", ti), Method: "GET",
				Path: "/api/v1/items/" + strconv.Itoa(i), Tunnel: true})
		}
	}
	var err error
	if bg.g, err = New(ctx, st, nil); err != nil {
		b.Fatal(err)
	}
	return bg
}

// BenchmarkAuthorizeLargeStore measures the policy decision (credential lookup, validity, role, endpoint match)
// against a store of 10,000 targets and 100,000 credentials (GATEHOUSE_BENCH_TARGETS and
// GATEHOUSE_BENCH_CREDENTIALS change the sizes). It reports the 99th percentile of single decisions as p99-ns,
// which the issue bounds at 5 µs; the figure is reported, never asserted.
func BenchmarkAuthorizeLargeStore(b *testing.B) {
	bg := newBigGate(b, benchSize("GATEHOUSE_BENCH_TARGETS", 10000), benchSize("GATEHOUSE_BENCH_CREDENTIALS", 100000))
	ctx := context.Background()
	// Every request must be allowed, or the benchmark measures the cheap path of a denial.
	for _, r := range bg.reqs {
		if _, err := bg.g.Authorize(ctx, r); err != nil {
			b.Fatalf("%s %s: %v", r.Host, r.Path, err)
		}
	}
	durations := make([]time.Duration, 0, 1<<20) // b.N is not known before b.Loop starts
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r := bg.reqs[i%len(bg.reqs)]
		start := time.Now()
		if _, err := bg.g.Authorize(ctx, r); err != nil {
			b.Fatal(err)
		}
		if len(durations) < cap(durations) {
			durations = append(durations, time.Since(start))
		}
	}
	b.StopTimer()
	if len(durations) > 0 {
		slices.Sort(durations)
		b.ReportMetric(float64(durations[len(durations)*99/100].Nanoseconds()), "p99-ns")
		b.ReportMetric(float64(durations[len(durations)/2].Nanoseconds()), "p50-ns")
	}
}
