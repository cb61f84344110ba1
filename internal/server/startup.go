package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
)

// StartError is a start-up failure an operator fixes by changing one setting: it names the flag (without the
// dashes), the value at fault when it is not secret, and the cause.
type StartError struct {
	Flag  string
	Value string
	Err   error
}

// Error is one line: causes that span lines (a PostgreSQL driver lists every address it tried) are joined with "; ".
func (e *StartError) Error() string {
	msg := fmt.Sprintf("--%s: %v", e.Flag, e.Err)
	if e.Value != "" {
		msg = fmt.Sprintf("--%s %s: %v", e.Flag, e.Value, e.Err)
	}
	var parts []string
	for _, line := range strings.Split(msg, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			parts = append(parts, strings.TrimSuffix(line, ":"))
		}
	}
	return strings.Join(parts, "; ")
}

func (e *StartError) Unwrap() error { return e.Err }

// listen binds addr for the listener that flag configures. The cause is reduced to what an operator acts on
// ("address already in use"), with a hint for the usual reason.
func listen(flag, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	cause := err
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		cause = op.Err
		var se *os.SyscallError
		if errors.As(op.Err, &se) {
			cause = se.Err
		}
	}
	switch {
	case errors.Is(cause, syscall.EADDRINUSE):
		cause = fmt.Errorf("%w (another process, perhaps another gatehouse, is listening there)", cause)
	case errors.Is(cause, syscall.EACCES):
		cause = fmt.Errorf("%w (ports below 1024 need CAP_NET_BIND_SERVICE)", cause)
	}
	return nil, &StartError{Flag: flag, Value: addr, Err: cause}
}

// checkDataDir creates the data dir if needed and proves it writable, so that an unusable one is reported as such
// rather than as whichever file happens to be written first.
func checkDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("not writable: %w", err)
	}
	f.Close()
	return os.Remove(f.Name())
}
