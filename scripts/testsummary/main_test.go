package main

import (
	"strings"
	"testing"
)

// stream is a trimmed `go test -json` run covering each way a package ends.
const stream = `{"Action":"start","Package":"m/ok"}
{"Action":"run","Package":"m/ok","Test":"TestA"}
{"Action":"output","Package":"m/ok","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"m/ok","Test":"TestA","Output":"    a_test.go:3: quiet\n"}
{"Action":"pass","Package":"m/ok","Test":"TestA"}
{"Action":"skip","Package":"m/ok","Test":"TestS"}
{"Action":"output","Package":"m/ok","Output":"PASS\n"}
{"Action":"output","Package":"m/ok","Output":"ok  \tm/ok\t0.01s\n"}
{"Action":"pass","Package":"m/ok"}
{"Action":"output","Package":"m/bad","Test":"TestBad","Output":"    a_test.go:4: boom\n"}
{"Action":"output","Package":"m/bad","Test":"TestBad","Output":"--- FAIL: TestBad (0.00s)\n"}
{"Action":"fail","Package":"m/bad","Test":"TestBad"}
{"Action":"output","Package":"m/bad","Output":"FAIL\tm/bad\t0.01s\n"}
{"Action":"fail","Package":"m/bad"}
{"Action":"output","Package":"m/hang","Test":"TestHang","Output":"=== RUN   TestHang\n"}
{"Action":"output","Package":"m/hang","Test":"TestHang","Output":"panic: test timed out after 1s\n"}
{"Action":"fail","Package":"m/hang"}
{"ImportPath":"m/broken [m/broken.test]","Action":"build-output","Output":"./a_test.go:3:28: undefined: x\n"}
{"ImportPath":"m/broken [m/broken.test]","Action":"build-fail"}
{"Action":"output","Package":"m/broken","Output":"FAIL\tm/broken [build failed]\n"}
{"Action":"fail","Package":"m/broken","FailedBuild":"m/broken [m/broken.test]"}
go: warning: plain text passes through
`

func TestSummary(t *testing.T) {
	var out strings.Builder
	s := &summary{out: &out, pkgs: map[string]*pkgState{}}
	if err := s.read(strings.NewReader(stream)); err != nil {
		t.Fatal(err)
	}
	if s.report() {
		t.Errorf("report() = true for a run with failures")
	}
	got := out.String()
	for _, want := range []string{
		"ok  \tm/ok\t0.01s\n",
		"    a_test.go:4: boom\n--- FAIL: TestBad (0.00s)\nFAIL\tm/bad\t0.01s\n",
		"panic: test timed out after 1s\n",
		"./a_test.go:3:28: undefined: x\n",
		"go: warning: plain text passes through\n",
		"  FAIL m/hang TestHang (did not finish)\n",
		"  FAIL m/broken (build failed)\n",
		"\n1 passed, 2 failed, 1 skipped; 1 package(s) failed\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q; got:\n%s", want, got)
		}
	}
	for _, noise := range []string{"quiet", "=== RUN"} {
		if strings.Contains(got, noise) {
			t.Errorf("output shows %q from a test that did not fail; got:\n%s", noise, got)
		}
	}
}

func TestSummaryEmpty(t *testing.T) {
	var out strings.Builder
	s := &summary{out: &out, pkgs: map[string]*pkgState{}}
	if s.report() {
		t.Errorf("report() = true with no test results")
	}
}
