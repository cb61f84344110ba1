package gate

import (
	"context"
	"testing"
)

// BenchmarkReloadLargeStore measures one rebuild of the policy snapshot from the store, what every node of a
// cluster does for each announced change and every reauthorization_interval (docs/scaling.md quotes it). The sizes
// come from GATEHOUSE_BENCH_TARGETS and GATEHOUSE_BENCH_CREDENTIALS (default 1,000 and 10,000).
func BenchmarkReloadLargeStore(b *testing.B) {
	bg := newBigGate(b, benchSize("GATEHOUSE_BENCH_TARGETS", 1000), benchSize("GATEHOUSE_BENCH_CREDENTIALS", 10000))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := bg.g.Reload(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
