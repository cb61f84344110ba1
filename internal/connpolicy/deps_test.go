package connpolicy

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the evaluator pure and the gate light: connpolicy imports no Gatehouse package, and the
// gate (the proxy's decision point) does not pull in the management APIs, directories, the CA or sessions, as it
// did when the evaluator lived in configapi.
func TestDependencies(t *testing.T) {
	const module = "github.com/gatehouse-dev/gatehouse/internal/"
	tests := []struct {
		pkg       string
		forbidden []string
	}{
		{".", []string{module}},
		{"../gate", []string{module + "serviceapi", module + "configapi", module + "directory", module + "ca", module + "sessions", module + "recording"}},
	}
	for _, tc := range tests {
		out, err := exec.Command("go", "list", "-deps", tc.pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", tc.pkg, err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 5 {
			t.Fatalf("go list -deps %s listed only %v", tc.pkg, deps)
		}
		for _, dep := range deps {
			if strings.HasSuffix(dep, "/connpolicy") && tc.pkg == "." {
				continue // the package itself
			}
			for _, f := range tc.forbidden {
				if dep == f || strings.HasPrefix(dep, f) && (f == module || strings.HasPrefix(dep, f+"/")) {
					t.Errorf("%s depends on %s", tc.pkg, dep)
				}
			}
		}
	}
}
