package limits

import "sync/atomic"

// Budget is a byte budget shared by many users: each reserves what it is about to hold and returns it when done.
// A Max of 0 or less is unlimited. The zero value is unlimited; set Max before first use.
type Budget struct {
	Max  int64
	used atomic.Int64
}

// Reserve takes n bytes and reports whether they were there; on false nothing was taken.
func (b *Budget) Reserve(n int64) bool {
	if b == nil || b.Max <= 0 {
		return true
	}
	for {
		u := b.used.Load()
		if u+n > b.Max {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// Return gives back n bytes taken with Reserve.
func (b *Budget) Return(n int64) {
	if b == nil || b.Max <= 0 {
		return
	}
	b.used.Add(-n)
}

// Used is the number of bytes reserved now.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}
