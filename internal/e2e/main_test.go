// Package e2e_test drives a real Gatehouse through its proxy listener with real clients (curl, Go net/http,
// Python requests, a kubeconfig-style client, haproxy in front) against real origins on loopback, and checks what
// reached each origin, what the connection manager shows, the trails and the metrics.
package e2e_test

import (
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testpg"
)

func TestMain(m *testing.M) { testpg.Main(m) }
