package rabbitmq

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flashsale/flashsale/internal/testenv"
)

// shortDelays keeps retry tests fast.
var shortDelays = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}

// waitTimeout bounds every wait for the broker in these tests.
const waitTimeout = 30 * time.Second

// tWriter sends log lines to t.Log, so that they show only for failing tests or with -v.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testCtx returns a context that ends after d or with the test.
func testCtx(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// testTopology declares an exchange and one queue bound to "order.#", named after a fresh
// testenv.Name(), and deletes them, with the queue's delay and dead-letter queues, when the
// test ends.
func testTopology(tb testing.TB, url string, delays []time.Duration) (Topology, Queue) {
	tb.Helper()
	prefix := testenv.Name() + "."
	q := Queue{Name: prefix + "flashsale.orders.worker", RoutingKeys: []string{"order.#"}, Delays: delays}
	top := Topology{Exchange: prefix + "flashsale.orders", Queues: []Queue{q}}
	if err := Declare(testCtx(tb, waitTimeout), url, top); err != nil {
		tb.Fatalf("Declare: %v", err)
	}
	tb.Cleanup(func() { deleteTopology(tb, url, top) })
	return top, q
}

func deleteTopology(tb testing.TB, url string, top Topology) {
	tb.Helper()
	if err := Delete(testCtx(tb, waitTimeout), url, top); err != nil {
		tb.Error(err)
	}
}

// rawChannel returns a plain amqp091 channel, closed with its connection when the test ends,
// for looking at queues behind the package's back.
func rawChannel(tb testing.TB, url string) *amqp.Channel {
	tb.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		tb.Fatalf("dial %s: %v", url, err)
	}
	tb.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		tb.Fatalf("open channel: %v", err)
	}
	return ch
}

// queueLen returns the number of ready messages in queue.
func queueLen(tb testing.TB, ch *amqp.Channel, queue string) int {
	tb.Helper()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		tb.Fatalf("inspect queue %s: %v", queue, err)
	}
	return q.Messages
}

// getMessage waits for a message in queue and takes it, acked, with a plain Get.
func getMessage(tb testing.TB, ch *amqp.Channel, queue string) amqp.Delivery {
	tb.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			tb.Fatalf("get from %s: %v", queue, err)
		}
		if ok {
			return d
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no message in %s after %v", queue, waitTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newTestPublisher(tb testing.TB, url, exchange string) *Publisher {
	p := NewPublisher(url, exchange, testLogger(tb))
	tb.Cleanup(func() { p.Close() })
	return p
}

// startConsumer runs Consume until the returned stop is called or the test ends; stop
// waits for Consume to return.
func startConsumer(tb testing.TB, cfg ConsumerConfig) (stop func()) {
	tb.Helper()
	if cfg.Log == nil {
		cfg.Log = testLogger(tb)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Consume(ctx, cfg) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("Consume returned %v, want nil", err)
				}
			case <-time.After(waitTimeout):
				tb.Errorf("Consume did not return %v after its ctx ended", waitTimeout)
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}

// receive waits for a value on c.
func receive[T any](tb testing.TB, c <-chan T, what string) T {
	tb.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(waitTimeout):
		tb.Fatalf("no %s after %v", what, waitTimeout)
		var zero T
		return zero
	}
}
