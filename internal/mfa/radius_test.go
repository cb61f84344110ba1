package mfa_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/mfa"
	"github.com/gatehouse-dev/gatehouse/internal/mfa/radiustest"
)

// TestRADIUSAgainstFreeRADIUS sends real Access-Requests to Debian's FreeRADIUS, which requires a
// Message-Authenticator of every request.
func TestRADIUSAgainstFreeRADIUS(t *testing.T) {
	srv := radiustest.Start(t, "s3cret-shared", map[string]string{"bob": "424242"})
	good := &mfa.RADIUS{Address: srv.Address, Port: srv.Port, Secret: srv.Secret, Timeout: 3 * time.Second}
	ctx := context.Background()
	if err := good.Check(ctx, "bob", "424242"); err != nil {
		t.Fatalf("right code: %v", err)
	}
	if err := good.Check(ctx, "bob", "000000"); !errors.Is(err, mfa.ErrRejected) {
		t.Fatalf("wrong code: %v, want ErrRejected", err)
	}
	if err := good.Check(ctx, "mallory", "424242"); !errors.Is(err, mfa.ErrRejected) {
		t.Fatalf("unknown user: %v, want ErrRejected", err)
	}
	// A wrong shared secret makes the server drop the request (its Message-Authenticator does not verify): no
	// answer, which is an outage, never an accept.
	bad := *good
	bad.Secret = "not-the-secret"
	bad.Timeout = 2 * time.Second
	if err := bad.Check(ctx, "bob", "424242"); !errors.Is(err, mfa.ErrUnavailable) {
		t.Fatalf("wrong shared secret: %v, want ErrUnavailable", err)
	}
	none := &mfa.RADIUS{Address: srv.Address, Port: srv.Port, Timeout: time.Second}
	if err := none.Check(ctx, "bob", "424242"); !errors.Is(err, mfa.ErrUnavailable) {
		t.Fatalf("no shared secret: %v, want ErrUnavailable", err)
	}
}
