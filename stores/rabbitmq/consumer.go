package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

const (
	// defaultPrefetch is how many unacked messages the broker hands a consumer when its
	// config says nothing: enough to hide the round trip between an ack and the next
	// delivery, few enough that a crashed consumer holds up little.
	defaultPrefetch = 10
	// backoffMin and backoffMax bound the wait between a consumer's reconnects, which doubles
	// while the broker stays unreachable.
	backoffMin = 100 * time.Millisecond
	backoffMax = 30 * time.Second
	// forwardTimeout bounds forwarding a failed message to a delay or dead-letter queue. It
	// does not end with the consumer's context, so that a handler's failure just before a
	// shutdown is still counted instead of the message being handled again from scratch.
	forwardTimeout = 10 * time.Second
)

// ConsumerConfig configures Consume.
type ConsumerConfig struct {
	// URL is the broker's AMQP URL.
	URL string
	// Queue is the main queue to consume, declared by DeclareTopology.
	Queue string
	// Topology, when set, is declared (DeclareTopology) on every connection before
	// consuming, so that a consumer started before any other process, or reconnecting to a
	// broker that lost its queues, needs nobody else to declare them. It must include Queue.
	Topology *Topology
	// Prefetch caps the messages the broker hands over before they are acked; zero means 10.
	// Keep it at least Concurrency, or some handlers sit idle.
	Prefetch int
	// Concurrency is how many handlers run at once; zero means 1, which handles messages in
	// the order the broker delivers them: highest priority first, then oldest first.
	Concurrency int
	// MaxAttempts is how many times a message is handled before it is parked in the
	// dead-letter queue; zero means DefaultMaxAttempts.
	MaxAttempts int
	// Delays are the queue's retry delays, as given to DeclareTopology; nil means
	// DefaultDelays. An empty, non-nil list retries at once through the main queue.
	Delays []time.Duration
	// Handler handles one message. Returning nil acks it (within a few milliseconds: acks go
	// in batches, see acker); an error (or a panic) schedules another attempt. ctx is
	// Consume's: when it ends the handler should return, and the message is requeued for
	// another consumer unless the handler returned nil. Messages can arrive more than once,
	// so Handler deduplicates by Delivery.MessageID.
	Handler func(ctx context.Context, d Delivery) error
	// Log receives the consumer's logs; nil means slog.Default().
	Log *slog.Logger
	// Link, if set, is kept up while the consumer is consuming and down while it is not, for
	// the worker's readiness.
	Link *Link
	// Forwarded, if set, is told of each failed message once its copy is confirmed in a
	// delay queue (dead false: it will be retried) or in the dead-letter queue (dead true),
	// for the worker's metrics.
	Forwarded func(dead bool)
	// DrainTimeout is how long the handlers in hand when ctx ends may go on: Consume stops
	// taking deliveries at once, lets those handlers finish with a context that ends this
	// much later, and acks them before it returns, so that a worker stopped for a rollout
	// hands nothing half done to the next one. Zero ends the handlers' context with ctx.
	DrainTimeout time.Duration
}

// consumer is one Consume call.
type consumer struct {
	cfg    ConsumerConfig
	delays []time.Duration
	log    *slog.Logger
}

// errDeliveriesClosed ends a session whose delivery channel amqp091 closed.
var errDeliveriesClosed = errors.New("delivery channel closed")

// Consume consumes cfg.Queue with manual acks until ctx ends, then returns nil once its
// handlers have returned. It returns an error at once only for an invalid cfg: it
// reconnects with backoff after losing its connection, and waits for a missing queue to
// be declared.
//
// A message whose handler fails is copied, with HeaderAttempt incremented, to the delay
// queue of its attempt, from which the broker sends it back to the main queue; after
// MaxAttempts it is copied to the dead-letter queue with HeaderLastError. The original is
// acked only once the broker has confirmed the copy, so a message may be duplicated but
// is never lost.
func Consume(ctx context.Context, cfg ConsumerConfig) error {
	c, err := newConsumer(cfg)
	if err != nil {
		return fmt.Errorf("rabbitmq: consume %s: %w", cfg.Queue, err)
	}
	wait := backoffMin
	defer c.cfg.Link.set(cfg.Queue, errors.New("stopped"))
	for {
		consumed, err := c.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		c.cfg.Link.set(cfg.Queue, fmt.Errorf("disconnected: %w", err))
		if consumed {
			wait = backoffMin
		}
		// Jitter spreads the reconnects of the many consumers that lost the same broker.
		pause := wait/2 + rand.N(wait/2+1)
		c.log.Warn("rabbitmq: consumer disconnected; reconnecting", "err", err, "after", pause)
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		}
		wait = min(2*wait, backoffMax)
	}
}

