package app

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"
)

// Rush tells the work that can wait (notifications, analytics) when the API in the same
// process is serving a rush, so that it gives way to checkout and payments for a few seconds;
// it holds the relay of orders to payments back, for a fraction of a second, while that rush
// is still selling; and it slows the garbage collector down for the rush's length (gc.go).
//
// On one machine (make run, the benchmarks) every worker shares the cores with the API. In a
// 1,000-unit sale on two cores, each order's two notifications are two RabbitMQ deliveries
// and four writes, and its counts a Kafka batch, all made while the burst still holds the
// cores. Held back until the stampede is over, they run afterwards on a quiet machine in
// larger batches.
//
// Payments give way too, but only while orders are being written and for at most
// salesDelay: the relay to RabbitMQ holds the events of orders placed in a selling rush
// (HoldForSales), so that the first seconds of a sale, when every buyer waits on the same
// two cores, carry checkout alone. Each order's payment is a relay claim, two RabbitMQ
// publishes with confirms, three deliveries and a PostgreSQL transaction: with them the
// selling part of a 1,000-unit burst took 0.30 s and its orders answered in p99 104 ms
// (make bench); held, 0.20 s and 84 ms. Once the units are gone (no order written for
// sellingCalm) the relay goes on at once, while the stampede is still being refused.
//
// A rush goes on while requests keep finding more than threshold others in flight; it ends
// after a calm with no such peak. Work gives way to it until the event it is about is
// maxDelay old, never longer: under a load that lasts, each message waits out its delay and
// then runs, so the work keeps pace with its events, maxDelay behind them, and no backlog
// builds up behind the wait.
//
// A worker in a process of its own has a Rush that never counts a request, so it never
// waits; the Kubernetes deployment keeps the API's cores to the API anyway.
type Rush struct {
	inFlight  atomic.Int64
	threshold int64
	calm      time.Duration
	maxDelay  time.Duration
	poll      time.Duration

	// salesDelay and sellingCalm tune HoldForSales; zero leaves the relay unheld.
	salesDelay  time.Duration
	sellingCalm time.Duration

	gc *rushGC // nil: the collector's pace is left alone

	lastPeak  atomic.Int64 // unix nanoseconds: the latest request past the threshold
	lastOrder atomic.Int64 // unix nanoseconds: the latest order this process wrote
}

const (
	// rushInFlight is how many API requests in flight make a peak: an ordinary load keeps a
	// handful in flight; a flash sale's stampede keeps hundreds waiting, of which a few dozen
	// are inside the handler at any moment.
	rushInFlight = 32
	// rushCalm ends a rush. A sold-out answer is so quick that the requests in the handler
	// dip below the threshold between peaks many times a second while the stampede goes on:
	// measured every 5 ms through a 20,000-attempt burst, they were over 32 in 8% of the
	// samples, with a median of 26.
	rushCalm = time.Second
	// rushMaxDelay bounds how long after its event work waits: such a stampede on two cores
	// is over in about three seconds.
	rushMaxDelay = 5 * time.Second
	// rushPoll is how often a waiting handler looks again.
	rushPoll = 5 * time.Millisecond
	// rushSalesDelay bounds how long the relay holds an order's event in a selling rush: a
	// 1,000-unit sale sells in 0.2-0.3 s on two cores, and its orders must be PAID within
	// 2 s of the last sale (make bench).
	rushSalesDelay = 500 * time.Millisecond
	// rushSellingCalm is how long without an order written ends the selling: in a stampede
	// the checkout writes one every fraction of a millisecond.
	rushSellingCalm = 50 * time.Millisecond
)

// NewRush returns a Rush with the defaults above.
func NewRush() *Rush {
	return &Rush{threshold: rushInFlight, calm: rushCalm, maxDelay: rushMaxDelay, poll: rushPoll,
		salesDelay: rushSalesDelay, sellingCalm: rushSellingCalm, gc: newRushGC()}
}

// Track counts next's requests in flight. Websockets are not counted: a subscription stays
// open for as long as a browser watches, which is no measure of load.
func (r *Rush) Track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Upgrade") != "" {
			next.ServeHTTP(w, req)
			return
		}
		if r.inFlight.Add(1) > r.threshold {
			r.lastPeak.Store(time.Now().UnixNano())
			r.gc.raise(r.Busy)
		}
		defer r.inFlight.Add(-1)
		next.ServeHTTP(w, req)
	})
}

// Busy reports whether the API is serving a rush.
func (r *Rush) Busy() bool {
	return r.inFlight.Load() > r.threshold || time.Now().UnixNano()-r.lastPeak.Load() <= int64(r.calm)
}

// OrderPlaced records that the checkout in this process wrote an order.
func (r *Rush) OrderPlaced() { r.lastOrder.Store(time.Now().UnixNano()) }

// Selling reports whether the API is serving a rush in which orders are still being
// written.
func (r *Rush) Selling() bool {
	return r.Busy() && time.Now().UnixNano()-r.lastOrder.Load() <= int64(r.sellingCalm)
}

// GiveWay waits while the API is serving a rush, until maxDelay after event (the time of
// what the work is about) at the latest, or until ctx ends.
func (r *Rush) GiveWay(ctx context.Context, event time.Time) {
	r.wait(ctx, event.Add(r.maxDelay), r.Busy)
}

// HoldForSales waits while the API is selling in a rush, until salesDelay after since at the
// latest, or until ctx ends. The relay to payments calls it with the time the events it is
// about to send were first seen.
func (r *Rush) HoldForSales(ctx context.Context, since time.Time) {
	r.wait(ctx, since.Add(r.salesDelay), r.Selling)
}

// wait polls busy until it says no, until deadline, or until ctx ends.
func (r *Rush) wait(ctx context.Context, deadline time.Time, busy func() bool) {
	if !busy() || !time.Now().Before(deadline) {
		return
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	t := time.NewTicker(r.poll)
	defer t.Stop()
	for busy() {
		select {
		case <-t.C:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}
