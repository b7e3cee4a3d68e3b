package kafka_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the tests: every producer, consumer and
// embedded broker must have stopped all of its goroutines once closed.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
