package soldout

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/flashsale/flashsale"
)

// Subscriber subscribes to a pool's stock events, until ctx ends or the subscription is
// closed. The stock bus (stores/redis.StockBus, adapted in app) is one; it is also what
// clears a Memory's mark when an event says the pool has units again.
type Subscriber interface {
	SubscribeStock(ctx context.Context, pool flashsale.PoolKey) (Subscription, error)
}

// Subscription is a subscription Subscriber started.
type Subscription interface {
	Close()
}

// Watch is a Memory that listens for its sold-out pools' stock coming back: when a pool is
// first marked here, it subscribes to the pool's stock events (one Redis subscription per
// pool, shared with any live subscribers), so that the stock bus clears the mark as soon as
// a cancel or an expiry anywhere announces units again. The Memory's TTL only covers events
// lost while pub/sub reconnects. Close stops the subscriptions and waits for them.
type Watch struct {
	*Memory
	sub Subscriber
	log *slog.Logger

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc

	mu       sync.Mutex
	watching map[flashsale.PoolKey]bool
	closed   bool
	wg       sync.WaitGroup // the subscriptions' goroutines
}

// watchFor is how long a process listens to a sold-out pool: long enough for the cancels and
// expiries that follow a sale's burst of orders.
const watchFor = 30 * time.Minute

// NewWatch returns a Watch of m that subscribes through sub; log (nil: slog.Default()) gets
// the subscriptions that fail.
func NewWatch(m *Memory, sub Subscriber, log *slog.Logger) *Watch {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Watch{Memory: m, sub: sub, log: log, ctx: ctx, cancel: cancel, watching: map[flashsale.PoolKey]bool{}}
}

// Mark remembers that pool answered SOLD_OUT and, unless it is already watched, listens for
// its stock for watchFor.
func (w *Watch) Mark(pool flashsale.PoolKey) {
	w.Memory.Mark(pool)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.watching[pool] {
		return
	}
	w.watching[pool] = true
	w.wg.Go(func() {
		ctx, cancel := context.WithTimeout(w.ctx, watchFor)
		defer cancel()
		if sub, err := w.sub.SubscribeStock(ctx, pool); err != nil {
			if w.ctx.Err() == nil {
				w.log.Warn("watch sold-out pool", "pool", string(pool), "err", err)
			}
		} else {
			<-ctx.Done()
			sub.Close()
		}
		w.mu.Lock()
		delete(w.watching, pool)
		w.mu.Unlock()
	})
}

// Close ends every subscription and waits for them; marks are still remembered afterwards,
// but no longer watched.
func (w *Watch) Close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.cancel()
	w.wg.Wait()
}
