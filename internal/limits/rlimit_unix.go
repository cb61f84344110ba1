//go:build unix

package limits

import "syscall"

// NoFile returns the process's current (soft) RLIMIT_NOFILE, which the Go runtime has raised to the hard limit
// at start-up; 0 when it cannot be read.
func NoFile() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return uint64(rl.Cur)
}
