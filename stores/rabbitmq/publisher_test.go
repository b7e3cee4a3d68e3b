package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flashsale/flashsale/internal/testenv"
)

func TestPublishedMessagesAreAllConsumed(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitURL(t)
	top, q := testTopology(t, url, shortDelays)
	p := newTestPublisher(t, url, top.Exchange)

	const n, batch = 1000, 500
	msgs := make([]Message, n)
	for i := range msgs {
		id := fmt.Sprintf("order-%04d", i)
		msgs[i] = Message{ID: id, RoutingKey: "order.placed", Body: []byte("body of " + id)}
	}
	ctx := testCtx(t, waitTimeout)
	for i := 0; i < n; i += batch {
		if err := p.Publish(ctx, msgs[i:i+batch]...); err != nil {
			t.Fatalf("Publish(messages %d-%d): %v", i, i+batch-1, err)
		}
	}

	var (
		mu   sync.Mutex
		got  = make(map[string]int)
		all  = make(chan struct{})
		once sync.Once
	)
	stop := startConsumer(t, ConsumerConfig{
		URL: url, Queue: q.Name, Prefetch: 50, Concurrency: 4, Delays: shortDelays,
		Handler: func(ctx context.Context, d Delivery) error {
			if want := "body of " + d.MessageID; string(d.Body) != want {
				t.Errorf("message %s: body %q, want %q", d.MessageID, d.Body, want)
			}
			if d.RoutingKey != "order.placed" || d.Attempt != 1 || d.Redelivered {
				t.Errorf("message %s: key %q, attempt %d, redelivered %v; want order.placed, 1, false",
					d.MessageID, d.RoutingKey, d.Attempt, d.Redelivered)
			}
			mu.Lock()
			defer mu.Unlock()
			got[d.MessageID]++
			if len(got) == n {
				once.Do(func() { close(all) })
			}
			return nil
		},
	})
	receive(t, all, "delivery of every message")
	stop()

	mu.Lock()
	defer mu.Unlock()
	for _, m := range msgs {
		if got[m.ID] != 1 {
			t.Errorf("message %s consumed %d times, want 1", m.ID, got[m.ID])
		}
	}
	if len(got) != n {
		t.Errorf("consumed %d distinct messages, want %d", len(got), n)
	}
	if left := queueLen(t, rawChannel(t, url), q.Name); left != 0 {
		t.Errorf("%d messages left in %s, want 0", left, q.Name)
	}
}

func TestPublishedMessageIsPersistent(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitURL(t)
	top, q := testTopology(t, url, shortDelays)
	p := newTestPublisher(t, url, top.Exchange)

	want := Message{ID: "order-1", RoutingKey: "order.placed", Body: []byte(`{"id":1}`), Priority: 3,
		Headers: amqp.Table{"tenant": "acme"}}
	if err := p.Publish(testCtx(t, waitTimeout), want); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	d := getMessage(t, rawChannel(t, url), q.Name)
	if d.DeliveryMode != amqp.Persistent {
		t.Errorf("delivery mode %d, want %d (persistent)", d.DeliveryMode, amqp.Persistent)
	}
	if d.MessageId != want.ID || d.RoutingKey != want.RoutingKey || string(d.Body) != string(want.Body) ||
		d.Priority != want.Priority || d.Headers["tenant"] != "acme" {
		t.Errorf("got id %q key %q body %q priority %d headers %v, want %q %q %q %d tenant=acme",
			d.MessageId, d.RoutingKey, d.Body, d.Priority, d.Headers, want.ID, want.RoutingKey, want.Body, want.Priority)
	}
}

