package live

import (
	"context"
	"time"

	"github.com/flashsale/flashsale"
)

// WatchSale returns a subscriber's stream of a flash sale's stock: Watch's stream of its pool,
// each update naming the sale and its status at that moment. The status also changes with
// the clock, so an update is sent when the sale starts, and one when it ends. The stream
// ends after the first update that finds the sale SOLD_OUT or ENDED: a client then knows
// the outcome and holds no connection open for a sale that can no longer change on its
// own. (Units that a cancelled or expired order gives back later are not followed: a
// client that cares reads FlashSale.remaining again, or subscribes again.)
func (s *Stock) WatchSale(ctx context.Context, sale *flashsale.FlashSale, current func(context.Context) (int, error)) (<-chan *flashsale.StockUpdate, error) {
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
		started, stopStart := timerAt(sale.StartsAt)
		defer stopStart()
		ended, stopEnd := timerAt(sale.EndsAt)
		defer stopEnd()
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
			remaining := u.Remaining
			select {
			case <-ctx.Done():
				return
			case got, ok := <-in:
				if !ok {
					return
				}
				u = got
			case <-started:
				u = &flashsale.StockUpdate{Remaining: remaining, At: latest(time.Now(), sale.StartsAt)}
			case <-ended:
				u = &flashsale.StockUpdate{Remaining: remaining, At: latest(time.Now(), sale.EndsAt)}
			}
		}
	}()
	return out, nil
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
