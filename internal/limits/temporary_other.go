//go:build !unix

package limits

import "syscall"

// temporaryErrnos are the accept errors after which the listener still works.
var temporaryErrnos = []error{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ECONNRESET}
