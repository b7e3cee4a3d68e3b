package rabbitmq

import (
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

const (
	// ackBatch and ackDelay bound how long a finished delivery waits for its ack: the acker
	// sends once this many are waiting, or this long after the first of them finished. A
	// crash in between redelivers them, which consumers already allow for (they deduplicate
	// by message id); the broker's per-frame work is what batching saves.
	ackBatch = 64
	ackDelay = 5 * time.Millisecond
)

// acker settles one channel's deliveries with as few frames as it can. Handlers finish
// deliveries in any order; the acker settles them in delivery-tag order, acking each run of
// finished deliveries with one multiple ack. A requeue (a consumer stopping) ends the run
// before it and is sent on its own, so a multiple ack never covers a delivery still being
// handled or one that was requeued.
//
// The broker numbers a channel's deliveries 1, 2, 3, …, which is what makes "every tag up
// to N" mean "every delivery up to this one". The consuming channel carries nothing else.
type acker struct {
	ch amqp.Acknowledger
	// fail is told when the channel refused a frame: the session is over, and the broker
	// will redeliver whatever was not acked.
	fail func(error)

	mu       sync.Mutex
	next     uint64          // the lowest tag not yet settled
	finished map[uint64]bool // finished tags from next on: true to ack, false to requeue
	waiting  int             // finished since the last flush
	timer    *time.Timer     // runs flush ackDelay after the first of them
	broken   bool            // a frame failed; settle nothing more
}

func newAcker(ch amqp.Acknowledger, fail func(error)) *acker {
	return &acker{ch: ch, fail: fail, next: 1, finished: make(map[uint64]bool)}
}

// ack reports that the delivery tagged tag was handled (or forwarded) and may be acked.
func (a *acker) ack(tag uint64) { a.finish(tag, true) }

// requeue reports that the delivery tagged tag goes back to the queue unhandled.
func (a *acker) requeue(tag uint64) { a.finish(tag, false) }

func (a *acker) finish(tag uint64, ack bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.finished[tag] = ack
	a.waiting++
	switch {
	case a.waiting >= ackBatch || !ack:
		// A requeue goes at once: a consumer requeues only when it is stopping.
		a.flushLocked()
	case a.timer == nil:
		a.timer = time.AfterFunc(ackDelay, a.flush)
	}
}

// flush settles every finished delivery that no unfinished one precedes.
func (a *acker) flush() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.flushLocked()
}

func (a *acker) flushLocked() {
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	a.waiting = 0
	var run uint64 // the highest tag of the run waiting for a multiple ack, 0 for none
	for !a.broken {
		ack, ok := a.finished[a.next]
		if !ok {
			break
		}
		delete(a.finished, a.next)
		if ack {
			run = a.next
		} else {
			a.send(run, 0)
			run = 0
			a.send(0, a.next)
		}
		a.next++
	}
	// What finished past a gap waits: the delivery filling the gap calls finish, which
	// flushes or schedules a flush.
	a.send(run, 0)
}

// send acks every tag up to ackUpTo, or requeues the tag requeue; zero means nothing.
func (a *acker) send(ackUpTo, requeue uint64) {
	if a.broken {
		return
	}
	var err error
	switch {
	case ackUpTo > 0:
		if err = a.ch.Ack(ackUpTo, true); err != nil {
			err = fmt.Errorf("ack deliveries up to %d: %w", ackUpTo, err)
		}
	case requeue > 0:
		if err = a.ch.Nack(requeue, false, true); err != nil {
			err = fmt.Errorf("requeue delivery %d: %w", requeue, err)
		}
	}
	if err != nil {
		a.broken = true
		a.fail(err)
	}
}
