package app

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"
)

// Rush tells the work that can wait (notifications, analytics) when the API in the same
// process is serving a rush, so that it gives way to checkout and payments for a moment.
//
// On one machine (make run, the benchmarks) every worker shares the cores with the API. In a
// 1,000-unit sale on two cores, each order's two notifications are two RabbitMQ deliveries
// and two writes, made while the burst still holds the cores. Holding them back during the
// burst took the p99 of its attempts from a median of 120 ms to 108 (eight paired runs) and
// its attempts/s from 0.41 to 0.43 the floor, while the sale's last notification went out
// about as late as before (4–6.5 s after the last order): afterwards it runs on a quiet
// machine in larger batches. Payments and the relay never give way: they are how an order
// gets PAID.
//
// A worker in a process of its own has a Rush that never counts a request, so it never
// waits; the Kubernetes deployment keeps the API's cores to the API anyway.
type Rush struct {
	inFlight  atomic.Int64
	threshold int64
	maxHold   time.Duration
	poll      time.Duration
}

const (
	// rushInFlight is how many API requests in flight make a rush: an ordinary load keeps a
	// handful in flight; a flash sale's stampede keeps hundreds.
	rushInFlight = 32
	// rushMaxHold bounds how long one message (or batch) waits: under a rush that lasts, the
	// work that can wait still goes on, one item per handler per hold.
	rushMaxHold = 500 * time.Millisecond
	// rushPoll is how often a waiting handler looks again.
	rushPoll = 5 * time.Millisecond
)

// NewRush returns a Rush with the defaults above.
func NewRush() *Rush {
	return &Rush{threshold: rushInFlight, maxHold: rushMaxHold, poll: rushPoll}
}

// Track counts next's requests in flight. Websockets are not counted: a subscription stays
// open for as long as a browser watches, which is no measure of load.
func (r *Rush) Track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Upgrade") != "" {
			next.ServeHTTP(w, req)
			return
		}
		r.inFlight.Add(1)
		defer r.inFlight.Add(-1)
		next.ServeHTTP(w, req)
	})
}

// Busy reports whether the API is serving a rush.
func (r *Rush) Busy() bool { return r.inFlight.Load() > r.threshold }

// GiveWay waits while the API is serving a rush, for at most the hold, or until ctx ends.
func (r *Rush) GiveWay(ctx context.Context) {
	if !r.Busy() {
		return
	}
	t := time.NewTicker(r.poll)
	defer t.Stop()
	hold := time.NewTimer(r.maxHold)
	defer hold.Stop()
	for r.Busy() {
		select {
		case <-t.C:
		case <-hold.C:
			return
		case <-ctx.Done():
			return
		}
	}
}
