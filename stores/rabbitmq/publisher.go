package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Publisher publishes persistent messages to one exchange and reports success only once
// the broker has confirmed them, which is what an outbox relay needs before it marks rows
// sent. It is safe for concurrent use: calls share one connection and channel, send one
// after the other, and wait for their confirms side by side.
//
// It connects lazily, on the first Publish, and after losing its connection it dials again
// on the next Publish; there is no background reconnect loop to stop.
type Publisher struct {
	url      string
	exchange string
	log      *slog.Logger

	// lock is a one-slot lock, ctx-aware unlike a mutex, held while looking at or replacing
	// cur (which includes dialing, bounded by dialTimeout) and in Close.
	lock   chan struct{}
	cur    *pubConn
	closed bool
}

// pubConn is one connection of a Publisher and its confirm-mode channel.
type pubConn struct {
	conn *amqp.Connection
	c    *confirmer
	// blocked is the broker's reason while it blocks this connection's publishers, nil
	// otherwise; watched is closed when watchBlocks, which keeps it, has returned.
	blocked atomic.Pointer[string]
	watched chan struct{}
}

// newPubConn returns conn with its confirmer, watching for the broker blocking it.
func newPubConn(conn *amqp.Connection, c *confirmer) *pubConn {
	pc := &pubConn{conn: conn, c: c, watched: make(chan struct{})}
	go pc.watchBlocks(conn.NotifyBlocked(make(chan amqp.Blocking, 1)))
	return pc
}

// watchBlocks records the broker blocking and unblocking publishers until blocks closes,
// which amqp091 does when the connection closes.
func (p *pubConn) watchBlocks(blocks <-chan amqp.Blocking) {
	defer close(p.watched)
	for b := range blocks {
		if b.Active {
			reason := b.Reason
			p.blocked.Store(&reason)
		} else {
			p.blocked.Store(nil)
		}
	}
}

// blockedErr returns an error wrapping ErrBlocked while the broker blocks p, and nil otherwise.
func (p *pubConn) blockedErr() error {
	if reason := p.blocked.Load(); reason != nil {
		return fmt.Errorf("%w (%s)", ErrBlocked, *reason)
	}
	return nil
}

// broken reports whether p can no longer publish.
func (p *pubConn) broken() bool { return p.conn.IsClosed() || p.c.closed() }

// close closes the connection, giving the broker timeout to answer, and waits for the
// confirmer's dispatcher and the watch of blocks.
func (p *pubConn) close(timeout time.Duration) {
	closeConn(p.conn, timeout)
	<-p.c.done
	<-p.watched
}

// NewPublisher returns a Publisher to exchange, which must already be declared (see
// DeclareTopology). It does not connect yet.
func NewPublisher(url, exchange string, log *slog.Logger) *Publisher {
	return &Publisher{
		url:      url,
		exchange: exchange,
		log:      log.With("exchange", exchange),
		lock:     make(chan struct{}, 1),
	}
}

// Publish sends msgs as persistent, mandatory messages and returns nil only after the broker
// has confirmed every one. Any error means some may not have been enqueued, so publish them
// all again; consumers deduplicate by ID. Errors wrap ErrNacked, ErrUnroutable, ErrClosed,
// ErrBlocked (nothing was sent), a connection error, or ctx's error.
//
// Messages are sent without waiting for each other's confirms, so a batch of hundreds costs
// about one round trip. When ctx ends before all confirms have arrived, Publish abandons
// the connection (failing concurrent calls on it too): confirms that are merely late cannot
// be told from a connection that died silently, which heartbeats take up to 30s to notice.
// The next Publish dials a new one.
func (p *Publisher) Publish(ctx context.Context, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		// Before anything is sent: an ended ctx must not cost the connection below.
		return fmt.Errorf("rabbitmq: publish %d messages to %s: %w", len(msgs), p.exchange, err)
	}
	out := make([]outgoing, len(msgs))
	for i, m := range msgs {
		// Checked here because amqp091 would reject the message only once part of the batch
		// is on its way.
		if err := m.Headers.Validate(); err != nil {
			return fmt.Errorf("rabbitmq: publish message %q: %w", m.ID, err)
		}
		out[i] = outgoing{exchange: p.exchange, key: m.RoutingKey, msg: m.publishing()}
	}
	pc, err := p.connection(ctx)
	if err == nil {
		// A blocked broker reads nothing until its alarm clears: sending now would only hold
		// the caller (a relay, with its rows locked) until its deadline.
		err = pc.blockedErr()
	}
	if err != nil {
		return fmt.Errorf("rabbitmq: publish %d messages to %s: %w", len(msgs), p.exchange, err)
	}
	if err := pc.c.publish(ctx, out); err != nil {
		if ctx.Err() != nil {
			p.discard(pc, ctx.Err())
		}
		return fmt.Errorf("rabbitmq: publish %d messages to %s: %w", len(msgs), p.exchange, err)
	}
	return nil
}

// Check returns nil when the publisher is connected and the broker does not block it,
// connecting it first if it is not connected: the readiness of a process that publishes. The
// connection it makes is the one the next Publish uses.
func (p *Publisher) Check(ctx context.Context) error {
	pc, err := p.connection(ctx)
	if err == nil {
		err = pc.blockedErr()
	}
	if err != nil {
		return fmt.Errorf("rabbitmq: publisher to %s: %w", p.exchange, err)
	}
	return nil
}

// connection returns the current connection, dialing a new one if there is none or it broke.
func (p *Publisher) connection(ctx context.Context) (*pubConn, error) {
	select {
	case p.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-p.lock }()
	if p.closed {
		return nil, ErrClosed
	}
	if p.cur != nil {
		if !p.cur.broken() {
			return p.cur, nil
		}
		p.log.Warn("rabbitmq: publisher lost its connection; dialing again")
		p.cur.close(closeTimeout) // at once if the connection itself is gone
		p.cur = nil
	}
	conn, err := dial(ctx, p.url, "flashsale publisher "+p.exchange)
	if err != nil {
		return nil, err
	}
	c, err := newConfirmer(conn)
	if err != nil {
		closeConn(conn, 0)
		return nil, err
	}
	p.cur = newPubConn(conn, c)
	p.log.Info("rabbitmq: publisher connected")
	return p.cur, nil
}

// discard abandons pc if it is still the current connection. A caller that ran out of time
// is worth a warning; one that was canceled (a relay stopping with its process) is not.
func (p *Publisher) discard(pc *pubConn, why error) {
	p.lock <- struct{}{}
	defer func() { <-p.lock }()
	if p.cur == pc {
		level := slog.LevelWarn
		if errors.Is(why, context.Canceled) {
			level = slog.LevelInfo
		}
		p.log.Log(context.Background(), level, "rabbitmq: publisher gave up waiting for confirms; abandoning its connection", "why", why)
		pc.close(0)
		p.cur = nil
	}
}

// Close closes the connection, failing Publish calls in flight, and waits for the goroutine
// that reads confirms. Publish returns ErrClosed afterwards.
func (p *Publisher) Close() error {
	p.lock <- struct{}{}
	defer func() { <-p.lock }()
	if p.closed {
		return nil
	}
	p.closed = true
	if p.cur != nil {
		p.cur.close(closeTimeout)
		p.cur = nil
	}
	return nil
}
