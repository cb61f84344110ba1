package server

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// behindBalancer takes the client address of API connections from a PROXY protocol header sent by a trusted load
// balancer (--proxy-protocol-trusted, the same ranges as the proxy listener's), so that audit events and login
// throttling see the client, not the balancer. A header from anyone else is refused; a header is optional either
// way, so health checks may connect directly.
func (s *Server) behindBalancer(ln net.Listener) net.Listener {
	trusted := s.cfg.TrustedPrefixes()
	if len(trusted) == 0 {
		return ln
	}
	return &proxyproto.Listener{Listener: ln, ReadHeaderTimeout: 10 * time.Second,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if ap, err := netip.ParseAddrPort(o.Upstream.String()); err == nil {
				for _, p := range trusted {
					if p.Contains(ap.Addr().Unmap()) {
						return proxyproto.USE, nil
					}
				}
			}
			return proxyproto.REJECT, nil
		}}
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
