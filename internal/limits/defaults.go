package limits

// Defaults are the connection caps derived from the descriptor limit. Each listener has budgets of its own, so a
// flood of the proxy leaves the management API its descriptors, and the rest of the table is left for
// connections to targets, the database, trails and logs.
type Defaults struct {
	ProxyConns, ProxyConnsPerClient, ProxyUnauthenticated int
	APIConns, APIConnsPerClient                           int
}

// maxUnauthenticated bounds the derived ProxyUnauthenticated.
const maxUnauthenticated = 1 << 16

// fallbackNoFile is assumed when the limit cannot be read: the traditional soft limit.
const fallbackNoFile = 1024

// DefaultsFor derives the caps from nofile, the RLIMIT_NOFILE of the process: 40% of the descriptors for proxy
// clients (each may need a second one to its target), a quarter of those per client address and half of them
// not yet authenticated (at most 65,536), 10% for the management API, a quarter of that per client address. The rest (half the
// table) stays free for targets, the database and files.
func DefaultsFor(nofile uint64) Defaults {
	n := int(min(max(nofile, 64), 1<<24))
	if nofile == 0 {
		n = fallbackNoFile
	}
	d := Defaults{ProxyConns: n * 4 / 10, APIConns: max(n/10, 16)}
	d.ProxyConnsPerClient = max(d.ProxyConns/4, 16)
	// Each waiting connection costs its buffers and a goroutine (some 16 KiB), so however large the table, the
	// connections nobody has vouched for stay below a gigabyte.
	d.ProxyUnauthenticated = min(max(d.ProxyConns/2, 16), maxUnauthenticated)
	d.APIConnsPerClient = max(d.APIConns/4, 8)
	return d
}

// Cap resolves a configured cap: 0 takes def, a negative value means no cap (0 for Conns), anything else is
// the cap itself.
func Cap(v, def int) int {
	switch {
	case v < 0:
		return 0
	case v == 0:
		return def
	}
	return v
}
