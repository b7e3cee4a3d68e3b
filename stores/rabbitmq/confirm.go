package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// confirmer publishes on one AMQP channel in confirm mode, and settles each message when
// the broker confirms it: acked, nacked, or returned as unroutable first. Publisher uses one;
// a consumer uses one to forward failed messages to delay and dead-letter queues. It is
// safe for concurrent use; calls that overlap send one after the other and wait for their
// confirms together.
type confirmer struct {
	ch *amqp.Channel
	// abort closes the connection at once. It is how a cancelled call gets out of a send
	// stuck on a full socket, which amqp091 cannot interrupt otherwise.
	abort func()
	// sending is a one-slot lock, ctx-aware unlike a mutex, held while a call sends. It keeps
	// the sequence number we predict for each message equal to the one amqp091 assigns.
	sending chan struct{}

	mu      sync.Mutex
	pending map[uint64]*inflight // by delivery tag
	err     error                // why the channel closed; set when the dispatcher stops
	done    chan struct{}        // closed when the dispatcher has stopped
}

// inflight is one message sent and not yet confirmed.
type inflight struct {
	b                    *batch
	exchange, key, msgID string
	returned             string // the broker's reason, when it returned the message
}

// batch is one call's messages. Its fields are guarded by the confirmer's mu; err may be read
// without it once done is closed.
type batch struct {
	left int
	err  error
	done chan struct{}
}

// settle records the confirm of one message of b, or the failure of b.
func (b *batch) settle(err error) {
	if b.left == 0 {
		return // already failed
	}
	if err != nil {
		b.left = 0
		b.err = err
		close(b.done)
		return
	}
	b.left--
	if b.left == 0 {
		close(b.done)
	}
}

// newConfirmer opens a channel on conn in confirm mode. The dispatcher goroutine it starts
// stops when the channel or the connection closes; the connection's owner closes it and
// then waits for the dispatcher on done.
func newConfirmer(conn *amqp.Connection) (*confirmer, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	// The listeners are unbuffered and the dispatcher does nothing slow. amqp091 sends a
	// message's return before its confirm on the same goroutine, so with unbuffered
	// listeners the dispatcher has recorded the return before it receives the confirm.
	// (amqp091 drops a notification its listener leaves waiting for 5s, hence "nothing
	// slow".)
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation))
	returns := ch.NotifyReturn(make(chan amqp.Return))
	closes := ch.NotifyClose(make(chan *amqp.Error, 1))
	c := &confirmer{
		ch:      ch,
		abort:   func() { closeConn(conn, 0) },
		sending: make(chan struct{}, 1),
		pending: make(map[uint64]*inflight),
		done:    make(chan struct{}),
	}
	go c.dispatch(confirms, returns, closes)
	if err := ch.Confirm(false); err != nil {
		ch.Close()
		<-c.done
		return nil, fmt.Errorf("enable publisher confirms: %w", err)
	}
	return c, nil
}

// dispatch settles messages as confirms and returns arrive, until the channel closes; then it
// fails whatever is still pending.
func (c *confirmer) dispatch(confirms <-chan amqp.Confirmation, returns <-chan amqp.Return, closes <-chan *amqp.Error) {
	defer close(c.done)
	for {
		select {
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			c.returned(r)
		case cf, ok := <-confirms:
			if ok {
				c.confirmed(cf)
				continue
			}
			err := errors.New("channel closed")
			select {
			case e := <-closes:
				if e != nil {
					err = fmt.Errorf("channel closed: %w", e)
				}
			default:
			}
			c.mu.Lock()
			c.err = err
			for tag, f := range c.pending {
				f.b.settle(fmt.Errorf("message %q not confirmed: %w", f.msgID, err))
				delete(c.pending, tag)
			}
			c.mu.Unlock()
			return
		}
	}
}

// returned marks the message the broker returned. A return names no delivery tag, so it goes
// to the oldest pending message with the same exchange, key and id: the broker routes those
// alike, and sends each return just before the message's confirm.
func (c *confirmer) returned(r amqp.Return) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var (
		oldest *inflight
		tag    uint64
	)
	for t, f := range c.pending {
		if f.returned == "" && f.exchange == r.Exchange && f.key == r.RoutingKey && f.msgID == r.MessageId &&
			(oldest == nil || t < tag) {
			oldest, tag = f, t
		}
	}
	if oldest != nil {
		oldest.returned = fmt.Sprintf("%d %s", r.ReplyCode, r.ReplyText)
	}
}

// confirmed settles the message the broker acked or nacked.
func (c *confirmer) confirmed(cf amqp.Confirmation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.pending[cf.DeliveryTag]
	if !ok {
		return
	}
	delete(c.pending, cf.DeliveryTag)
	switch {
	case !cf.Ack:
		f.b.settle(fmt.Errorf("message %q: %w", f.msgID, ErrNacked))
	case f.returned != "":
		f.b.settle(fmt.Errorf("message %q to exchange %q with key %q: %w (%s)",
			f.msgID, f.exchange, f.key, ErrUnroutable, f.returned))
	default:
		f.b.settle(nil)
	}
}

// closed reports whether the channel has closed.
func (c *confirmer) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return c.ch.IsClosed()
	}
}

// outgoing is one message to publish.
type outgoing struct {
	exchange, key string
	msg           amqp.Publishing
}

// publish sends msgs, mandatory, and waits until the broker has confirmed them all. It
// returns nil only if every one was acked and none returned. Sending does not wait for
// confirms, so a large batch costs about one round trip.
//
// When ctx ends during a send blocked on a full socket, publish closes the connection: that
// is the only way to unblock it.
func (c *confirmer) publish(ctx context.Context, msgs []outgoing) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err // before the abort below is armed: an ended ctx must not cost the connection
	}
	b := &batch{left: len(msgs), done: make(chan struct{})}
	select {
	case c.sending <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	err := c.send(ctx, b, msgs)
	<-c.sending
	if err != nil {
		return err
	}
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return fmt.Errorf("waiting for confirms: %w", ctx.Err())
	}
}

// send publishes msgs as parts of b. The caller holds c.sending.
func (c *confirmer) send(ctx context.Context, b *batch, msgs []outgoing) error {
	aborted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(aborted)
		c.abort()
	})
	defer func() {
		if !stop() {
			<-aborted
		}
	}()
	for _, m := range msgs {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Registered before sending, since the confirm may beat Publish's return. Neither call
		// into amqp091 is made under mu: amqp091 holds its own locks while it waits for the
		// dispatcher, which may be waiting for mu.
		tag := c.ch.GetNextPublishSeqNo()
		c.mu.Lock()
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return err
		}
		c.pending[tag] = &inflight{b: b, exchange: m.exchange, key: m.key, msgID: m.msg.MessageId}
		c.mu.Unlock()
		if err := c.ch.Publish(m.exchange, m.key, true, false, m.msg); err != nil {
			c.mu.Lock()
			delete(c.pending, tag)
			c.mu.Unlock()
			return fmt.Errorf("send message %q: %w", m.msg.MessageId, err)
		}
	}
	return nil
}
