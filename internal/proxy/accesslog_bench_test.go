package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkLogAccess is the access log line of one allowed request, through the JSON handler `gatehouse serve`
// configures, to io.Discard and to a file (what the bench's gatehouse writes its stderr to).
func BenchmarkLogAccess(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for _, bc := range []struct {
		name string
		w    io.Writer
	}{{"discard", io.Discard}, {"file", f}} {
		b.Run(bc.name, func(b *testing.B) {
			s := &Server{Logger: slog.New(slog.NewJSONHandler(bc.w, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", "proxy")}
			s.init()
			rs := benchRequestState()
			ctx := context.Background()
			b.ReportAllocs()
			for range b.N {
				s.logAccess(ctx, rs, 120, 3400)
			}
		})
	}
}

func benchRequestState() *requestState {
	return &requestState{id: "0f3a9c2e41b7d5a8", start: time.Now(), client: netip.MustParseAddrPort("127.0.0.1:51234"),
		clientStr: "127.0.0.1:51234", method: "GET", scheme: "https", host: "api.example.com:443", path: "/v1/widgets/42",
		status: 200, decision: decisionAllow,
		grant: &Grant{Target: &Target{Name: "origin"}, Session: SessionInfo{UserName: "alice", UserID: "3c2f9a7e-5b1d-4e8a-9f0c-2d4b6a8e1c3f",
			CredentialName: "laptop"}}}
}

func BenchmarkLogAccessParallel(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	s := &Server{Logger: slog.New(slog.NewJSONHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", "proxy")}
	s.init()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		rs := benchRequestState()
		for pb.Next() {
			s.logAccess(context.Background(), rs, 120, 3400)
		}
	})
}
