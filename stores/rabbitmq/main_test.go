package rabbitmq

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine outlives the tests: every one this package starts
// must be waited for by its owner's Close or by Consume's return.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
