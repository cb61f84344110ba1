// Package testnet serializes tests that change the machine's network interfaces with tests that a change would
// break. Creating a network namespace and its veth pair makes Chromium abort page loads with
// ERR_NETWORK_CHANGED, and `go test ./...` runs packages in parallel processes, so the guard is a file lock that
// every such test process takes.
package testnet

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// lockPath is shared by every test process on the machine.
var lockPath = filepath.Join(os.TempDir(), "gatehouse-test-network.lock")

// Exclusive blocks until no other test holds the network lock, then holds it until t ends. Tests that add or
// remove interfaces (namespaces, veth pairs) and tests that a change would disturb (a real browser) take it.
func Exclusive(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("open the network test lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("take the network test lock: %v", err)
	}
	t.Cleanup(func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}
