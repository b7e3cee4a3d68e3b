package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testenv"
)

// frames records what an acker sends: "ack<=N" for a multiple ack, "ack N" for a single
// one, "requeue N".
type frames struct {
	mu   sync.Mutex
	sent []string
	err  error // returned by every frame when set
}

func (f *frames) Ack(tag uint64, multiple bool) error {
	if multiple {
		return f.add(fmt.Sprintf("ack<=%d", tag))
	}
	return f.add(fmt.Sprintf("ack %d", tag))
}

func (f *frames) Nack(tag uint64, multiple, requeue bool) error {
	if !requeue {
		return errors.New("nack without requeue")
	}
	if multiple {
		return errors.New("multiple nack")
	}
	return f.add(fmt.Sprintf("requeue %d", tag))
}

func (f *frames) Reject(tag uint64, requeue bool) error { return errors.New("reject is not used") }

func (f *frames) add(frame string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.sent = append(f.sent, frame)
	return nil
}

func (f *frames) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

func TestAckerAcksOnlyRunsWithNothingUnfinishedBefore(t *testing.T) {
	f := &frames{}
	a := newAcker(f, func(err error) { t.Errorf("fail(%v)", err) })
	a.ack(2)
	a.ack(3)
	a.flush()
	if got := f.list(); len(got) != 0 {
		t.Fatalf("with delivery 1 unfinished the acker sent %v; want nothing", got)
	}
	a.ack(1)
	a.ack(5)
	a.flush()
	if got, want := f.list(), []string{"ack<=3"}; !slices.Equal(got, want) {
		t.Fatalf("after 1, 2, 3 and 5 finished: sent %v; want %v (4 is still being handled)", got, want)
	}
}

func TestAckerSendsRequeueOnItsOwn(t *testing.T) {
	f := &frames{}
	a := newAcker(f, func(err error) { t.Errorf("fail(%v)", err) })
	a.ack(1)
	a.ack(2)
	a.ack(4)
	a.requeue(3) // flushes at once
	a.ack(5)
	a.flush()
	want := []string{"ack<=2", "requeue 3", "ack<=4", "ack<=5"}
	if got := f.list(); !slices.Equal(got, want) {
		t.Fatalf("sent %v; want %v: a multiple ack must never cover the requeued delivery", got, want)
	}
}

func TestAckerFlushesAfterDelayOrBatch(t *testing.T) {
	f := &frames{}
	a := newAcker(f, func(err error) { t.Errorf("fail(%v)", err) })
	a.ack(1)
	deadline := time.Now().Add(waitTimeout)
	for len(f.list()) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got, want := f.list(), []string{"ack<=1"}; !slices.Equal(got, want) {
		t.Fatalf("a lone finished delivery: sent %v; want %v once ackDelay passed", got, want)
	}
	for tag := uint64(2); tag < 2+ackBatch; tag++ {
		a.ack(tag)
	}
	// The batch's last ack flushed at once, with no wait for the timer (which may still
	// have fired part way through on a slow machine).
	got := f.list()
	if last, want := got[len(got)-1], fmt.Sprintf("ack<=%d", 1+ackBatch); last != want {
		t.Fatalf("after a full batch: sent %v; want it to end with %v", got, want)
	}
}

func TestAckerStopsAtTheFirstRefusedFrame(t *testing.T) {
	f := &frames{err: errors.New("channel closed")}
	var failures []error
	a := newAcker(f, func(err error) { failures = append(failures, err) })
	a.ack(1)
	a.flush()
	a.ack(2)
	a.flush()
	if len(failures) != 1 {
		t.Fatalf("fail called %d times (%v); want once, for the first refused frame", len(failures), failures)
	}
}

// TestOutOfOrderHandlersLeaveNothingUnacked has handlers finish a few hundred messages in a
// shuffled order on a real broker: every message must be handled once, and once the
// consumer stops none may come back, which they would if an ack had been lost.
func TestOutOfOrderHandlersLeaveNothingUnacked(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitURL(t)
	top, q := testTopology(t, url, shortDelays)
	p := newTestPublisher(t, url, top.Exchange)

	const n = 300
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		all  = make(chan struct{})
	)
	handler := func(ctx context.Context, d Delivery) error {
		time.Sleep(time.Duration(rand.N(3000)) * time.Microsecond) // finish out of order
		mu.Lock()
		defer mu.Unlock()
		seen[d.MessageID]++
		if len(seen) == n {
			select {
			case <-all:
			default:
				close(all)
			}
		}
		return nil
	}
	stop := startConsumer(t, ConsumerConfig{URL: url, Queue: q.Name, Prefetch: 64, Concurrency: 32, Delays: shortDelays, Handler: handler})
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = Message{ID: fmt.Sprintf("order-%d", i), RoutingKey: "order.placed", Body: []byte("x")}
	}
	if err := p.Publish(testCtx(t, waitTimeout), msgs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	receive(t, all, "every message handled")
	stop()

	// Anything left unacked went back to the queue when the consumer's connection closed.
	ch := rawChannel(t, url)
	if left := queueLen(t, ch, q.Name); left != 0 {
		t.Errorf("%d messages back in the queue after every one was handled; want 0 (acks lost)", left)
	}
	mu.Lock()
	defer mu.Unlock()
	for id, k := range seen {
		if k != 1 {
			t.Errorf("message %s handled %d times; want once", id, k)
		}
	}
}
