package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// endpoint is one way of reaching the origin: directly, or through one proxy under test.
type endpoint struct {
	Name      string
	proxyAddr string // "" for direct
	roots     *x509.CertPool
	secret    string // what the client puts in Authorization
	pid       int    // the proxy process (and its helpers) to measure; 0 for direct
	// extraPIDs are measured with pid: processes of the endpoint that are not the proxy's children (the extender
	// agent).
	extraPIDs []int
	// host is the authority requests name; "" means the origin's own address.
	host string
	// h2Host is the authority of the HTTP/2 workload, for direct: the origin's HTTP/2 listener.
	h2Host string
	// noH2 says why the endpoint cannot carry HTTP/2 inside the tunnel; "" when it can.
	noH2 string
	// spread, if set, are the secrets the scale workload's requests take in turn instead of secret.
	spread []string
}

// dedicatedEndpoints run only the workloads that name them (Only): each exists for one comparison.
var dedicatedEndpoints = []string{"gatehouse-extender", "gatehouse-scale", "gatehouse-scale-spread"}

func (e *endpoint) authority() string {
	if e.host != "" {
		return e.host
	}
	return originAddr
}

// secretFor is the secret of the workload's i-th request.
func (e *endpoint) secretFor(i int) string {
	if len(e.spread) > 0 {
		return e.spread[i%len(e.spread)]
	}
	return e.secret
}

func (e *endpoint) pids() []int {
	if e.pid == 0 {
		return nil
	}
	return append([]int{e.pid}, e.extraPIDs...)
}

// transport is the client side: HTTP/1.1, the proxy's CA as the only root, the proxy from the endpoint (never the
// environment), keep-alive as asked.
func (e *endpoint) transport(conc int, keepAlive bool) *http.Transport {
	t := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: e.roots},
		MaxIdleConnsPerHost: conc,
		DisableKeepAlives:   !keepAlive,
		DisableCompression:  true,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     30 * time.Second,
	}
	if e.proxyAddr != "" {
		t.Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: e.proxyAddr})
	}
	return t
}

