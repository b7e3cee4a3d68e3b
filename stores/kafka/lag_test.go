package kafka_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/kafka"
)

// A group that has committed nothing lags by every record; once it has handled them all, by
// none.
func TestLagCountsWhatTheGroupHasNotCommitted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(3)
	const n = 30
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "key-%d", i), Value: []byte("v")}
	}
	e.send(topic, msgs...)
	group := testenv.Name()

	lagSum := func() int64 {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		lag, err := kafka.Lag(ctx, e.brokers, topic, group)
		if err != nil {
			t.Fatalf("Lag: %v", err)
		}
		if got, want := len(lag), 3; got != want {
			t.Fatalf("Lag gave %d partitions, want %d", got, want)
		}
		var total int64
		for _, l := range lag {
			total += l
		}
		return total
	}
	if got, want := lagSum(), int64(n); got != want {
		t.Fatalf("lag before consuming = %d, want %d", got, want)
	}

	var handled atomic.Int64
	e.consume(topic, group, func(context.Context, kafka.Message) error {
		handled.Add(1)
		return nil
	})
	deadline := time.Now().Add(30 * time.Second)
	for lagSum() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("lag after handling %d of %d records = %d, want 0", handled.Load(), n, lagSum())
		}
		time.Sleep(100 * time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := kafka.Lag(ctx, e.brokers, testenv.Name(), group); err == nil {
		t.Errorf("Lag of a topic that does not exist answered no error")
	}
}
