package server

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/gatehouse-dev/gatehouse/internal/limits"
)

// behindBalancer takes the client address of API connections from a PROXY protocol header sent by a trusted load
// balancer (--proxy-protocol-trusted, the same ranges as the proxy listener's), so that audit events, login
// throttling and the per-client connection cap see the client, not the balancer. A header from anyone else is
// refused; a header is optional either way, so health checks may connect directly. ln is the limits listener,
// which defers counting a balancer's connections until the header names their client.
func (s *Server) behindBalancer(ln net.Listener) net.Listener {
	if len(s.cfg.TrustedPrefixes()) == 0 {
		return ln
	}
	return &balancedListener{Listener: &proxyproto.Listener{Listener: ln, ReadHeaderTimeout: 10 * time.Second,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if s.fromBalancer(o.Upstream) {
				return proxyproto.USE, nil
			}
			return proxyproto.REJECT, nil
		}}}
}

// fromBalancer says whether a peer is a trusted load balancer.
func (s *Server) fromBalancer(a net.Addr) bool {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return false
	}
	for _, p := range s.cfg.TrustedPrefixes() {
		if p.Contains(ap.Addr().Unmap()) {
			return true
		}
	}
	return false
}

// balancedListener hands out connections whose PROXY header is read, and whose client is counted, in the
// connection's own goroutine (net/http's, on its first RemoteAddr and Read), never in the accept loop, where a
// silent peer would hold up every other connection for the header timeout.
type balancedListener struct{ net.Listener }

func (l *balancedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	bc := &balancedConn{Conn: c}
	if pc, ok := c.(*proxyproto.Conn); ok {
		bc.lc, _ = pc.Raw().(*limits.Conn)
	}
	return bc, nil
}

// balancedConn counts itself against the client its PROXY header names before its first read, and passes the
// API server's protect and expose calls to the limits connection underneath.
type balancedConn struct {
	net.Conn
	lc   *limits.Conn
	once sync.Once
	ok   bool
}

func (c *balancedConn) Read(p []byte) (int, error) {
	c.once.Do(func() { c.ok = c.lc == nil || c.lc.BindTo(limits.AddrOf(c.Conn.RemoteAddr())) })
	if !c.ok {
		return 0, errors.New("api: too many connections from this client")
	}
	return c.Conn.Read(p)
}

// Protect implements limits.Protector.
func (c *balancedConn) Protect() {
	if c.lc != nil {
		c.lc.Protect()
	}
}

// Expose implements limits.Protector.
func (c *balancedConn) Expose() {
	if c.lc != nil {
		c.lc.Expose()
	}
}

// readyz answers 200 when this node can serve: its database answers, its policy snapshot is fresh (the periodic
// reload has not been failing), and its trail directory takes writes. A balancer stops sending clients to a node
// that answers 503; /healthz only says the process is alive.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	checks := map[string]string{"database": "ok", "policy": "ok", "recordings": "ok"}
	ok := true
	fail := func(name, why string) { checks[name], ok = why, false }
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		fail("database", "unreachable")
	}
	interval := time.Duration(max(s.Settings().ReauthorizationInterval, 1)) * time.Second
	if age := time.Since(s.dp.gate.Built()); age > 3*interval+10*time.Second {
		fail("policy", "stale: last built "+age.Round(time.Second).String()+" ago")
	}
	if err := s.dp.sessions.Healthy(); err != nil {
		fail("recordings", "failed")
	} else if err := probeDir(s.dp.trails.Dir()); err != nil {
		fail("recordings", "not writable")
	}
	if s.node.Taken() {
		fail("node", "another process runs as this node id")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(map[string]any{"ready": ok, "node": s.node.ID, "leader": s.node.Leading(), "checks": checks})
}

// probeDir writes and removes a small file in dir.
func probeDir(dir string) error {
	f, err := os.CreateTemp(dir, ".ready-*")
	if err != nil {
		return err
	}
	_, err = f.Write([]byte("ready"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	os.Remove(filepath.Join(dir, filepath.Base(f.Name())))
	return err
}
