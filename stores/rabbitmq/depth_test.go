package rabbitmq

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testenv"
)

// A message that fails every attempt is reported as retried, then as dead, once each copy
// is confirmed, and QueueDepths finds it in the dead-letter queue; a queue that does not
// exist is left out of the depths.
func TestFailuresAreReportedAndDepthsRead(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitURL(t)
	top, q := testTopology(t, url, shortDelays)
	p := newTestPublisher(t, url, top.Exchange)
	ctx := testCtx(t, waitTimeout)

	const maxAttempts = 3
	var (
		mu        sync.Mutex
		forwarded []bool
	)
	stop := startConsumer(t, ConsumerConfig{
		URL: url, Queue: q.Name, MaxAttempts: maxAttempts, Delays: shortDelays,
		Handler: func(context.Context, Delivery) error { return errors.New("always fails") },
		Forwarded: func(dead bool) {
			mu.Lock()
			forwarded = append(forwarded, dead)
			mu.Unlock()
		},
	})
	if err := p.Publish(ctx, Message{ID: "doomed", RoutingKey: "order.placed"}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	want := []bool{false, false, true} // two retries, then the dead-letter queue
	for deadline := time.Now().Add(waitTimeout); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := len(forwarded)
		mu.Unlock()
		if n >= len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("forwarded %d times in %v, want %d", n, waitTimeout, len(want))
		}
	}
	stop()
	mu.Lock()
	if got := forwarded; len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("Forwarded calls = %v, want %v", got, want)
	}
	mu.Unlock()

	missing := testenv.Name()
	depths, err := QueueDepths(ctx, url, q.Name, DeadQueueName(q.Name), missing)
	if err != nil {
		t.Fatalf("QueueDepths: %v", err)
	}
	if got := depths[DeadQueueName(q.Name)]; got != 1 {
		t.Errorf("dead-letter queue depth = %d, want 1", got)
	}
	if got, ok := depths[q.Name]; !ok || got != 0 {
		t.Errorf("main queue depth = %d (present %v), want 0", got, ok)
	}
	if _, ok := depths[missing]; ok {
		t.Errorf("QueueDepths answered for a queue that does not exist")
	}
}
