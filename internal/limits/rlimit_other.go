//go:build !unix

package limits

// NoFile returns 0: the platform has no RLIMIT_NOFILE, so the defaults assume a conservative table.
func NoFile() uint64 { return 0 }
