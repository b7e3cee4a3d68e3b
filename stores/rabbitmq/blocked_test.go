package rabbitmq

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flashsale/flashsale/internal/testenv"
)

// watchBlocks follows the broker's connection.blocked and connection.unblocked, and returns
// when amqp091 closes the notifications with the connection.
func TestWatchBlocksFollowsTheBroker(t *testing.T) {
	t.Parallel()
	pc := &pubConn{watched: make(chan struct{})}
	blocks := make(chan amqp.Blocking)
	go pc.watchBlocks(blocks)

	blocks <- amqp.Blocking{Active: true, Reason: "low on memory"}
	blocks <- amqp.Blocking{Active: true, Reason: "low on memory"} // received: the first one is recorded
	if err := pc.blockedErr(); !errors.Is(err, ErrBlocked) || !strings.Contains(err.Error(), "low on memory") {
		t.Errorf("blocked: %v; want ErrBlocked with the broker's reason", err)
	}
	blocks <- amqp.Blocking{Active: false}
	blocks <- amqp.Blocking{Active: false}
	if err := pc.blockedErr(); err != nil {
		t.Errorf("unblocked: %v; want nil", err)
	}
	close(blocks)
	select {
	case <-pc.watched:
	case <-time.After(waitTimeout):
		t.Fatal("watchBlocks did not return when its notifications closed")
	}
}

// While the broker blocks its connection, Publish sends nothing and fails at once with
// ErrBlocked instead of waiting for confirms until its deadline, and Check says so; once
// unblocked, both work again on the same connection.
func TestPublisherRefusesAtOnceWhileBlocked(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitURL(t)
	top, q := testTopology(t, url, shortDelays)
	p := newTestPublisher(t, url, top.Exchange)
	ch := rawChannel(t, url)
	msg := Message{ID: "m1", RoutingKey: "order.placed"}
	if err := p.Publish(testCtx(t, waitTimeout), msg); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	cur := p.cur
	reason := "low on disk"
	cur.blocked.Store(&reason) // as watchBlocks does on connection.blocked

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// ErrBlocked, not the deadline's error: it did not wait for confirms that cannot come.
	if err := p.Publish(ctx, Message{ID: "m2", RoutingKey: "order.placed"}); !errors.Is(err, ErrBlocked) {
		t.Errorf("Publish while blocked: %v; want ErrBlocked", err)
	}
	if err := p.Check(ctx); !errors.Is(err, ErrBlocked) {
		t.Errorf("Check while blocked: %v; want ErrBlocked", err)
	}
	if n := queueLen(t, ch, q.Name); n != 1 {
		t.Errorf("queue holds %d messages; want 1, nothing sent while blocked", n)
	}

	cur.blocked.Store(nil)
	if err := p.Check(ctx); err != nil {
		t.Errorf("Check once unblocked: %v", err)
	}
	if err := p.Publish(ctx, Message{ID: "m3", RoutingKey: "order.placed"}); err != nil {
		t.Errorf("Publish once unblocked: %v", err)
	}
	if p.cur != cur {
		t.Error("the publisher dialed again; a block should not cost the connection")
	}
}
