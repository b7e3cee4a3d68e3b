package postgres

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// combiner gathers concurrent one-row writes to a shard into multi-row statements: group
// commit, done by the client. A write that finds fewer than `writers` batches running on its
// shard starts one at once; writes that arrive while batches run queue up, and the next batch
// takes all of them (up to max). Under light load every write goes alone and waits for
// nothing; in a burst one statement and one commit carry many rows, so PostgreSQL spends its
// CPU on rows rather than on round trips and commits, and the pool is not drained by a
// thousand single-row transactions. No timer is involved: batches form only while the
// database is busy anyway.
type combiner[T, R any] struct {
	max     int // rows per statement
	writers int // batches running at once per shard
	// write runs one batch on a shard and returns one outcome per item, or one error for
	// the whole batch (its statement is atomic, so then none of it happened).
	write  func(ctx context.Context, shard int, items []T) ([]outcome[R], error)
	queues []combineQueue[T, R]
}

type outcome[R any] struct {
	val R
	err error
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
	state    atomic.Int32
	done     chan outcome[R]
}

const (
	requestQueued int32 = iota
	requestTaken
	requestWithdrawn
)

// combineTimeout bounds a batch none of whose callers set a deadline.
const combineTimeout = 10 * time.Second

func newCombiner[T, R any](shards, max, writers int, write func(context.Context, int, []T) ([]outcome[R], error)) *combiner[T, R] {
	return &combiner[T, R]{max: max, writers: writers, write: write, queues: make([]combineQueue[T, R], shards)}
}

// do writes item on shard as part of whatever batch takes it. If ctx ends before a batch
// took it, it is withdrawn and never written; once taken, do waits for the batch, whose
// statement ends by the earliest deadline of its callers.
func (c *combiner[T, R]) do(ctx context.Context, shard int, item T) (R, error) {
	req := &combineRequest[T, R]{item: item, done: make(chan outcome[R], 1)}
	req.deadline, _ = ctx.Deadline()
	q := &c.queues[shard]
	q.mu.Lock()
	q.pending = append(q.pending, req)
	start := q.running < c.writers
	if start {
		q.running++
	}
	q.mu.Unlock()
	if start {
		go c.drain(q, shard)
	}
	select {
	case out := <-req.done:
		return out.val, out.err
	case <-ctx.Done():
		if req.state.CompareAndSwap(requestQueued, requestWithdrawn) {
			var zero R
			return zero, ctx.Err()
		}
		out := <-req.done
		return out.val, out.err
	}
}

// drain writes batches from the queue until it is empty.
func (c *combiner[T, R]) drain(q *combineQueue[T, R], shard int) {
	for {
		batch := c.take(q)
		if batch == nil {
			return
		}
		c.run(shard, batch)
	}
}

// take removes up to max queued requests, skipping withdrawn ones. When none is left it
// ends this drain (under the lock, so a request queued meanwhile starts another).
func (c *combiner[T, R]) take(q *combineQueue[T, R]) []*combineRequest[T, R] {
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

// run writes one batch and answers its callers. A batch that fails on one row's data (a
// constraint or a bad value) is written again row by row, so one bad row fails alone.
func (c *combiner[T, R]) run(shard int, batch []*combineRequest[T, R]) {
	ctx, cancel := batchContext(batch)
	defer cancel()
	items := make([]T, len(batch))
	for i, r := range batch {
		items[i] = r.item
	}
	outs, err := c.write(ctx, shard, items)
	if err != nil && len(batch) > 1 && isRowError(err) {
		for _, r := range batch {
			c.run(shard, []*combineRequest[T, R]{r})
		}
		return
	}
	for i, r := range batch {
		if err != nil {
			r.done <- outcome[R]{err: err}
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

// isRowError reports whether err is PostgreSQL refusing some row's data (SQLSTATE classes 22
// and 23) rather than the statement failing as a whole.
func isRowError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && len(pgErr.Code) == 5 && (pgErr.Code[:2] == "22" || pgErr.Code[:2] == "23")
}
