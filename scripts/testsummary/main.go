// Command testsummary reads `go test -json` output on stdin and prints what a
// person or a CI log needs from it: one result line per package as plain
// `go test` prints it, the output of every failed test, and a closing line
//
//	N passed, N failed, N skipped
//
// counting tests and subtests alike. It exits 1 if any test or package failed,
// including packages that failed to build or crashed outside a test, and if
// stdin held no test results at all, since that means go test never ran.
//
// Usage:
//
//	go test -json ./... | go run ./scripts/testsummary
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
)

// event is one line of `go test -json` output; see `go doc test2json`.
type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	ImportPath  string // of build-output and build-fail events
	FailedBuild string // on a package's fail event: the package whose build failed
}

// pkgState collects a package's output until we know whether to show it.
type pkgState struct {
	output  []string            // package-level lines other than the result line
	results []string            // "ok", "FAIL" and "?" result lines
	running map[string][]string // output of tests that have not finished
}

// summary accumulates counts and failures across the whole run.
type summary struct {
	out                     io.Writer
	pkgs                    map[string]*pkgState
	passed, failed, skipped int
	failedTests             []string // "pkg TestName"
	failedPkgs              []string // "pkg (reason)" for failures no test explains
	sawPackage              bool
}

func main() {
	s := &summary{out: os.Stdout, pkgs: map[string]*pkgState{}}
	if err := s.read(os.Stdin); err != nil {
		fmt.Fprintf(os.Stderr, "testsummary: %v\n", err)
		os.Exit(2)
	}
	if !s.report() {
		os.Exit(1)
	}
}

// read consumes the event stream, printing as packages and tests finish so a
// long run shows progress.
func (s *summary) read(r io.Reader) error {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			s.line(line)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read test output: %w", err)
		}
	}
}

func (s *summary) line(line string) {
	var e event
	if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &e) != nil {
		// Not an event: go test writes some errors as plain text.
		fmt.Fprint(s.out, line)
		return
	}
	switch e.Action {
	case "build-output":
		fmt.Fprint(s.out, e.Output)
		return
	case "build-fail":
		return // reported again by the package's own fail event
	}
	if e.Package == "" {
		return
	}
	p := s.pkgs[e.Package]
	if p == nil {
		p = &pkgState{running: map[string][]string{}}
		s.pkgs[e.Package] = p
	}
	if e.Test != "" {
		s.testEvent(e.Package, p, e)
		return
	}
	switch e.Action {
	case "output":
		if isResultLine(e.Output) {
			p.results = append(p.results, e.Output)
		} else if e.Output != "PASS\n" && e.Output != "FAIL\n" {
			p.output = append(p.output, e.Output)
		}
	case "pass", "skip":
		s.sawPackage = true
		s.print(p.results)
		delete(s.pkgs, e.Package)
	case "fail":
		s.sawPackage = true
		s.packageFailed(e.Package, p, e.FailedBuild != "")
		delete(s.pkgs, e.Package)
	}
}

func (s *summary) testEvent(pkg string, p *pkgState, e event) {
	switch e.Action {
	case "output":
		if !isProgressLine(e.Output) {
			p.running[e.Test] = append(p.running[e.Test], e.Output)
		}
	case "pass":
		s.passed++
		delete(p.running, e.Test)
	case "skip":
		s.skipped++
		delete(p.running, e.Test)
	case "fail":
		s.failed++
		s.failedTests = append(s.failedTests, pkg+" "+e.Test)
		s.print(p.running[e.Test])
		delete(p.running, e.Test)
	}
}

// packageFailed shows why a package failed. Tests still running when it
// failed were cut short by a panic, a timeout or os.Exit: their output holds
// the cause, and they count as failed.
func (s *summary) packageFailed(pkg string, p *pkgState, buildFailed bool) {
	explained := false
	for _, name := range slices.Sorted(maps.Keys(p.running)) {
		s.failed++
		s.failedTests = append(s.failedTests, pkg+" "+name+" (did not finish)")
		s.print(p.running[name])
		explained = true
	}
	s.print(p.output)
	if len(p.results) == 0 {
		p.results = []string{"FAIL\t" + pkg + "\n"}
	}
	s.print(p.results)
	switch {
	case buildFailed:
		s.failedPkgs = append(s.failedPkgs, pkg+" (build failed)")
	case !explained && !s.hasFailedTest(pkg):
		s.failedPkgs = append(s.failedPkgs, pkg+" (failed outside any test)")
	}
}

func (s *summary) hasFailedTest(pkg string) bool {
	for _, t := range s.failedTests {
		if strings.HasPrefix(t, pkg+" ") {
			return true
		}
	}
	return false
}

// report prints the closing summary and says whether the run succeeded.
func (s *summary) report() bool {
	// Packages that never reported an end: the stream was cut off.
	for _, pkg := range slices.Sorted(maps.Keys(s.pkgs)) {
		s.packageFailed(pkg, s.pkgs[pkg], false)
	}
	fmt.Fprintln(s.out)
	if len(s.failedTests) > 0 || len(s.failedPkgs) > 0 {
		fmt.Fprintln(s.out, "Failures:")
		for _, t := range s.failedTests {
			fmt.Fprintf(s.out, "  FAIL %s\n", t)
		}
		for _, p := range s.failedPkgs {
			fmt.Fprintf(s.out, "  FAIL %s\n", p)
		}
	}
	closing := fmt.Sprintf("%d passed, %d failed, %d skipped", s.passed, s.failed, s.skipped)
	if n := len(s.failedPkgs); n > 0 {
		closing += fmt.Sprintf("; %d package(s) failed", n)
	}
	if !s.sawPackage {
		closing += "; no test results (did go test run?)"
	}
	fmt.Fprintln(s.out, closing)
	return s.sawPackage && s.failed == 0 && len(s.failedPkgs) == 0
}

func (s *summary) print(lines []string) {
	for _, l := range lines {
		fmt.Fprint(s.out, l)
	}
}

// isResultLine reports whether l is a package result line of plain go test.
func isResultLine(l string) bool {
	return strings.HasPrefix(l, "ok  \t") || strings.HasPrefix(l, "FAIL\t") || strings.HasPrefix(l, "?   \t")
}

// isProgressLine reports whether l only marks a test starting, pausing or
// resuming: noise once the test has failed and its own lines are shown.
func isProgressLine(l string) bool {
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}
