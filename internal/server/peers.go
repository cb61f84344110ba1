package server

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httputil"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/serviceapi"
)

// peers passes API requests on to another node of the cluster: the trail of a session still open there is only on
// that node's disk. Nodes reach each other's API over TLS verified against the cluster's own CA.
type peers struct {
	s  *Server
	tr *http.Transport
}

var _ serviceapi.Peers = (*peers)(nil)

func newPeers(s *Server) *peers {
	pool := x509.NewCertPool()
	pool.AddCert(s.ca.Root())
	return &peers{s: s, tr: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 5 * time.Second,
		IdleConnTimeout:     time.Minute,
	}}
}

func (p *peers) Self() string { return p.s.node.ID }

func (p *peers) Forward(w http.ResponseWriter, r *http.Request, node string) error {
	nodes, err := p.s.store.Nodes(r.Context())
	if err != nil {
		return err
	}
	addr := ""
	for _, n := range nodes {
		if n.ID == node {
			addr = n.APIAddress
		}
	}
	unreachable := &serviceapi.Error{Status: http.StatusServiceUnavailable, Code: "NODE_UNAVAILABLE",
		Message: "the session is open on another node, which does not answer; its trail is readable here once it closes"}
	if addr == "" {
		return unreachable
	}
	failed := false
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.Host = "https", addr, addr
		},
		Transport:     p.tr,
		FlushInterval: -1, // the live stream is Server-Sent Events
		ErrorHandler: func(http.ResponseWriter, *http.Request, error) {
			failed = true
		},
	}
	rp.ServeHTTP(w, r)
	if failed {
		p.s.log.Warn("passing a trail request to its node failed", "node", node, "address", addr)
		return unreachable
	}
	return nil
}
