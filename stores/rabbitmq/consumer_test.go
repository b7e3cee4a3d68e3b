package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testenv"
)

func TestFailingHandlerIsRetriedWithGrowingDelay(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitURL(t)
	top, q := testTopology(t, url, shortDelays)
	p := newTestPublisher(t, url, top.Exchange)

	type call struct {
		d  Delivery
		at time.Time
	}
	calls := make(chan call, 10)
	startConsumer(t, ConsumerConfig{
		URL: url, Queue: q.Name, MaxAttempts: 5, Delays: shortDelays,
		Handler: func(ctx context.Context, d Delivery) error {
			calls <- call{d, time.Now()}
			if d.Attempt < 3 {
				return fmt.Errorf("payment provider unavailable (attempt %d)", d.Attempt)
			}
			return nil
		},
	})
	if err := p.Publish(testCtx(t, waitTimeout), Message{ID: "order-7", RoutingKey: "order.placed", Body: []byte("x"), Priority: 5}); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	var got []call
	for range 3 {
		got = append(got, receive(t, calls, "handler call"))
	}
	for i, c := range got {
		if c.d.Attempt != i+1 || c.d.MessageID != "order-7" || c.d.RoutingKey != "order.placed" ||
			string(c.d.Body) != "x" || c.d.Priority != 5 {
			t.Errorf("call %d: attempt %d, id %q, key %q, body %q, priority %d; want %d, order-7, order.placed, x, 5",
				i, c.d.Attempt, c.d.MessageID, c.d.RoutingKey, c.d.Body, c.d.Priority, i+1)
		}
	}
	for i, delay := range shortDelays {
		if gap := got[i+1].at.Sub(got[i].at); gap < delay {
			t.Errorf("attempt %d came %v after attempt %d, want at least %v", i+2, gap, i+1, delay)
		}
	}
	if !strings.Contains(fmt.Sprint(got[2].d.Headers[HeaderLastError]), "attempt 2") {
		t.Errorf("attempt 3 has %s %q, want the error of attempt 2", HeaderLastError, got[2].d.Headers[HeaderLastError])
	}
	select {
	case c := <-calls:
		t.Errorf("handler called again after success: attempt %d", c.d.Attempt)
	case <-time.After(2 * shortDelays[len(shortDelays)-1]):
	}
}

