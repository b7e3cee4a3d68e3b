// Package combine gathers concurrent single-item calls to a store into batches: group
// commit, done by the client. PostgreSQL's writers and Redis's reservations use it.
package combine

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Combiner gathers concurrent one-item calls to a queue (a shard, say) into batches. A call
// that finds fewer than `writers` batches running on its queue starts one at once; calls that
// arrive while batches run queue up, and the next batch takes all of them (up to max). Under
// light load every call goes alone and waits for nothing; in a burst one statement or one
// pipeline carries many items, so the store spends its CPU on items rather than on round
// trips, commits and system calls. No timer is involved: batches form only while the store
// is busy anyway.
type Combiner[T, R any] struct {
	max     int // items per batch
	writers int // batches running at once per queue
	// write runs one batch on a queue and returns one outcome per item, or one error for
	// the whole batch (which then must have had no effect).
	write func(ctx context.Context, queue int, items []T) ([]Outcome[R], error)
	// split, if set, tells a batch error caused by one item's data: the batch is then run
	// again item by item, so that the bad one fails alone.
	split  func(error) bool
	queues []combineQueue[T, R]
}

// Outcome is one item's result in a batch.
type Outcome[R any] struct {
	Val R
	Err error
}

type combineQueue[T, R any] struct {
	mu      sync.Mutex
	pending []*combineRequest[T, R]
	running int
}

// A request is queued until a batch takes it or its caller withdraws it, whichever comes
// first: a caller that gave up must know its row will never be written, and a batch must
// never write the row of a caller that gave up.
type combineRequest[T, R any] struct {
	item     T
	deadline time.Time // zero: none
	// span is the caller's trace span (a no-op one when untraced): the batch's statements
	// go into the first caller's trace, linked from the others'.
	span  trace.Span
	state atomic.Int32
	done  chan Outcome[R]
}

const (
	requestQueued int32 = iota
	requestTaken
	requestWithdrawn
)

// combineTimeout bounds a batch none of whose callers set a deadline.
const combineTimeout = 10 * time.Second

// New returns a Combiner of queues queues, each running up to writers batches of up to max
// items at once through write. split may be nil.
func New[T, R any](queues, max, writers int, write func(context.Context, int, []T) ([]Outcome[R], error), split func(error) bool) *Combiner[T, R] {
	return &Combiner[T, R]{max: max, writers: writers, write: write, split: split, queues: make([]combineQueue[T, R], queues)}
}

// Do runs item on queue as part of whatever batch takes it. If ctx ends before a batch took
// it, it is withdrawn and never run; once taken, Do waits for the batch, which ends by the
// earliest deadline of its callers.
func (c *Combiner[T, R]) Do(ctx context.Context, queue int, item T) (R, error) {
	req := &combineRequest[T, R]{item: item, done: make(chan Outcome[R], 1), span: trace.SpanFromContext(ctx)}
	req.deadline, _ = ctx.Deadline()
	q := &c.queues[queue]
	q.mu.Lock()
	q.pending = append(q.pending, req)
	start := q.running < c.writers
	if start {
		q.running++
	}
	q.mu.Unlock()
	if start {
		go c.drain(q, queue)
	}
	select {
	case out := <-req.done:
		return out.Val, out.Err
	case <-ctx.Done():
		if req.state.CompareAndSwap(requestQueued, requestWithdrawn) {
			var zero R
			return zero, ctx.Err()
		}
		out := <-req.done
		return out.Val, out.Err
	}
}

// drain writes batches from the queue until it is empty.
func (c *Combiner[T, R]) drain(q *combineQueue[T, R], queue int) {
	for {
		batch := c.take(q)
		if batch == nil {
			return
		}
		c.run(queue, batch)
	}
}

// take removes up to max queued requests, skipping withdrawn ones. When none is left it
// ends this drain (under the lock, so a request queued meanwhile starts another).
func (c *Combiner[T, R]) take(q *combineQueue[T, R]) []*combineRequest[T, R] {
	q.mu.Lock()
	defer q.mu.Unlock()
	var batch []*combineRequest[T, R]
	n := 0
	for n < len(q.pending) && len(batch) < c.max {
		req := q.pending[n]
		n++
		if req.state.CompareAndSwap(requestQueued, requestTaken) {
			batch = append(batch, req)
		}
	}
	clear(q.pending[:n])
	q.pending = q.pending[n:]
	if len(batch) == 0 {
		q.running--
		q.pending = nil // let the backing array go
	}
	return batch
}

// run runs one batch and answers its callers. A batch that fails on one item's data (as
// split tells) is run again item by item, so one bad item fails alone.
func (c *Combiner[T, R]) run(queue int, batch []*combineRequest[T, R]) {
	ctx, cancel := batchContext(batch)
	defer cancel()
	if first := batch[0].span; first.SpanContext().IsValid() {
		ctx = trace.ContextWithSpan(ctx, first)
		if len(batch) > 1 {
			links := make([]trace.Link, 0, len(batch)-1)
			for _, r := range batch[1:] {
				links = append(links, trace.Link{SpanContext: r.span.SpanContext()})
			}
			var span trace.Span
			ctx, span = first.TracerProvider().Tracer("github.com/flashsale/flashsale/internal/combine").Start(ctx, "batch",
				trace.WithLinks(links...), trace.WithAttributes(attribute.Int("flashsale.batch_size", len(batch))))
			defer span.End()
		}
	}
	items := make([]T, len(batch))
	for i, r := range batch {
		items[i] = r.item
	}
	outs, err := c.write(ctx, queue, items)
	if err != nil && len(batch) > 1 && c.split != nil && c.split(err) {
		for _, r := range batch {
			c.run(queue, []*combineRequest[T, R]{r})
		}
		return
	}
	for i, r := range batch {
		if err != nil {
			r.done <- Outcome[R]{Err: err}
		} else {
			r.done <- outs[i]
		}
	}
}

// batchContext ends at the earliest deadline of the batch's callers: each of them may rely
// on its write being over by its own deadline (checkout's rebuild fence does).
func batchContext[T, R any](batch []*combineRequest[T, R]) (context.Context, context.CancelFunc) {
	var earliest time.Time
	for _, r := range batch {
		if !r.deadline.IsZero() && (earliest.IsZero() || r.deadline.Before(earliest)) {
			earliest = r.deadline
		}
	}
	if earliest.IsZero() {
		return context.WithTimeout(context.Background(), combineTimeout)
	}
	return context.WithDeadline(context.Background(), earliest)
}
