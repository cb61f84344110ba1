package extender_test

import (
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testpg"
)

func TestMain(m *testing.M) { testpg.Main(m) }
