package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestHostIndexLookup(t *testing.T) {
	x := NewHostIndex(map[string][]HostPort{
		"t1": {{"api.example.com", 443}, {"api.example.com", 80}},
		"t2": {{"api.example.com", 443}, {"*.example.com", 443}},
		"t3": {{"*.svc.example.com", 443}},
		"t4": {{"10.0.0.1", 8080}, {"::1", 443}},
		"t5": {{"plain.example.com", 0}},
		"t6": {{"a.svc.example.com", 443}, {"*.svc.example.com", 443}},
	})
	tests := []struct {
		hp   HostPort
		want []string
	}{
		{HostPort{"api.example.com", 443}, []string{"t1", "t2"}},
		{HostPort{"api.example.com", 80}, []string{"t1"}},
		{HostPort{"api.example.com", 8443}, nil},
		{HostPort{"other.example.com", 443}, []string{"t2"}},
		{HostPort{"example.com", 443}, nil},
		{HostPort{"b.svc.example.com", 443}, []string{"t2", "t3", "t6"}},
		{HostPort{"a.svc.example.com", 443}, []string{"t2", "t3", "t6"}},
		{HostPort{"x.y.svc.example.com", 443}, []string{"t2", "t3", "t6"}},
		{HostPort{"svc.example.com", 443}, []string{"t2"}},
		{HostPort{"10.0.0.1", 8080}, []string{"t4"}},
		{HostPort{"::1", 443}, []string{"t4"}},
		{HostPort{"plain.example.com", 80}, []string{"t5"}},
		{HostPort{"plain.example.com", 443}, []string{"t2", "t5"}},
		{HostPort{"plain.example.com", 0}, nil},
		{HostPort{"unknown.test", 443}, nil},
		{HostPort{"", 443}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.hp.String(), func(t *testing.T) {
			got := x.Lookup(tt.hp)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Lookup(%v) mismatch (-want +got):\n%s", tt.hp, diff)
			}
		})
	}
	var nilIndex *HostIndex
	if got := nilIndex.Lookup(HostPort{"api.example.com", 443}); got != nil {
		t.Errorf("nil index Lookup = %v, want nil", got)
	}
}

// TestHostIndexFromRules checks the path the proxy uses: Rules.Hosts feeds
// the index and a CONNECT authority is looked up after ParseAuthority.
func TestHostIndexFromRules(t *testing.T) {
	r, err := CompileRules([]Endpoint{ep("*.K8S.example.com", anyOf, anyOf, []string{"/**"})}, nil)
	if err != nil {
		t.Fatal(err)
	}
	x := NewHostIndex(map[string][]HostPort{"k8s": r.Hosts()})
	hp, err := ParseAuthority("API.k8s.example.com.:443")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"k8s"}, x.Lookup(hp)); diff != "" {
		t.Errorf("Lookup mismatch (-want +got):\n%s", diff)
	}
}
