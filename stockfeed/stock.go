// Package stockfeed feeds GraphQL subscriptions: a flash sale's or a product's remaining count as
// it drops, and a buyer's orders as their status changes. The fan-out across API replicas is
// the stores' (one Redis subscription per watched pool per process); this package shapes
// each subscriber's stream: the current value first, then at most MaxPerSecond updates a
// second, always ending on the newest value, without a slow reader holding anyone back.
package stockfeed

import (
	"context"
	"time"

	"github.com/flashsale/flashsale"
)

// Feed is one local subscriber's stream of a pool's counts. Updates holds only the newest
// count not yet read, so a reader that falls behind skips to the latest.
type Feed interface {
	Updates() <-chan *flashsale.StockUpdate
	Close()
}

// StockSource subscribes to a pool's counts.
type StockSource interface {
	SubscribeStock(ctx context.Context, pool flashsale.PoolKey) (Feed, error)
}

// Stock shapes stock feeds for subscribers.
type Stock struct {
	source   StockSource
	interval time.Duration
	recheck  time.Duration // how often a sale's stream reads the sale again; 0: saleRecheck
}

// DefaultMaxPerSecond is how many updates a second a subscriber gets at most.
const DefaultMaxPerSecond = 10

// NewStock returns a shaper over source sending at most maxPerSecond updates a second to
// each subscriber (DefaultMaxPerSecond if zero).
func NewStock(source StockSource, maxPerSecond int) *Stock {
	if maxPerSecond <= 0 {
		maxPerSecond = DefaultMaxPerSecond
	}
	return &Stock{source: source, interval: time.Second / time.Duration(maxPerSecond)}
}

// Watch returns a subscriber's stream of a pool: current's value first, then the changes,
// coalesced. It subscribes before reading the current value, so no change in between is
// lost. The stream ends, and everything it holds is released, when ctx ends.
func (s *Stock) Watch(ctx context.Context, pool flashsale.PoolKey, current func(context.Context) (int, error)) (<-chan *flashsale.StockUpdate, error) {
	return s.watch(ctx, pool, current, nil)
}

// WatchProduct is Watch of a product's regular stock, each update naming the product.
func (s *Stock) WatchProduct(ctx context.Context, id flashsale.ProductID, current func(context.Context) (int, error)) (<-chan *flashsale.StockUpdate, error) {
	return s.watch(ctx, flashsale.ProductPool(id), current, func(u *flashsale.StockUpdate) { u.ProductID = id })
}

// watch is Watch calling stamp (if not nil) on each update before it is sent; every update
// is the subscriber's own, so stamp may change it.
func (s *Stock) watch(ctx context.Context, pool flashsale.PoolKey, current func(context.Context) (int, error), stamp func(*flashsale.StockUpdate)) (<-chan *flashsale.StockUpdate, error) {
	feed, err := s.source.SubscribeStock(ctx, pool)
	if err != nil {
		return nil, err
	}
	n, err := current(ctx)
	if err != nil {
		feed.Close()
		return nil, err
	}
	out := make(chan *flashsale.StockUpdate)
	go func() {
		defer close(out)
		defer feed.Close()
		s.pump(ctx, feed.Updates(), out, &flashsale.StockUpdate{Remaining: n, At: time.Now()}, stamp)
	}()
	return out, nil
}

// pump sends first, then each update no sooner than interval after the previous send,
// replacing a waiting update with any newer one that arrives meanwhile.
func (s *Stock) pump(ctx context.Context, in <-chan *flashsale.StockUpdate, out chan<- *flashsale.StockUpdate, first *flashsale.StockUpdate, stamp func(*flashsale.StockUpdate)) {
	next := first
	var lastSent time.Time
	for {
		if next != nil {
			if wait := s.interval - time.Since(lastSent); wait > 0 {
				timer := time.NewTimer(wait)
			coalesce:
				for {
					select {
					case <-ctx.Done():
						timer.Stop()
						return
					case u, ok := <-in:
						if !ok {
							timer.Stop()
							break coalesce // send what we have, then end
						}
						next = u
					case <-timer.C:
						break coalesce
					}
				}
			}
			if stamp != nil {
				stamp(next)
			}
			select {
			case <-ctx.Done():
				return
			case out <- next:
				lastSent, next = time.Now(), nil
			}
		}
		select {
		case <-ctx.Done():
			return
		case u, ok := <-in:
			if !ok {
				return
			}
			next = u
		}
	}
}