// newConsumer checks cfg and fills in its defaults.
func newConsumer(cfg ConsumerConfig) (*consumer, error) {
	switch {
	case cfg.URL == "":
		return nil, errors.New("no URL")
	case cfg.Queue == "":
		return nil, errors.New("no queue")
	case cfg.Handler == nil:
		return nil, errors.New("no handler")
	case cfg.Prefetch < 0 || cfg.Concurrency < 0 || cfg.MaxAttempts < 0 || cfg.DrainTimeout < 0:
		return nil, errors.New("negative Prefetch, Concurrency, MaxAttempts or DrainTimeout")
	}
	if cfg.Prefetch == 0 {
		cfg.Prefetch = defaultPrefetch
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 1
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	delays := delaysOrDefault(cfg.Delays)
	if err := validateDelays(delays); err != nil {
		return nil, err
	}
	return &consumer{cfg: cfg, delays: delays, log: cfg.Log.With("queue", cfg.Queue)}, nil
}

// session consumes over one connection until ctx ends or the connection fails. consumed
// reports whether it got as far as consuming, which resets the reconnect backoff.
func (c *consumer) session(ctx context.Context) (consumed bool, err error) {
	conn, err := dial(ctx, c.cfg.URL, "flashsale consumer "+c.cfg.Queue)
	if err != nil {
		return false, err
	}
	// Until consuming starts, ending ctx abandons the connection, the only way to interrupt
	// a setup call the broker does not answer. Afterwards shutdown is gentler: handlers
	// finish and nack before the connection closes.
	aborted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(aborted)
		closeConn(conn, 0)
	})
	l, err := c.setup(ctx, conn)
	if !stop() {
		<-aborted
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		closeConn(conn, closeTimeout) // at once if the abort above closed it
		if l.fwd != nil {
			<-l.fwd.done
		}
		return false, err
	}
	defer func() {
		closeConn(conn, closeTimeout)
		<-l.fwd.done
	}()
	c.log.Info("rabbitmq: consuming", "prefetch", c.cfg.Prefetch, "concurrency", c.cfg.Concurrency)
	c.cfg.Link.set(c.cfg.Queue, nil)

	// sessCtx stops the workers taking new messages when ctx ends or one of them fails;
	// handlerCtx, which the handlers get, ends DrainTimeout after ctx.
	sessCtx, stopSession := context.WithCancelCause(ctx)
	defer stopSession(nil)
	handlerCtx, stopHandlers := drainContext(ctx, c.cfg.DrainTimeout)
	defer stopHandlers()
	acks := newAcker(l.ch, func(err error) { stopSession(err) })
	var wg sync.WaitGroup
	for range c.cfg.Concurrency {
		wg.Go(func() {
			if err := c.work(handlerCtx, sessCtx, l.deliveries, l.fwd, acks); err != nil {
				stopSession(err)
			}
		})
	}
	wg.Wait()
	// Ack what the handlers finished before the connection closes, which requeues the rest.
	acks.flush()

	err = context.Cause(sessCtx)
	if errors.Is(err, errDeliveriesClosed) {
		select {
		case e := <-l.closed:
			if e != nil {
				err = fmt.Errorf("channel closed: %w", e)
			}
		default:
			// The channel is open, so the broker cancelled the consumer: the queue was
			// deleted, for instance.
			err = errors.New("the broker cancelled the consumer")
		}
	}
	return true, err
}

// link is what setup opens on a connection.
type link struct {
	fwd        *confirmer
	ch         *amqp.Channel // the consuming channel, which settles its deliveries
	deliveries <-chan amqp.Delivery
	closed     chan *amqp.Error // tells why the consuming channel closed
}

// drainContext returns a context that ends drain after ctx does (with ctx when drain is
// zero), and a function that releases it.
func drainContext(ctx context.Context, drain time.Duration) (context.Context, context.CancelFunc) {
	if drain == 0 {
		return context.WithCancel(ctx)
	}
	out, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(drain, cancel)
		context.AfterFunc(out, func() { t.Stop() })
	})
	return out, func() {
		stop()
		cancel()
	}
}

