package policy

import (
	"slices"
	"strings"
)

// HostIndex maps a host and port to the API targets whose authorized
// endpoints can match them, so the proxy can find the targets that serve a
// CONNECT authority or Host header without scanning every target. It is
// immutable once built and safe for concurrent use; rebuild it when targets
// change.
type HostIndex struct {
	exact map[HostPort][]string
	// wildcard is keyed by the suffix of "*.suffix" and the port.
	wildcard map[HostPort][]string
}

// NewHostIndex indexes the hosts of many targets, keyed by target id, as
// returned by Rules.Hosts. Hosts must be canonical; a Port of 0 is indexed
// under both 80 and 443.
func NewHostIndex(targets map[string][]HostPort) *HostIndex {
	x := &HostIndex{
		exact:    make(map[HostPort][]string),
		wildcard: make(map[HostPort][]string),
	}
	for id, hosts := range targets {
		for _, hp := range hosts {
			ports := []uint16{hp.Port}
			if hp.Port == 0 {
				ports = []uint16{80, 443}
			}
			for _, port := range ports {
				if suffix, ok := strings.CutPrefix(hp.Host, "*."); ok {
					k := HostPort{Host: suffix, Port: port}
					x.wildcard[k] = append(x.wildcard[k], id)
				} else {
					k := HostPort{Host: hp.Host, Port: port}
					x.exact[k] = append(x.exact[k], id)
				}
			}
		}
	}
	// Sorted ids make lookups deterministic whatever the map order was.
	for _, m := range []map[HostPort][]string{x.exact, x.wildcard} {
		for k, ids := range m {
			slices.Sort(ids)
			m[k] = slices.Compact(ids)
		}
	}
	return x
}

// Lookup returns the sorted ids of the targets that may serve hp, a canonical
// host (as from ParseAuthority) with a non-zero port. Exact names cost one map
// lookup and wildcards one per label of the host. The result may be shared
// with the index and must not be modified.
func (x *HostIndex) Lookup(hp HostPort) []string {
	if x == nil || hp.Port == 0 {
		return nil
	}
	found := x.exact[hp]
	if strings.Contains(hp.Host, ":") || allDigits(hp.Host[strings.LastIndexByte(hp.Host, '.')+1:]) {
		return found // an IP address never matches a wildcard name
	}
	var merged []string
	owned := false
	// "*.example.com" matches one or more labels below example.com, so every
	// proper suffix of the host that starts after a dot is a candidate.
	for rest := hp.Host; ; {
		_, after, ok := strings.Cut(rest, ".")
		if !ok {
			break
		}
		rest = after
		ids := x.wildcard[HostPort{Host: rest, Port: hp.Port}]
		if len(ids) == 0 {
			continue
		}
		if len(found) == 0 && merged == nil {
			merged = ids
			continue
		}
		if merged == nil {
			merged = found
		}
		if !owned {
			merged = slices.Clone(merged)
			owned = true
		}
		merged = append(merged, ids...)
	}
	if merged == nil {
		return found
	}
	if owned {
		slices.Sort(merged)
		merged = slices.Compact(merged)
	}
	return merged
}
