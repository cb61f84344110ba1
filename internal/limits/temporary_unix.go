//go:build unix

package limits

import "syscall"

// temporaryErrnos are the accept errors after which the listener still works: the descriptor tables are full
// (EMFILE, ENFILE) or memory is short, the connection died in the backlog (ECONNABORTED, ECONNRESET, EPROTO),
// a firewall refused it (EPERM), or Linux passed on an error pending on the new socket, which accept(2) says to
// treat like EAGAIN.
var temporaryErrnos = []error{
	syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
	syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EPROTO, syscall.EPERM,
	syscall.EAGAIN, syscall.EINTR, syscall.ETIMEDOUT,
	syscall.ENETDOWN, syscall.ENETUNREACH, syscall.EHOSTDOWN, syscall.EHOSTUNREACH, syscall.ENOPROTOOPT,
	syscall.EOPNOTSUPP,
}