// sample is what one run of a workload through one endpoint measured.
type sample struct {
	Requests int           `json:"requests"`
	Errors   int           `json:"errors"`
	FirstErr string        `json:"first_error,omitempty"`
	Bytes    int64         `json:"bytes"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	CPU      time.Duration `json:"cpu_ns"`
	PeakKB   int64         `json:"peak_rss_kb"`
	// PerTunnelKB is set by the idle-tunnel workload: resident memory added per open tunnel.
	PerTunnelKB float64 `json:"per_tunnel_kb,omitempty"`
	// NA says why the endpoint cannot run the workload; nothing else is set then.
	NA  string          `json:"not_applicable,omitempty"`
	lat []time.Duration // merged into the result, not kept per sample
}

// workload is one line of the list.
type workload struct {
	Name string
	Desc string
	// Once runs it in a single round only (gigabyte streams, idle tunnels): long, and its peak is what counts.
	Once bool
	// Only, if set, lists the endpoints the workload runs on (dedicated ones included); nil means every endpoint
	// that is not dedicated.
	Only []string
	// NA, if set, says why an endpoint cannot run the workload ("" when it can); the table shows the reason.
	NA  func(e *endpoint) string
	run func(ctx context.Context, e *endpoint) sample
}

// endpoints are those of eps the workload runs on, in their order.
func (w *workload) endpoints(eps []*endpoint) []*endpoint {
	var out []*endpoint
	for _, e := range eps {
		if w.uses(e.Name) {
			out = append(out, e)
		}
	}
	return out
}

// uses says whether the workload runs on (or lists as not applicable) the endpoint named name.
func (w *workload) uses(name string) bool {
	if w.Only != nil {
		return slices.Contains(w.Only, name)
	}
	return !slices.Contains(dedicatedEndpoints, name)
}

// limits bound every load in count and time.
type limits struct {
	small, newConn, mib int           // requests per run
	stream              int64         // bytes of the streamed response and upload
	tunnels             int           // idle tunnels
	sessions, creds     int           // the scale endpoint's open sessions and stored credentials
	perRun              time.Duration // wall-clock cap of one run
}

func workloads(l limits) []workload {
	small := func(conc int) workload {
		return workload{Name: "small-get-c" + strconv.Itoa(conc), Desc: fmt.Sprintf("small JSON GET, keep-alive, concurrency %d", conc),
			run: func(ctx context.Context, e *endpoint) sample {
				return requests(ctx, e, l, conc, l.small, true, func(int) (*http.Request, error) { return get(e, "/small") })
			}}
	}
	return []workload{
		small(1), small(32), small(256),
		{Name: "h2-c32x4", Desc: "small JSON GET over HTTP/2 inside the tunnel, 32 streams over 4 connections",
			NA:  func(e *endpoint) string { return e.noH2 },
			run: func(ctx context.Context, e *endpoint) sample { return h2Requests(ctx, e, l, 4, 32, l.small) }},
		{Name: "new-conn-c8", Desc: "small JSON GET, new TCP+TLS connection per request, concurrency 8",
			run: func(ctx context.Context, e *endpoint) sample {
				return requests(ctx, e, l, 8, l.newConn, false, func(int) (*http.Request, error) { return get(e, "/small") })
			}},
		{Name: "1mib-down-c8", Desc: "1 MiB responses, keep-alive, concurrency 8",
			run: func(ctx context.Context, e *endpoint) sample {
				return requests(ctx, e, l, 8, l.mib, true, func(int) (*http.Request, error) { return get(e, "/blob?size=1048576") })
			}},
		{Name: "1mib-up-c8", Desc: "1 MiB uploads (Content-Length), keep-alive, concurrency 8",
			run: func(ctx context.Context, e *endpoint) sample {
				return requests(ctx, e, l, 8, l.mib, true, func(int) (*http.Request, error) { return upload(e, 1<<20) })
			}},
		{Name: "extender-1mib-c8", Desc: "1 MiB responses, keep-alive, concurrency 8: gatehouse straight to the origin and through an extender agent on loopback",
			Only: []string{"gatehouse", "gatehouse-extender"},
			run: func(ctx context.Context, e *endpoint) sample {
				return requests(ctx, e, l, 8, l.mib, true, func(int) (*http.Request, error) { return get(e, "/blob?size=1048576") })
			}},
		{Name: "scale-c32", Desc: fmt.Sprintf("small JSON GET, keep-alive, concurrency 32: gatehouse (one session) and gatehouse-scale "+
			"(%d open sessions, %d credentials; -spread: each request on the next open session)", l.sessions, l.creds),
			Only: []string{"gatehouse", "gatehouse-scale", "gatehouse-scale-spread"},
			run: func(ctx context.Context, e *endpoint) sample {
				return requests(ctx, e, l, 32, l.small, true, func(i int) (*http.Request, error) {
					return getAt(e.authority(), e.secretFor(i), "/small")
				})
			}},
		{Name: "stream-down", Desc: fmt.Sprintf("one %s streamed response", size(l.stream)), Once: true,
			run: func(ctx context.Context, e *endpoint) sample {
				return requests(ctx, e, l, 1, 1, true, func(int) (*http.Request, error) {
					return get(e, "/blob?size="+strconv.FormatInt(l.stream, 10))
				})
			}},
		{Name: "stream-up", Desc: fmt.Sprintf("one %s streamed upload (Content-Length)", size(l.stream)), Once: true,
			run: func(ctx context.Context, e *endpoint) sample {
				return requests(ctx, e, l, 1, 1, true, func(int) (*http.Request, error) { return upload(e, l.stream) })
			}},
		{Name: "idle-tunnels", Desc: fmt.Sprintf("%d concurrent idle intercepted tunnels (CONNECT + TLS)", l.tunnels), Once: true,
			run: func(ctx context.Context, e *endpoint) sample { return idleTunnels(ctx, e, l.tunnels) }},
	}
}

func size(n int64) string {
	if n >= 1<<30 && n%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", n>>30)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

func get(e *endpoint, path string) (*http.Request, error) {
	return getAt(e.authority(), e.secret, path)
}

func getAt(authority, secret, path string) (*http.Request, error) {
	req, err := http.NewRequest("GET", "https://"+authority+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	return req, nil
}

func upload(e *endpoint, n int64) (*http.Request, error) {
	req, err := http.NewRequest("POST", "https://"+e.authority()+"/upload", io.LimitReader(zeroReader{}, n))
	if err != nil {
		return nil, err
	}
	req.ContentLength = n
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Authorization", "Bearer "+e.secret)
	return req, nil
}

// originAddr is set once the origin listens.
var originAddr string

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	n := copy(p, chunk)
	return n, nil
}

// requests sends n requests with conc workers (bounded by l.perRun as well) over one HTTP/1.1 transport and
// measures the proxy process.
func requests(ctx context.Context, e *endpoint, l limits, conc, n int, keepAlive bool, mk func(i int) (*http.Request, error)) sample {
	tr := e.transport(conc, keepAlive)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: max(l.perRun, time.Minute)}
	warm := 0
	// Warm-up: open the keep-alive connections (and mint the leaf) before measuring.
	if keepAlive && n > 1 {
		warm = conc
	}
	return drive(ctx, e, l, []*http.Client{client}, conc, n, warm, nil, mk)
}

// drive sends n requests with conc workers, worker i on clients[i%len(clients)], bounded by l.perRun, after warm
// unmeasured requests spread over the clients, and measures the endpoint's processes. check, if set, vets each
// answer beyond its status (the HTTP/2 workload refuses an HTTP/1.1 answer).
func drive(ctx context.Context, e *endpoint, l limits, clients []*http.Client, conc, n, warm int,
	check func(*http.Response) error, mk func(i int) (*http.Request, error)) sample {
	one := func(ctx context.Context, client *http.Client, i int) (int64, time.Duration, error) {
		req, err := mk(i)
		if err != nil {
			return 0, 0, err
		}
		start := time.Now()
		resp, err := client.Do(req.WithContext(ctx))
		if err != nil {
			return 0, 0, err
		}
		defer resp.Body.Close()
		got, err := io.Copy(io.Discard, resp.Body)
		if req.ContentLength > 0 {
			got += req.ContentLength // uploads count what was sent
		}
		if err != nil {
			return got, 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return got, 0, fmt.Errorf("status %d", resp.StatusCode)
		}
		if check != nil {
			if err := check(resp); err != nil {
				return got, 0, err
			}
		}
		return got, time.Since(start), nil
	}
	if warm > 0 {
		var wg sync.WaitGroup
		for w := range warm {
			wg.Add(1)
			go func() { defer wg.Done(); one(ctx, clients[w%len(clients)], 0) }()
		}
		wg.Wait()
	}
	runtime.GC()
	ctx, cancel := context.WithTimeout(ctx, l.perRun)
	defer cancel()
	var s sample
	m := startMeasure(e.pids())
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := clients[w%len(clients)]
			lat := make([]time.Duration, 0, n/conc+1)
			var bytes int64
			var errs int
			var firstErr error
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					break
				}
				b, d, err := one(ctx, client, i)
				bytes += b
				if err != nil {
					if ctx.Err() != nil {
						break // the time bound, not the proxy
					}
					errs++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				lat = append(lat, d)
			}
			mu.Lock()
			s.lat = append(s.lat, lat...)
			s.Bytes += bytes
			s.Errors += errs
			if firstErr != nil && s.FirstErr == "" {
				s.FirstErr = firstErr.Error()
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	s.Elapsed = time.Since(start)
	s.Requests = len(s.lat)
	m.finish(&s)
	return s
}

// measure brackets a run with the proxy process's CPU time and peak memory.
type measure struct {
	pids []int
	cpu0 time.Duration
}

// startMeasure brackets the process trees rooted at pids (none for direct).
func startMeasure(pids []int) measure {
	m := measure{pids: pids}
	for _, p := range pids {
		resetPeak(p)
		m.cpu0 += cpuTime(p)
	}
	return m
}

func (m measure) finish(s *sample) {
	if len(m.pids) == 0 {
		return
	}
	var cpu time.Duration
	var peak int64
	for _, p := range m.pids {
		cpu += cpuTime(p)
		peak += peakKB(p)
	}
	s.CPU, s.PeakKB = cpu-m.cpu0, peak
}

// idleTunnels opens n tunnels (CONNECT, then a TLS handshake through the proxy's interception), keeps them all
// open and idle, and reports the proxy's resident memory per tunnel.
func idleTunnels(ctx context.Context, e *endpoint, n int) sample {
	var s sample
	if e.proxyAddr == "" {
		return s // nothing to measure without a proxy
	}
	runtime.GC()
	time.Sleep(500 * time.Millisecond)
	before := rssKB(e.pid)
	m := startMeasure(e.pids())
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	conns := make([]net.Conn, n)
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				c, err := openTunnel(ctx, e)
				mu.Lock()
				if err != nil {
					s.Errors++
					if s.FirstErr == "" {
						s.FirstErr = err.Error()
					}
				} else {
					conns[i] = c
					s.Requests++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	s.Elapsed = time.Since(start)
	// Let the proxy settle (a runtime may return freed setup memory) before reading its resident set.
	time.Sleep(2 * time.Second)
	after := rssKB(e.pid)
	m.finish(&s)
	if s.Requests > 0 {
		s.PerTunnelKB = float64(after-before) / float64(s.Requests)
	}
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	time.Sleep(time.Second)
	return s
}

func openTunnel(ctx context.Context, e *endpoint) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	c, err := d.DialContext(ctx, "tcp", e.proxyAddr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", originAddr, originAddr)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, fmt.Errorf("CONNECT: %s", resp.Status)
	}
	if br.Buffered() > 0 {
		c.Close()
		return nil, errors.New("CONNECT: unexpected bytes after the answer")
	}
	host, _, _ := net.SplitHostPort(originAddr)
	tc := tls.Client(c, &tls.Config{RootCAs: e.roots, ServerName: host, NextProtos: []string{"http/1.1"}})
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS through the tunnel: %w", err)
	}
	_ = c.SetDeadline(time.Time{})
	return tc, nil
}
