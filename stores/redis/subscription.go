package redis

import (
	"context"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale"
)

// Subscription is one local subscriber's feed of a pool's stock. It ends when the context
// given to Subscribe is done, when Close is called, or when its StockBus closes.
type Subscription struct {
	bus     *StockBus
	topic   *topic
	updates chan *flashsale.StockUpdate
	// stop unregisters the context.AfterFunc that ends the subscription with its context,
	// so that an ended subscription is not kept alive by a context that lives on.
	stop   func() bool // guarded by topic.mu; nil until Subscribe sets it
	closed bool        // guarded by topic.mu
}

// Updates returns the subscription's updates. It holds the newest update not yet read and
// nothing older: a reader that falls behind skips to the latest count instead of slowing
// anybody else down. Each update is the reader's own. The channel is closed when the
// subscription ends, so it can be returned as is from a gqlgen subscription resolver.
func (s *Subscription) Updates() <-chan *flashsale.StockUpdate { return s.updates }

// Close ends the subscription, and the pool's Redis subscription with it if it was the last
// one in this process. Calling it again does nothing.
func (s *Subscription) Close() { s.bus.leave(s) }

// offer puts u in the subscription's slot, replacing an update it has not read. It never
// blocks; the caller holds topic.mu, so it is the only sender.
func (s *Subscription) offer(u flashsale.StockUpdate) {
	if s.closed {
		return
	}
	p := &u // u is this call's copy, so each subscriber gets its own
	select {
	case s.updates <- p:
		return
	default:
	}
	select {
	case <-s.updates: // the unread, older update
	default: // the reader took it meanwhile
	}
	s.updates <- p // cannot block: the slot is empty and no one else sends
}

// topic is one pool's Redis subscription and the local subscribers it feeds.
type topic struct {
	pool    flashsale.PoolKey
	channel string

	// ready is closed once the Redis subscription is confirmed or has failed (err set).
	ready chan struct{}
	err   error

	ps        *goredis.PubSub // guarded by StockBus.mu, as is confirmed
	confirmed bool

	mu   sync.Mutex // guards subs and every Subscription.closed, and orders sends and closes
	subs map[*Subscription]struct{}
}

// deliver hands u to every subscriber without waiting for any of them.
func (t *topic) deliver(u flashsale.StockUpdate) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for s := range t.subs {
		s.offer(u)
	}
}

// remove ends s and reports how many subscribers are left.
func (t *topic) remove(s *Subscription) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !s.closed {
		s.end()
		delete(t.subs, s)
	}
	return len(t.subs)
}

// end closes s's channel; the caller holds topic.mu and has checked s is not closed yet.
func (s *Subscription) end() {
	s.closed = true
	close(s.updates)
	if s.stop != nil {
		s.stop() // does not wait for the AfterFunc, which may be what called us
	}
}

// closeAll ends every subscription (the bus is closing).
func (t *topic) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for s := range t.subs {
		s.end()
	}
	clear(t.subs)
}

// awaitReady waits for the Redis subscription of t.
func (t *topic) awaitReady(ctx context.Context) error {
	select {
	case <-t.ready:
		return t.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pauseBeforeResubscribing waits a little longer after each failure in a row of a pub/sub
// subscription's receive loop (up to 2 s), so that a Redis that is down is not dialled in a
// tight loop. It reports false when ctx ended first.
func pauseBeforeResubscribing(ctx context.Context, failures int) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(min(time.Duration(failures)*100*time.Millisecond, 2*time.Second)):
		return true
	}
}