func TestPoisonMessageEndsInDeadLetterQueue(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitURL(t)
	top, q := testTopology(t, url, shortDelays)
	p := newTestPublisher(t, url, top.Exchange)
	ctx := testCtx(t, waitTimeout)

	const maxAttempts = 3
	var (
		mu       sync.Mutex
		attempts []int
	)
	handled := make(chan string, 100)
	startConsumer(t, ConsumerConfig{
		URL: url, Queue: q.Name, MaxAttempts: maxAttempts, Delays: shortDelays,
		Handler: func(ctx context.Context, d Delivery) error {
			if d.MessageID == "poison" {
				mu.Lock()
				attempts = append(attempts, d.Attempt)
				mu.Unlock()
				return errors.New("cannot parse order")
			}
			handled <- d.MessageID
			return nil
		},
	})

	msgs := []Message{{ID: "poison", RoutingKey: "order.placed", Body: []byte("{")}}
	for i := range 3 {
		msgs = append(msgs, Message{ID: fmt.Sprintf("good-%d", i), RoutingKey: "order.placed"})
	}
	if err := p.Publish(ctx, msgs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	for range 3 {
		receive(t, handled, "good message")
	}

	ch := rawChannel(t, url)
	dead := getMessage(t, ch, DeadQueueName(q.Name))
	if dead.MessageId != "poison" || string(dead.Body) != "{" {
		t.Errorf("dead-letter queue holds %q with body %q, want poison with body {", dead.MessageId, dead.Body)
	}
	if got := fmt.Sprint(dead.Headers[HeaderLastError]); got != "cannot parse order" {
		t.Errorf("dead message %s = %q, want %q", HeaderLastError, got, "cannot parse order")
	}
	if got := attempt(dead.Headers); got != maxAttempts {
		t.Errorf("dead message %s = %d, want %d", HeaderAttempt, got, maxAttempts)
	}
	if got := fmt.Sprint(dead.Headers[HeaderRoutingKey]); got != "order.placed" {
		t.Errorf("dead message %s = %q, want order.placed", HeaderRoutingKey, got)
	}
	mu.Lock()
	if fmt.Sprint(attempts) != "[1 2 3]" {
		t.Errorf("poison message handled at attempts %v, want [1 2 3]", attempts)
	}
	mu.Unlock()

	// The consumer goes on with the next messages.
	if err := p.Publish(ctx, Message{ID: "after", RoutingKey: "order.paid"}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if got := receive(t, handled, "message after the poison one"); got != "after" {
		t.Errorf("handled %q, want after", got)
	}
	for _, name := range []string{q.Name, RetryQueueName(q.Name, shortDelays[0]), RetryQueueName(q.Name, shortDelays[1]), DeadQueueName(q.Name)} {
		if n := queueLen(t, ch, name); n != 0 {
			t.Errorf("%d messages left in %s, want 0", n, name)
		}
	}
}

func TestHandlerPanicCountsAsFailure(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitURL(t)
	top, q := testTopology(t, url, shortDelays)
	p := newTestPublisher(t, url, top.Exchange)

	attempts := make(chan int, 10)
	startConsumer(t, ConsumerConfig{
		URL: url, Queue: q.Name, Delays: shortDelays,
		Handler: func(ctx context.Context, d Delivery) error {
			attempts <- d.Attempt
			if d.Attempt == 1 {
				panic("nil map")
			}
			return nil
		},
	})
	if err := p.Publish(testCtx(t, waitTimeout), Message{ID: "order-1", RoutingKey: "order.placed"}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	for want := 1; want <= 2; want++ {
		if got := receive(t, attempts, "handler call"); got != want {
			t.Errorf("handler called for attempt %d, want %d", got, want)
		}
	}
}

func TestMessageOfStoppedConsumerIsRedelivered(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitURL(t)
	top, q := testTopology(t, url, shortDelays)
	p := newTestPublisher(t, url, top.Exchange)

	started := make(chan Delivery, 1)
	stop := startConsumer(t, ConsumerConfig{
		URL: url, Queue: q.Name, Delays: shortDelays,
		Handler: func(ctx context.Context, d Delivery) error {
			started <- d
			<-ctx.Done() // a long payment call, cut short by the worker shutting down
			return ctx.Err()
		},
	})
	if err := p.Publish(testCtx(t, waitTimeout), Message{ID: "order-1", RoutingKey: "order.placed"}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if d := receive(t, started, "delivery to the first consumer"); d.Redelivered {
		t.Errorf("first delivery has Redelivered true")
	}
	stop()

	got := make(chan Delivery, 1)
	startConsumer(t, ConsumerConfig{
		URL: url, Queue: q.Name, Delays: shortDelays,
		Handler: func(ctx context.Context, d Delivery) error {
			got <- d
			return nil
		},
	})
	d := receive(t, got, "redelivery to the second consumer")
	if d.MessageID != "order-1" || !d.Redelivered || d.Attempt != 1 {
		t.Errorf("second consumer got %q, redelivered %v, attempt %d; want order-1, true, 1",
			d.MessageID, d.Redelivered, d.Attempt)
	}
}

func TestConsumeWaitsForMissingQueue(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitURL(t)
	name := testenv.Name() + ".flashsale.orders"
	q := Queue{Name: name + ".worker", RoutingKeys: []string{"order.#"}, Delays: shortDelays}
	top := Topology{Exchange: name, Queues: []Queue{q}}

	got := make(chan string, 1)
	startConsumer(t, ConsumerConfig{
		URL: url, Queue: q.Name, Delays: shortDelays,
		Handler: func(ctx context.Context, d Delivery) error {
			got <- d.MessageID
			return nil
		},
	})
	time.Sleep(300 * time.Millisecond) // let it fail to consume and back off
	ctx := testCtx(t, waitTimeout)
	if err := Declare(ctx, url, top); err != nil {
		t.Fatalf("Declare: %v", err)
	}
	t.Cleanup(func() { deleteTopology(t, url, top) })
	if err := newTestPublisher(t, url, top.Exchange).Publish(ctx, Message{ID: "order-1", RoutingKey: "order.placed"}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if id := receive(t, got, "message once the queue exists"); id != "order-1" {
		t.Errorf("got %q, want order-1", id)
	}
}

func TestConsumerDeclaresItsTopology(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitURL(t)
	name := testenv.Name() + ".flashsale.orders"
	q := Queue{Name: name + ".worker", RoutingKeys: []string{"order.#"}, Delays: shortDelays}
	top := Topology{Exchange: name, Queues: []Queue{q}}
	t.Cleanup(func() { deleteTopology(t, url, top) })

	got := make(chan string, 1)
	link := NewLink()
	startConsumer(t, ConsumerConfig{
		URL: url, Queue: q.Name, Delays: shortDelays, Topology: &top, Link: link,
		Handler: func(ctx context.Context, d Delivery) error {
			got <- d.MessageID
			return nil
		},
	})
	// Nobody else declares anything: the consumer alone makes its queue exist, and is up
	// once it consumes from it.
	testenv.Eventually(t, waitTimeout, func() error { return link.Check(context.Background()) })
	if n := queueLen(t, rawChannel(t, url), RetryQueueName(q.Name, shortDelays[0])); n != 0 {
		t.Errorf("retry queue holds %d messages, want 0", n)
	}
	if err := newTestPublisher(t, url, top.Exchange).Publish(testCtx(t, waitTimeout), Message{ID: "order-1", RoutingKey: "order.placed"}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if id := receive(t, got, "message through the declared queue"); id != "order-1" {
		t.Errorf("got %q, want order-1", id)
	}
}

func TestStoppingConsumerFinishesTheDeliveriesInHand(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitURL(t)
	top, q := testTopology(t, url, shortDelays)
	p := newTestPublisher(t, url, top.Exchange)

	started := make(chan string, 10)
	release := make(chan struct{})
	var mu sync.Mutex
	var finished []string
	stop := startConsumer(t, ConsumerConfig{
		URL: url, Queue: q.Name, Delays: shortDelays, Prefetch: 1, Concurrency: 1, DrainTimeout: waitTimeout,
		Handler: func(ctx context.Context, d Delivery) error {
			started <- d.MessageID
			select {
			case <-release: // a payment call that outlasts the stop
			case <-ctx.Done():
				return ctx.Err()
			}
			mu.Lock()
			finished = append(finished, d.MessageID)
			mu.Unlock()
			return nil
		},
	})
	ctx := testCtx(t, waitTimeout)
	if err := p.Publish(ctx, Message{ID: "order-1", RoutingKey: "order.placed"}, Message{ID: "order-2", RoutingKey: "order.placed"}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	first := receive(t, started, "the first delivery")
	stopped := make(chan struct{})
	go func() {
		stop()
		close(stopped)
	}()
	time.Sleep(200 * time.Millisecond) // the stop has begun, and waits for the handler
	select {
	case <-stopped:
		t.Fatalf("Consume returned while its handler was still working")
	default:
	}
	close(release)
	<-stopped

	mu.Lock()
	defer mu.Unlock()
	if len(finished) != 1 || finished[0] != first {
		t.Errorf("handlers finished %q, want only the one in hand, %q", finished, first)
	}
	select {
	case id := <-started:
		t.Errorf("a stopping consumer took %q", id)
	default:
	}
	// The one in hand was acked; the other is left in the queue for the next consumer.
	ch := rawChannel(t, url)
	testenv.Eventually(t, waitTimeout, func() error {
		if n := queueLen(t, ch, q.Name); n != 1 {
			return fmt.Errorf("queue holds %d messages, want 1", n)
		}
		return nil
	})
	if d := getMessage(t, ch, q.Name); d.MessageId == first {
		t.Errorf("the message handled during the stop, %q, was delivered again", first)
	}
}

func TestConsumeRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	ok := func(context.Context, Delivery) error { return nil }
	tests := []struct {
		name string
		cfg  ConsumerConfig
	}{
		{"no URL", ConsumerConfig{Queue: "q", Handler: ok}},
		{"no queue", ConsumerConfig{URL: "amqp://x", Handler: ok}},
		{"no handler", ConsumerConfig{URL: "amqp://x", Queue: "q"}},
		{"sub-millisecond delay", ConsumerConfig{URL: "amqp://x", Queue: "q", Handler: ok, Delays: []time.Duration{time.Microsecond}}},
		{"repeated delay", ConsumerConfig{URL: "amqp://x", Queue: "q", Handler: ok, Delays: []time.Duration{time.Second, time.Second}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := Consume(context.Background(), tt.cfg); err == nil {
				t.Errorf("Consume(%+v) = nil, want an error", tt.cfg)
			}
		})
	}
}
