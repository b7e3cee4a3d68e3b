package app

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/stores/redis"
)

// soldOutWatch is the checkout's memory of sold-out pools, listening for their stock coming
// back: when a pool first sells out here, the process subscribes to its stock events (one
// Redis subscription per pool, shared with any live subscribers), and the StockBus clears the
// mark as soon as a cancel or an expiry anywhere announces units again. The mark's TTL only
// covers events lost while pub/sub reconnects.
type soldOutWatch struct {
	*redis.SoldOutCache
	bus *redis.StockBus
	log *slog.Logger
	ctx context.Context // ends with the process

	mu       sync.Mutex
	watching map[flashsale.PoolKey]bool
	wg       sync.WaitGroup // the watches; Deps.Close waits for them
}

// soldOutWatchFor is how long a process listens to a sold-out pool: long enough for the
// cancels and expiries that follow a sale's rush.
const soldOutWatchFor = 30 * time.Minute

func (w *soldOutWatch) MarkSoldOut(pool flashsale.PoolKey) {
	w.SoldOutCache.MarkSoldOut(pool)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.watching[pool] {
		return
	}
	w.watching[pool] = true
	w.wg.Go(func() {
		ctx, cancel := context.WithTimeout(w.ctx, soldOutWatchFor)
		defer cancel()
		if sub, err := w.bus.Subscribe(ctx, pool); err != nil {
			w.log.Warn("watch sold-out pool", "pool", string(pool), "err", err)
		} else {
			<-ctx.Done()
			sub.Close()
		}
		w.mu.Lock()
		delete(w.watching, pool)
		w.mu.Unlock()
	})
}
