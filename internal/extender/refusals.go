package extender

import (
	"context"
	"net"
	"sync"
	"time"
)

// RefusedConnect is one refused connect as the audit trail records it.
type RefusedConnect struct {
	// Remote is the agent's address as the gateway saw it.
	Remote string
	// Kind is the credential presented: "token" or "certificate".
	Kind string
	// Reason says why, client-safe: "unknown token", "extender disabled", "revoked certificate", ...
	Reason string
	// ExtenderID and Extender name the extender when the credential identifies one.
	ExtenderID, Extender string
	// Suppressed is how many refusals of the same source and reason went unreported since the last report.
	Suppressed int
}

// refusalInterval is how often one source's refusals of one reason are reported; the rest are counted.
const refusalInterval = time.Minute

// refusalSources bounds the sources tracked; beyond it all others share one entry, so a flood from many addresses
// costs bounded memory and at most one more report per interval.
const refusalSources = 4096

// refusalGate lets one report per source and reason through per interval and counts the others into the next
// report. The zero value is ready; it is safe for concurrent use.
type refusalGate struct {
	mu     sync.Mutex
	seen   map[string]*gateEntry
	purged time.Time
}

type gateEntry struct {
	last       time.Time
	suppressed int
}

// admit reports whether a refusal of key at now is to be reported, and how many were held back before it.
func (g *refusalGate) admit(key string, now time.Time) (bool, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen = map[string]*gateEntry{}
	}
	e := g.seen[key]
	if e == nil {
		// One slot stays for the shared overflow entry. The table is swept at most once per interval, so a flood
		// costs one pass per interval, not one per refusal; a swept entry's held-back count is dropped.
		full := len(g.seen) >= refusalSources-1
		if full && now.Sub(g.purged) >= refusalInterval {
			for k, old := range g.seen {
				if now.Sub(old.last) >= refusalInterval {
					delete(g.seen, k)
				}
			}
			g.purged = now
			full = len(g.seen) >= refusalSources-1
		}
		if full {
			key = "*"
			e = g.seen[key]
		}
		if e == nil {
			g.seen[key] = &gateEntry{last: now}
			return true, 0
		}
	}
	if now.Sub(e.last) < refusalInterval {
		e.suppressed++
		return false, 0
	}
	n := e.suppressed
	e.last, e.suppressed = now, 0
	return true, n
}

// refusedConnect logs and reports a refused connect, at most once per source and reason per interval.
func (h *Hub) refusedConnect(ctx context.Context, remote, kind string, err error) {
	ref := refusalOf(err)
	source := remote
	if host, _, err := net.SplitHostPort(remote); err == nil {
		source = host
	}
	ok, suppressed := h.refusals.admit(source+" "+kind+" "+ref.Reason, time.Now())
	if !ok {
		return
	}
	h.log().Warn("extender connect refused", "remote", remote, "credential", kind, "reason", ref.Reason,
		"extender", ref.Extender, "suppressed", suppressed)
	if h.OnRefused != nil {
		h.OnRefused(ctx, RefusedConnect{Remote: remote, Kind: kind, Reason: ref.Reason, ExtenderID: ref.ExtenderID,
			Extender: ref.Extender, Suppressed: suppressed})
	}
}
