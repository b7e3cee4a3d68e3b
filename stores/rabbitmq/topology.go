package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DefaultMaxAttempts is how many times a consumer handles a message, when its config says
// nothing, before parking it in the dead-letter queue.
const DefaultMaxAttempts = 5

// maxPriority is the main queues' x-max-priority: flash-sale orders are published with a
// higher priority than routine ones so that they jump the queue. RabbitMQ keeps a
// sub-queue per level, so a handful of levels is all that is worth paying for.
const maxPriority = 10

// DefaultDelays returns the retry delays used when a Queue or ConsumerConfig leaves Delays
// nil: 1s, 5s and 30s. Each attempt after the first waits for the next delay, the last one
// repeating.
func DefaultDelays() []time.Duration {
	return []time.Duration{time.Second, 5 * time.Second, 30 * time.Second}
}

// Topology is the exchange and queues of one stream of messages, such as orders.
type Topology struct {
	// Exchange is the durable topic exchange publishers send to, such as "flashsale.orders".
	Exchange string
	// Queues are the consumer groups: every group gets its own copy of each message.
	Queues []Queue
}

// Queue is one consumer group's main queue and the retry and dead-letter queues beside it.
type Queue struct {
	// Name is the main queue's name, such as "flashsale.orders.payments".
	Name string
	// RoutingKeys bind the main queue to the exchange; topic wildcards such as "order.#" work.
	RoutingKeys []string
	// Delays name the queue's delay queues, "<Name>.retry.<delay>". Nil means DefaultDelays.
	// Consumers of the queue must be configured with the same delays.
	Delays []time.Duration
}

// RetryQueueName returns the name of queue's delay queue for delay, such as
// "flashsale.orders.payments.retry.5s".
func RetryQueueName(queue string, delay time.Duration) string {
	return queue + ".retry." + formatDelay(delay)
}

// DeadQueueName returns the name of queue's dead-letter queue, "<queue>.dead".
func DeadQueueName(queue string) string {
	return queue + ".dead"
}

