package testnet

import (
	"errors"
	"os"
	"syscall"
	"testing"
)

// tryLock reports whether the lock is free right now, from a file description of its own (as another test
// process would have).
func tryLock(t *testing.T) bool {
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return true
}

func TestExclusiveHoldsUntilTheTestEnds(t *testing.T) {
	t.Run("holder", func(t *testing.T) {
		Exclusive(t)
		if tryLock(t) {
			t.Fatal("the lock was free while a test held it")
		}
	})
	if !tryLock(t) {
		t.Fatal("the lock stayed taken after the holding test ended")
	}
}