// setup declares the topology, when the config has one, and opens the channel that forwards
// failed messages and the channel that consumes. On error, l.fwd may still need waiting for
// once the connection is closed.
func (c *consumer) setup(ctx context.Context, conn *amqp.Connection) (l link, err error) {
	if c.cfg.Topology != nil {
		if err := DeclareTopology(ctx, conn, *c.cfg.Topology); err != nil {
			return l, err
		}
	}
	l.fwd, err = newConfirmer(conn)
	if err != nil {
		return l, fmt.Errorf("forwarding channel: %w", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		return l, fmt.Errorf("open channel: %w", err)
	}
	l.ch = ch
	l.closed = ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.Qos(c.cfg.Prefetch, 0, false); err != nil {
		return l, fmt.Errorf("set prefetch: %w", err)
	}
	l.deliveries, err = ch.Consume(c.cfg.Queue, "", false, false, false, false, nil)
	if err != nil {
		return l, fmt.Errorf("consume: %w", err)
	}
	return l, nil
}

// work handles deliveries until sessCtx ends or the channel fails.
func (c *consumer) work(ctx, sessCtx context.Context, deliveries <-chan amqp.Delivery, fwd *confirmer, acks *acker) error {
	for {
		select {
		case <-sessCtx.Done():
			return nil
		case d, ok := <-deliveries:
			if !ok {
				return errDeliveriesClosed
			}
			if sessCtx.Err() != nil {
				// select picked the delivery over the stop: hand it back untouched.
				acks.requeue(d.DeliveryTag)
				return nil
			}
			if err := c.handle(ctx, d, fwd, acks); err != nil {
				return err
			}
		}
	}
}

// handle runs the handler on d and acks, forwards or requeues d, the settling done by acks.
// An error means d could not be forwarded and was left unacked, so the broker will deliver it
// again.
func (c *consumer) handle(ctx context.Context, d amqp.Delivery, fwd *confirmer, acks *acker) error {
	del := newDelivery(d)
	log := c.log.With("message_id", del.MessageID, "attempt", del.Attempt)
	herr := c.call(ctx, del, log)
	if herr == nil {
		acks.ack(d.DeliveryTag)
		return nil
	}
	if ctx.Err() != nil {
		// The consumer is stopping, likely the very reason the handler failed: requeue the
		// message for another consumer rather than count the attempt.
		log.Info("rabbitmq: consumer stopping; requeueing message", "err", herr)
		acks.requeue(d.DeliveryTag)
		return nil
	}

	key, headers := c.next(del, herr, log)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), forwardTimeout)
	defer cancel()
	// Through the default exchange, which routes by queue name.
	if err := fwd.publish(fctx, []outgoing{{key: key, msg: forwardCopy(d, headers)}}); err != nil {
		return fmt.Errorf("forward message %q to %s: %w", del.MessageID, key, err)
	}
	acks.ack(d.DeliveryTag) // the copy is confirmed, so the original can go
	if c.cfg.Forwarded != nil {
		c.cfg.Forwarded(key == DeadQueueName(c.cfg.Queue))
	}
	return nil
}

// call runs the handler, turning a panic into an error so that one bad message cannot
// take the worker down.
func (c *consumer) call(ctx context.Context, d Delivery, log *slog.Logger) (err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("rabbitmq: handler panicked", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return c.cfg.Handler(ctx, d)
}

// next returns the queue a message whose handler failed with herr goes to, and the headers
// to set on its copy.
func (c *consumer) next(d Delivery, herr error, log *slog.Logger) (queue string, headers amqp.Table) {
	msg := herr.Error()
	if len(msg) > maxErrorHeader {
		msg = strings.ToValidUTF8(msg[:maxErrorHeader], "")
	}
	if d.Attempt >= c.cfg.MaxAttempts {
		log.Error("rabbitmq: handler failed on the last attempt; dead-lettering the message", "err", herr)
		return DeadQueueName(c.cfg.Queue), amqp.Table{HeaderAttempt: int32(d.Attempt), HeaderLastError: msg}
	}
	headers = amqp.Table{HeaderAttempt: int32(d.Attempt + 1), HeaderLastError: msg}
	if len(c.delays) == 0 {
		log.Warn("rabbitmq: handler failed; retrying", "err", herr)
		return c.cfg.Queue, headers
	}
	delay := c.delays[min(d.Attempt, len(c.delays))-1]
	log.Warn("rabbitmq: handler failed; retrying later", "err", herr, "delay", delay)
	return RetryQueueName(c.cfg.Queue, delay), headers
}
