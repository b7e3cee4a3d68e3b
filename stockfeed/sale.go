package stockfeed

import (
	"context"
	"time"

	"github.com/flashsale/flashsale"
)

// saleRecheck is how often a sale's stream reads the sale again: staff may end it early,
// cancel it or move its times, which changes its status with no change of its stock.
const saleRecheck = 2 * time.Second

// WatchSale returns a subscriber's stream of a flash sale's stock: Watch's stream of its pool,
// each update naming the sale and its status at that moment. The status also changes with
// the clock and with the staff's changes to the sale (read again through reload with each
// change of the stock and every few seconds), so an update is sent when the sale starts, when it ends, and when a change
// alters its status. The stream ends after the first update that finds the sale SOLD_OUT or
// ENDED: a client then knows the outcome and holds no connection open for a sale that can no
// longer change on its own. (Units that a cancelled or expired order gives back later are
// not followed: a client that cares reads FlashSale.remaining again, or subscribes again.)
func (s *Stock) WatchSale(ctx context.Context, sale *flashsale.FlashSale, current func(context.Context) (int, error),
	reload func(context.Context) (*flashsale.FlashSale, error)) (<-chan *flashsale.StockUpdate, error) {
	ctx, cancel := context.WithCancel(ctx)
	in, err := s.Watch(ctx, flashsale.SalePool(sale.ID), current)
	if err != nil {
		cancel()
		return nil, err
	}
	out := make(chan *flashsale.StockUpdate)
	go func() {
		defer close(out)
		defer cancel() // ends Watch's stream, which then releases the feed
		recheck := time.NewTicker(s.saleRecheck())
		defer recheck.Stop()
		var clock saleClock
		defer clock.stop()
		clock.set(sale)
		var u *flashsale.StockUpdate
		select { // the current value comes first, whatever the clock says
		case <-ctx.Done():
			return
		case u = <-in:
			if u == nil {
				return
			}
		}
		for {
			// A timer may fire a hair early by the wall clock: its update's At is the moment.
			u.Sale = sale
			u.Status = sale.StatusAt(latest(time.Now(), u.At), u.Remaining)
			select {
			case <-ctx.Done():
				return
			case out <- u:
			}
			if u.Status == flashsale.SaleSoldOut || u.Status == flashsale.SaleEnded {
				return
			}
			last := u
			for u = nil; u == nil; {
				select {
				case <-ctx.Done():
					return
				case got, ok := <-in:
					if !ok {
						return
					}
					u = got
					// A change of the stock may come from a change of the sale (its pool is
					// rebuilt with the new terms): judge it by the sale as it is now.
					if fresh, err := reload(ctx); err == nil && !sameTerms(fresh, sale) {
						sale = fresh
						clock.set(sale)
					}
				case <-clock.started:
					u = &flashsale.StockUpdate{Remaining: last.Remaining, At: latest(time.Now(), sale.StartsAt)}
				case <-clock.closed:
					u = &flashsale.StockUpdate{Remaining: last.Remaining, At: latest(time.Now(), sale.ClosesAt())}
				case <-recheck.C:
					fresh, err := reload(ctx)
					if err != nil || sameTerms(fresh, sale) {
						continue // a failed read is tried again at the next tick
					}
					sale = fresh
					clock.set(sale)
					if sale.StatusAt(time.Now(), last.Remaining) != last.Status {
						u = &flashsale.StockUpdate{Remaining: last.Remaining, At: time.Now()}
					}
				}
			}
		}
	}()
	return out, nil
}

func (s *Stock) saleRecheck() time.Duration {
	if s.recheck > 0 {
		return s.recheck
	}
	return saleRecheck
}

// sameTerms reports whether two readings of a sale have the same times.
func sameTerms(a, b *flashsale.FlashSale) bool {
	return a.StartsAt.Equal(b.StartsAt) && a.EndsAt.Equal(b.EndsAt) && (a.CancelledAt == nil) == (b.CancelledAt == nil)
}

// saleClock holds timers at a sale's start and close.
type saleClock struct {
	started, closed <-chan time.Time
	stops           []func()
}

func (c *saleClock) set(sale *flashsale.FlashSale) {
	c.stop()
	var stopStart, stopClose func()
	c.started, stopStart = timerAt(sale.StartsAt)
	c.closed, stopClose = timerAt(sale.ClosesAt())
	c.stops = []func(){stopStart, stopClose}
}

func (c *saleClock) stop() {
	for _, stop := range c.stops {
		stop()
	}
}

// timerAt returns a channel that receives at t, or nil (never ready) if t has passed, and
// the timer's stop function.
func timerAt(t time.Time) (<-chan time.Time, func()) {
	d := time.Until(t)
	if d <= 0 {
		return nil, func() {}
	}
	timer := time.NewTimer(d)
	return timer.C, func() { timer.Stop() }
}

func latest(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}