// formatDelay writes d as Duration.String does, without its trailing zero units: "1m" rather
// than "1m0s", since the result ends up in queue names that people read.
func formatDelay(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// delaysOrDefault returns delays, or DefaultDelays when it is nil.
func delaysOrDefault(delays []time.Duration) []time.Duration {
	if delays == nil {
		return DefaultDelays()
	}
	return delays
}

// validateDelays checks that each delay can be a queue's x-message-ttl, which counts whole
// milliseconds, and that no two delays would share a queue.
func validateDelays(delays []time.Duration) error {
	seen := make(map[time.Duration]bool, len(delays))
	for _, d := range delays {
		if d < time.Millisecond || d%time.Millisecond != 0 {
			return fmt.Errorf("retry delay %v is not a whole number of milliseconds", d)
		}
		if seen[d] {
			return fmt.Errorf("retry delay %v is listed twice", d)
		}
		seen[d] = true
	}
	return nil
}

// validate rejects what the broker would, before anything is declared.
func (t Topology) validate() error {
	if t.Exchange == "" {
		return errors.New("no exchange name")
	}
	for _, q := range t.Queues {
		if q.Name == "" {
			return errors.New("a queue has no name")
		}
		if err := validateDelays(delaysOrDefault(q.Delays)); err != nil {
			return fmt.Errorf("queue %s: %w", q.Name, err)
		}
	}
	return nil
}

// DeclareTopology declares t on conn, creating what is missing. It is idempotent, so every
// process can call it at startup; it fails when an existing exchange or queue was declared
// with other arguments (RabbitMQ never changes them in place).
//
// Each main queue has x-max-priority 10 and is bound to the exchange with its routing keys.
// Each delay queue holds messages for its x-message-ttl, then dead-letters them through the
// default exchange back to the main queue; one queue per delay, because RabbitMQ expires
// messages only from a queue's head. The dead-letter queue is a plain durable queue that
// nothing consumes: operators inspect it and shovel messages back by hand.
//
// ctx is checked between declarations; a single declaration the broker never answers is
// bounded by the connection's heartbeat.
func DeclareTopology(ctx context.Context, conn *amqp.Connection, t Topology) error {
	if err := t.validate(); err != nil {
		return fmt.Errorf("rabbitmq: declare topology: %w", err)
	}
	// A channel of our own: a failed declaration closes the channel it was made on.
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("rabbitmq: declare topology of %s: open channel: %w", t.Exchange, err)
	}
	defer ch.Close()

	do := func(what string, f func() error) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("rabbitmq: declare %s: %w", what, err)
		}
		if err := f(); err != nil {
			return fmt.Errorf("rabbitmq: declare %s: %w", what, err)
		}
		return nil
	}
	queue := func(name string, args amqp.Table) error {
		return do("queue "+name, func() error {
			_, err := ch.QueueDeclare(name, true, false, false, false, args)
			return err
		})
	}

	if err := do("exchange "+t.Exchange, func() error {
		return ch.ExchangeDeclare(t.Exchange, amqp.ExchangeTopic, true, false, false, false, nil)
	}); err != nil {
		return err
	}
	for _, q := range t.Queues {
		if err := queue(q.Name, amqp.Table{"x-max-priority": int32(maxPriority)}); err != nil {
			return err
		}
		for _, key := range q.RoutingKeys {
			if err := do(fmt.Sprintf("binding %s -> %s (%s)", t.Exchange, q.Name, key), func() error {
				return ch.QueueBind(q.Name, key, t.Exchange, false, nil)
			}); err != nil {
				return err
			}
		}
		for _, d := range delaysOrDefault(q.Delays) {
			if err := queue(RetryQueueName(q.Name, d), amqp.Table{
				"x-message-ttl":             d.Milliseconds(),
				"x-dead-letter-exchange":    "",
				"x-dead-letter-routing-key": q.Name,
			}); err != nil {
				return err
			}
		}
		if err := queue(DeadQueueName(q.Name), nil); err != nil {
			return err
		}
	}
	return nil
}

// Declare dials url, declares t as DeclareTopology does, and closes the connection. Ending
// ctx abandons the connection, interrupting a declaration in flight.
func Declare(ctx context.Context, url string, t Topology) error {
	conn, err := dial(ctx, url, "flashsale topology "+t.Exchange)
	if err != nil {
		return fmt.Errorf("rabbitmq: declare topology of %s: %w", t.Exchange, err)
	}
	aborted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(aborted)
		closeConn(conn, 0)
	})
	err = DeclareTopology(ctx, conn, t)
	if !stop() {
		<-aborted
	}
	closeConn(conn, closeTimeout)
	return err
}

// Delete removes a topology's queues (main, delay and dead-letter) and its exchange, with
// whatever messages they hold. Tests clean up with it; so can an operator retiring a stream.
func Delete(ctx context.Context, url string, t Topology) error {
	conn, err := dial(ctx, url, "flashsale topology delete "+t.Exchange)
	if err != nil {
		return fmt.Errorf("rabbitmq: delete topology of %s: %w", t.Exchange, err)
	}
	defer closeConn(conn, closeTimeout)
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("rabbitmq: delete topology of %s: %w", t.Exchange, err)
	}
	for _, q := range t.Queues {
		names := []string{q.Name, DeadQueueName(q.Name)}
		for _, d := range delaysOrDefault(q.Delays) {
			names = append(names, RetryQueueName(q.Name, d))
		}
		for _, name := range names {
			if _, err := ch.QueueDelete(name, false, false, false); err != nil {
				return fmt.Errorf("rabbitmq: delete queue %s: %w", name, err)
			}
		}
	}
	if err := ch.ExchangeDelete(t.Exchange, false, false); err != nil {
		return fmt.Errorf("rabbitmq: delete exchange %s: %w", t.Exchange, err)
	}
	return nil
}
