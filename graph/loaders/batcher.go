package loaders

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// Loader gathers the keys its callers ask for into batches and answers each caller from its
// batch, caching every answer for the life of the loader (one GraphQL response).
//
// It closes a batch when no new key has arrived for `idle`, or `maxWait` after the first,
// or at `capacity` keys: a sliding window rather than dataloader's fixed one. A fixed window
// closes on a clock started by the first key; gqlgen's fields of a 1,000-element list reach
// their loaders spread over several milliseconds on a busy machine (1,000 goroutines to
// start and wake), and measured here with graph-gophers/dataloader v7 and a 5ms window, one
// level of 1,000 orders went out as 15 statements per shard. A window that stays open while
// keys keep coming sends one, and still closes 1ms after the last key of a small request.
type Loader[K comparable, V any] struct {
	fetch    func(context.Context, []K) ([]V, []error)
	idle     time.Duration
	maxWait  time.Duration
	capacity int
	// peek, if set, answers a key at once from memory (a near cache), with no batch.
	peek func(K) (V, bool)

	mu      sync.Mutex
	pending *batch[K, V]
	done    map[K]*batch[K, V] // every key asked for, with the batch that answers it
}

type batch[K comparable, V any] struct {
	keys   []K
	index  map[K]int
	values []V
	errs   []error
	ready  chan struct{} // closed once values and errs are set
	kick   chan struct{} // a new key arrived: restart the idle timer
	full   chan struct{} // capacity reached: send now
}

// NewLoader returns a loader over fetch, which must answer one value or error per key, in
// the order of the keys.
func NewLoader[K comparable, V any](fetch func(context.Context, []K) ([]V, []error), idle, maxWait time.Duration, capacity int) *Loader[K, V] {
	return &Loader[K, V]{fetch: fetch, idle: idle, maxWait: maxWait, capacity: capacity}
}

// Load asks for key and returns a function that waits for its answer. The fetch runs
// detached from ctx (with its own timeout): the field that happened to open a batch must not
// fail the other fields' keys by being cancelled (dataloader issue #105).
func (l *Loader[K, V]) Load(ctx context.Context, key K) func() (V, error) {
	if l.peek != nil {
		if v, ok := l.peek(key); ok {
			return func() (V, error) { return v, nil }
		}
	}
	l.mu.Lock()
	b, ok := l.done[key]
	if !ok {
		if l.done == nil {
			l.done = map[K]*batch[K, V]{} // most responses use few of their loaders
		}
		b = l.pending
		if b == nil {
			b = &batch[K, V]{index: map[K]int{}, ready: make(chan struct{}), kick: make(chan struct{}, 1), full: make(chan struct{})}
			l.pending = b
			go l.run(context.WithoutCancel(ctx), b)
		}
		b.index[key] = len(b.keys)
		b.keys = append(b.keys, key)
		l.done[key] = b
		if len(b.keys) >= l.capacity {
			l.pending = nil
			close(b.full)
		} else {
			select {
			case b.kick <- struct{}{}:
			default:
			}
		}
	}
	l.mu.Unlock()
	return func() (V, error) {
		select {
		case <-b.ready:
		case <-ctx.Done():
			var zero V
			return zero, ctx.Err()
		}
		i := b.index[key]
		return b.values[i], b.errs[i]
	}
}

// keysStillComing is asked when the idle timer fires. A timer can fire late, when the process
// was paused or descheduled for longer than idle (a GC, a busy machine), and then it wakes in
// the same instant as the goroutines that were about to add this level's keys: yielding
// lets those runnable goroutines run before the batch closes on them. A key that arrived
// meanwhile (or in the instant the timer fired: select picks among ready cases at random)
// keeps the batch open. It costs a yield or two per batch, not per key.
func (l *Loader[K, V]) keysStillComing(b *batch[K, V]) bool {
	for range 2 {
		runtime.Gosched()
		select {
		case <-b.kick:
			return true
		default:
		}
	}
	return false
}

// run waits for the batch to close, then fetches it.
func (l *Loader[K, V]) run(ctx context.Context, b *batch[K, V]) {
	deadline := time.NewTimer(l.maxWait)
	idle := time.NewTimer(l.idle)
wait:
	for {
		select {
		case <-b.full:
			break wait
		case <-deadline.C:
			break wait
		case <-idle.C:
			if l.keysStillComing(b) {
				idle.Reset(l.idle)
				continue
			}
			break wait
		case <-b.kick:
			idle.Reset(l.idle)
		}
	}
	deadline.Stop()
	idle.Stop()
	l.mu.Lock()
	if l.pending == b {
		l.pending = nil
	}
	keys := b.keys // no key is added once the batch is no longer pending
	l.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, batchTimeout)
	defer cancel()
	b.values, b.errs = l.fetch(ctx, keys)
	close(b.ready)
}
