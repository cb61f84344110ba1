package proxy

import (
	"context"
	"fmt"
	"net"
)

// ExtenderDialer opens connections into a network segment through the extenders serving a routing prefix.
type ExtenderDialer interface {
	Dial(ctx context.Context, prefix, addr string) (net.Conn, error)
}

// extenderFailure is an extender dial error that carries a client-safe code and message (the message names the
// routing prefix, so an operator sees which extender is missing).
type extenderFailure interface {
	error
	ExtenderFailure() (code, msg string)
}

// noExtenders is the failure when the proxy has no extender dialer at all.
type noExtenders struct{ prefix string }

func (e *noExtenders) Error() string {
	return fmt.Sprintf("no extender connected for routing prefix %q", e.prefix)
}
func (e *noExtenders) ExtenderFailure() (string, string) {
	return "EXTENDER_UNAVAILABLE", e.Error()
}

func (s *Server) dialExtender(ctx context.Context, prefix, addr string) (net.Conn, error) {
	if s.Extenders == nil {
		return nil, &noExtenders{prefix: prefix}
	}
	return s.Extenders.Dial(ctx, prefix, addr)
}