func TestHigherPriorityIsConsumedFirst(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitURL(t)
	top, q := testTopology(t, url, shortDelays)
	p := newTestPublisher(t, url, top.Exchange)

	// Routine orders first, then flash-sale orders, into a queue nobody consumes yet.
	var msgs []Message
	for i := range 5 {
		msgs = append(msgs, Message{ID: fmt.Sprintf("low-%d", i), RoutingKey: "order.placed", Priority: 1})
	}
	for i := range 5 {
		msgs = append(msgs, Message{ID: fmt.Sprintf("high-%d", i), RoutingKey: "order.placed", Priority: 9})
	}
	if err := p.Publish(testCtx(t, waitTimeout), msgs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	ids := make(chan string, len(msgs))
	startConsumer(t, ConsumerConfig{
		URL: url, Queue: q.Name, Prefetch: 1, Delays: shortDelays,
		Handler: func(ctx context.Context, d Delivery) error {
			ids <- d.MessageID
			return nil
		},
	})
	var got []string
	for range msgs {
		got = append(got, receive(t, ids, "message"))
	}
	want := []string{"high-0", "high-1", "high-2", "high-3", "high-4", "low-0", "low-1", "low-2", "low-3", "low-4"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("consumed %v, want %v", got, want)
	}
}

func TestPublishUnroutableFails(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitURL(t)
	top, q := testTopology(t, url, shortDelays)
	p := newTestPublisher(t, url, top.Exchange)
	ctx := testCtx(t, waitTimeout)

	err := p.Publish(ctx,
		Message{ID: "routed", RoutingKey: "order.placed"},
		Message{ID: "lost", RoutingKey: "invoice.created"}, // no queue is bound for invoices
	)
	if !errors.Is(err, ErrUnroutable) {
		t.Fatalf("Publish with an unroutable message: %v, want ErrUnroutable", err)
	}
	// The channel is still good.
	if err := p.Publish(ctx, Message{ID: "next", RoutingKey: "order.paid"}); err != nil {
		t.Fatalf("Publish after an unroutable message: %v", err)
	}
	ch := rawChannel(t, url)
	for _, want := range []string{"routed", "next"} {
		if d := getMessage(t, ch, q.Name); d.MessageId != want {
			t.Errorf("got message %q, want %q", d.MessageId, want)
		}
	}
}

func TestPublisherRecoversFromChannelError(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitURL(t)
	name := testenv.Name() + ".flashsale.orders"
	p := newTestPublisher(t, url, name)
	ctx := testCtx(t, waitTimeout)

	// The exchange does not exist yet: the broker closes the channel.
	if err := p.Publish(ctx, Message{ID: "early", RoutingKey: "order.placed"}); err == nil {
		t.Fatal("Publish to a missing exchange succeeded")
	}
	q := Queue{Name: name + ".worker", RoutingKeys: []string{"order.#"}, Delays: shortDelays}
	top := Topology{Exchange: name, Queues: []Queue{q}}
	if err := Declare(ctx, url, top); err != nil {
		t.Fatalf("Declare: %v", err)
	}
	t.Cleanup(func() { deleteTopology(t, url, top) })
	if err := p.Publish(ctx, Message{ID: "late", RoutingKey: "order.placed"}); err != nil {
		t.Fatalf("Publish once the exchange exists: %v", err)
	}
	if d := getMessage(t, rawChannel(t, url), q.Name); d.MessageId != "late" {
		t.Errorf("got message %q, want late", d.MessageId)
	}
}

func TestPublishConcurrently(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitURL(t)
	top, q := testTopology(t, url, shortDelays)
	p := newTestPublisher(t, url, top.Exchange)
	ctx := testCtx(t, waitTimeout)

	const callers, each = 8, 50
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			msgs := make([]Message, each)
			for i := range msgs {
				msgs[i] = Message{ID: fmt.Sprintf("c%d-%d", c, i), RoutingKey: "order.placed"}
			}
			if err := p.Publish(ctx, msgs...); err != nil {
				t.Errorf("caller %d: Publish: %v", c, err)
			}
		})
	}
	wg.Wait()
	if got := queueLen(t, rawChannel(t, url), q.Name); got != callers*each {
		t.Errorf("%d messages in %s, want %d", got, q.Name, callers*each)
	}
}

func TestPublishAfterClose(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitURL(t)
	top, _ := testTopology(t, url, shortDelays)
	p := NewPublisher(url, top.Exchange, testLogger(t))
	ctx := testCtx(t, waitTimeout)
	if err := p.Publish(ctx, Message{ID: "1", RoutingKey: "order.placed"}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Publish(ctx, Message{ID: "2", RoutingKey: "order.placed"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
}
