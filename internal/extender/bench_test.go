package extender

import (
	"context"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// processCPU is the user and system time this process has used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// blobServer answers every byte it reads with size bytes, on the same connection, like a keep-alive target
// answering downloads.
func blobServer(b *testing.B, size int) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	buf := make([]byte, 64<<10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req := make([]byte, 1)
				for {
					if _, err := io.ReadFull(c, req); err != nil {
						return
					}
					for left := size; left > 0; left -= len(buf) {
						if _, err := c.Write(buf[:min(left, len(buf))]); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkDownload1MiB is the cost of carrying 1 MiB downloads through a hub and an agent on loopback (both in
// this process, over real TLS) on eight kept-alive connections, as the proxy's upstream pool holds them, against
// the same connections to the target directly. Its profile is where the extender's throughput goes. cpu-µs/op is
// the process's CPU time (user and system, origin and reader included) per download: on a shared machine it moves
// less than the wall-clock figures, and the difference between the two sub-benchmarks is what the extender costs.
func BenchmarkDownload1MiB(b *testing.B) {
	const size = 1 << 20
	target := blobServer(b, size)
	h, url, pool := startHub(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := &Agent{Gateway: url, Token: "tok-a", RootCAs: pool}
	go a.Run(ctx)
	waitLinks(b, h, "site", 1)
	for _, bc := range []struct {
		name string
		dial func() (net.Conn, error)
	}{
		{"direct", func() (net.Conn, error) { return net.Dial("tcp", target) }},
		{"extender", func() (net.Conn, error) { return h.Dial(ctx, "site", target) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			var wg sync.WaitGroup
			work := make(chan struct{})
			for range 8 {
				c, err := bc.dial()
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range work {
						if _, err := c.Write([]byte{'x'}); err != nil {
							b.Error(err)
							return
						}
						if n, err := io.CopyN(io.Discard, c, size); err != nil {
							b.Errorf("read %d bytes: %v", n, err)
							return
						}
					}
				}()
			}
			b.ResetTimer()
			cpu0 := processCPU(b)
			for range b.N {
				work <- struct{}{}
			}
			close(work)
			wg.Wait()
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}
