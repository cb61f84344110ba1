package configapi

import (
	"context"

	"github.com/gatehouse-dev/gatehouse/internal/connpolicy"
)

// compileTransport fills in what a connection policy says about transport security, the web proxy and routing.
func (s *Service) compileTransport(ctx context.Context, v *configView, c *connection, d *connpolicy.Decision) error {
	return nil
}
