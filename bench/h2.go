package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// The HTTP/2 workload is how kubectl and Go clients talk: a few connections, each carrying many concurrent
// streams. Each connection is its own transport, so the stream count per connection is exactly conc/conns; a
// response that came back over HTTP/1.1 counts as an error, so a proxy that quietly falls back is visible.

// h2Requests sends n small GETs with conc workers over conns HTTP/2 connections through e.
func h2Requests(ctx context.Context, e *endpoint, l limits, conns, conc, n int) sample {
	authority := e.authority()
	if e.h2Host != "" {
		authority = e.h2Host
	}
	var dials atomic.Int64
	clients := make([]*http.Client, conns)
	for i := range clients {
		tr := &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: e.roots},
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 1,
			DisableCompression:  true,
			TLSHandshakeTimeout: 10 * time.Second,
			IdleConnTimeout:     30 * time.Second,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dials.Add(1)
				return (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, addr)
			},
		}
		if e.proxyAddr != "" {
			tr.Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: e.proxyAddr})
		}
		defer tr.CloseIdleConnections()
		clients[i] = &http.Client{Transport: tr, Timeout: max(l.perRun, time.Minute)}
	}
	check := func(resp *http.Response) error {
		if resp.ProtoMajor != 2 {
			return fmt.Errorf("answered over %s, not HTTP/2", resp.Proto)
		}
		return nil
	}
	mk := func(int) (*http.Request, error) { return getAt(authority, e.secret, "/small") }
	// One request per transport first, one at a time: each then holds exactly one connection that the measured
	// streams share (concurrent first requests would race to dial several).
	for _, c := range clients {
		s := drive(ctx, &endpoint{}, l, []*http.Client{c}, 1, 1, 0, check, mk)
		if s.Errors > 0 {
			return sample{Errors: s.Errors, FirstErr: "warm-up: " + s.FirstErr}
		}
	}
	s := drive(ctx, e, l, clients, conc, n, 0, check, mk)
	if d := dials.Load(); d != int64(conns) && s.FirstErr == "" {
		s.Errors++
		s.FirstErr = fmt.Sprintf("%d connections dialled, want %d", d, conns)
	}
	return s
}
