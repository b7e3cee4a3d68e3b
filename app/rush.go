package app

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"
)

// Rush tells the work that can wait (notifications, analytics) when the API in the same
// process is serving a rush, so that it gives way to checkout and payments for a few seconds.
//
// On one machine (make run, the benchmarks) every worker shares the cores with the API. In a
// 1,000-unit sale on two cores, each order's two notifications are two RabbitMQ deliveries
// and four writes, and its counts a Kafka batch, all made while the burst still holds the
// cores. Held back until the stampede is over, they run afterwards on a quiet machine in
// larger batches. Payments and the relay never give way: they are how an order gets PAID.
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

	lastPeak atomic.Int64 // unix nanoseconds: the latest request past the threshold
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
)

// NewRush returns a Rush with the defaults above.
func NewRush() *Rush {
	return &Rush{threshold: rushInFlight, calm: rushCalm, maxDelay: rushMaxDelay, poll: rushPoll}
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
		}
		defer r.inFlight.Add(-1)
		next.ServeHTTP(w, req)
	})
}

// Busy reports whether the API is serving a rush.
func (r *Rush) Busy() bool {
	return r.inFlight.Load() > r.threshold || time.Now().UnixNano()-r.lastPeak.Load() <= int64(r.calm)
}

// GiveWay waits while the API is serving a rush, until maxDelay after event (the time of
// what the work is about) at the latest, or until ctx ends.
func (r *Rush) GiveWay(ctx context.Context, event time.Time) {
	if !r.Busy() {
		return
	}
	deadline := time.NewTimer(time.Until(event.Add(r.maxDelay)))
	defer deadline.Stop()
	t := time.NewTicker(r.poll)
	defer t.Stop()
	for r.Busy() {
		select {
		case <-t.C:
		case <-deadline.C:
			return
		case <-ctx.Done():
			return
		}
	}
}
