package connpolicy

import "testing"

// clusterCounts stands for the cluster's shared count, which other nodes add to as well.
type clusterCounts map[string]int

func (c clusterCounts) Add(scope, key string)       { c[scope+"|"+key]++ }
func (c clusterCounts) Total(scope, key string) int { return c[scope+"|"+key] }

// TestRateCounterShared pins that with a shared count the limit holds for the cluster: connections other nodes
// admitted count here, and what this node admits is added for them.
func TestRateCounterShared(t *testing.T) {
	shared := clusterCounts{}
	r := NewRateCounter(nil)
	r.Shared = shared
	shared[scopeConnections+"|p1"] = 2 // admitted by other nodes
	for i := range 2 {
		if !r.allow("p1", 4) {
			t.Fatalf("connection %d refused under the cluster's limit", i+1)
		}
	}
	if r.allow("p1", 4) {
		t.Error("a fifth connection in the cluster was admitted under a limit of 4")
	}
	if shared[scopeConnections+"|p1"] != 4 {
		t.Errorf("shared count %d, want 4: admitted connections must be shared", shared[scopeConnections+"|p1"])
	}
	if !r.allow("p2", 1) {
		t.Error("another policy's limit was charged")
	}
}
