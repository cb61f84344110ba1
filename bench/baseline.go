package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"sync"
	"time"
)

// The bare interception baseline is the floor cost of what Gatehouse does on the wire and nothing more: accept a
// CONNECT, terminate TLS with a leaf cached per host, forward each request over a pooled transport with a buffer
// pool. No authentication, no policy, no credential swap, no recording, no logging. It runs as its own process
// (`bench -serve-baseline`), so its CPU time and memory are measured like the others'.

// serveBaseline listens on addr and serves until killed. caCert and caKey are the interception CA; upstreamCA is
// the only CA the upstream side trusts.
func serveBaseline(addr, caCertPath, caKeyPath, upstreamCAPath string) error {
	pair, err := tls.LoadX509KeyPair(caCertPath, caKeyPath)
	if err != nil {
		return fmt.Errorf("baseline CA: %w", err)
	}
	caCert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return err
	}
	ca := &benchCA{cert: caCert}
	if ca.key, err = ecdsaKey(pair.PrivateKey); err != nil {
		return err
	}
	upPEM, err := os.ReadFile(upstreamCAPath)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(upPEM) {
		return errors.New("baseline: no upstream CA")
	}
	b := &baseline{ca: ca, leaves: map[string]*tls.Certificate{}}
	b.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "https"
			pr.Out.URL.Host = pr.In.Host
		},
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: roots},
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		},
		BufferPool: &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}},
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	// Every intercepted connection goes to one http.Server through a listener of already-terminated TLS
	// connections, so keep-alive, framing and HTTP/2 (offered in ALPN, as Gatehouse does) are net/http's.
	tunnels := &chanListener{c: make(chan net.Conn), addr: ln.Addr()}
	go (&http.Server{Handler: b.rp, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 90 * time.Second}).Serve(tunnels)
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go b.connect(c, tunnels)
	}
}

type baseline struct {
	ca     *benchCA
	rp     *httputil.ReverseProxy
	mu     sync.Mutex
	leaves map[string]*tls.Certificate
}

// connect reads the CONNECT, answers 200 and hands the terminated TLS connection to the HTTP server.
func (b *baseline) connect(c net.Conn, tunnels *chanListener) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil || req.Method != http.MethodConnect {
		c.Close()
		return
	}
	host, _, err := net.SplitHostPort(req.RequestURI)
	if err != nil {
		c.Close()
		return
	}
	if _, err := c.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	tc := tls.Server(&prefixConn{Conn: c, r: br}, &tls.Config{
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return b.leaf(host)
		},
	})
	tunnels.c <- tc
}

func (b *baseline) leaf(host string) (*tls.Certificate, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.leaves[host]; ok {
		return c, nil
	}
	c, err := b.ca.leaf(host)
	if err != nil {
		return nil, err
	}
	b.leaves[host] = c
	return c, nil
}

// prefixConn reads what bufio already buffered before reading the socket.
type prefixConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *prefixConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// chanListener hands already-accepted connections to an http.Server.
type chanListener struct {
	c    chan net.Conn
	addr net.Addr
}

func (l *chanListener) Accept() (net.Conn, error) { return <-l.c, nil }
func (l *chanListener) Close() error              { return nil }
func (l *chanListener) Addr() net.Addr            { return l.addr }

type bufferPool struct{ p sync.Pool }

func (bp *bufferPool) Get() []byte  { return *(bp.p.Get().(*[]byte)) }
func (bp *bufferPool) Put(b []byte) { bp.p.Put(&b) }
