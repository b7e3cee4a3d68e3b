// Package burst lets the background work that shares a process with the API make way for a
// burst of API requests. While the API serves a burst, work that can wait (notifications,
// analytics, the relay to Kafka) waits for it to pass, the relay to payments holds the events
// of orders still being written, and the garbage collector runs less often. Every wait is
// bounded by the age of the event it is about, so under a load that lasts the work keeps pace,
// a few seconds behind, and no backlog builds up. A process without the API never counts a
// request, so nothing in it ever waits.
package burst

import (
	"cmp"
	"context"
	"net/http"
	"sync/atomic"
	"time"
)

// Config tunes a Detector; zero values take the defaults.
type Config struct {
	// Threshold is how many requests in flight make a peak; default 32. An ordinary load
	// keeps a handful in flight; a flash sale's stampede keeps hundreds waiting, a few dozen
	// of them inside the handler at any moment.
	Threshold int64
	// Calm without a peak ends a burst; default 1s. A refusal is so quick that the requests
	// in the handler dip below the threshold many times a second while a stampede goes on.
	Calm time.Duration
	// MaxDelay bounds WaitWhileBusy: work waits until its event is this old, never longer;
	// default 5s, longer than a stampede lasts.
	MaxDelay time.Duration
	// SellingDelay bounds WaitWhileSelling: the relay to payments holds events until they
	// are this old, never longer; default 500ms, so that a sale's orders are still paid
	// within seconds of it.
	SellingDelay time.Duration
	// SellingCalm without an order written ends the selling; default 50ms. In a stampede the
	// checkout writes orders far more often than that until the units are gone.
	SellingCalm time.Duration
	// Poll is how often a waiting caller looks again; default 5ms.
	Poll time.Duration
	// GCPercent is the collector's pace during a burst (gc.go); default DefaultGCPercent, or
	// none when the GOGC environment variable is set. Negative leaves the collector alone.
	GCPercent int
}

const (
	defaultThreshold    = 32
	defaultCalm         = time.Second
	defaultMaxDelay     = 5 * time.Second
	defaultSellingDelay = 500 * time.Millisecond
	defaultSellingCalm  = 50 * time.Millisecond
	defaultPoll         = 5 * time.Millisecond
)

// Detector tells whether the API in this process is serving a burst, from the requests its
// Track middleware counts, and whether orders are still being written in it (OrderWritten).
// Its methods are safe for concurrent use. A nil *Detector is never busy: its waits return at
// once and Track returns the handler itself. Close stops the goroutine that restores the
// collector's pace after a burst.
type Detector struct {
	cfg      Config
	inFlight atomic.Int64
	gc       *gcPace // nil: the collector's pace is left alone

	lastPeak  atomic.Int64 // unix nanoseconds: the latest request past the threshold
	lastOrder atomic.Int64 // unix nanoseconds: the latest order this process wrote
}

// New returns a Detector tuned by cfg.
func New(cfg Config) *Detector {
	cfg.Threshold = cmp.Or(cfg.Threshold, defaultThreshold)
	cfg.Calm = cmp.Or(cfg.Calm, defaultCalm)
	cfg.MaxDelay = cmp.Or(cfg.MaxDelay, defaultMaxDelay)
	cfg.SellingDelay = cmp.Or(cfg.SellingDelay, defaultSellingDelay)
	cfg.SellingCalm = cmp.Or(cfg.SellingCalm, defaultSellingCalm)
	cfg.Poll = cmp.Or(cfg.Poll, defaultPoll)
	return &Detector{cfg: cfg, gc: newGCPace(cfg.GCPercent)}
}

// Track counts next's requests in flight. Websockets are not counted: a subscription stays
// open for as long as a browser watches, which is no measure of load.
func (d *Detector) Track(next http.Handler) http.Handler {
	if d == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Upgrade") != "" {
			next.ServeHTTP(w, req)
			return
		}
		if d.inFlight.Add(1) > d.cfg.Threshold {
			d.lastPeak.Store(time.Now().UnixNano())
			d.gc.raise(d.Busy)
		}
		defer d.inFlight.Add(-1)
		next.ServeHTTP(w, req)
	})
}

// Busy reports whether the API is serving a burst.
func (d *Detector) Busy() bool {
	if d == nil {
		return false
	}
	return d.inFlight.Load() > d.cfg.Threshold || time.Now().UnixNano()-d.lastPeak.Load() <= int64(d.cfg.Calm)
}

// OrderWritten records that the checkout in this process wrote an order.
func (d *Detector) OrderWritten() {
	if d != nil {
		d.lastOrder.Store(time.Now().UnixNano())
	}
}

// Selling reports whether the API is serving a burst in which orders are still being written.
func (d *Detector) Selling() bool {
	return d.Busy() && time.Now().UnixNano()-d.lastOrder.Load() <= int64(d.cfg.SellingCalm)
}

// WaitWhileBusy waits while the API serves a burst, until MaxDelay after event (the time of
// what the work is about) at the latest, or until ctx ends.
func (d *Detector) WaitWhileBusy(ctx context.Context, event time.Time) {
	if d != nil {
		d.wait(ctx, event.Add(d.cfg.MaxDelay), d.Busy)
	}
}

// WaitWhileSelling waits while the API serves a burst in which orders are still being
// written, until SellingDelay after since at the latest, or until ctx ends. The relay to
// payments calls it with the time the events it is about to send were first seen: once the
// units are gone it goes on at once, while the refusals still pour in.
func (d *Detector) WaitWhileSelling(ctx context.Context, since time.Time) {
	if d != nil {
		d.wait(ctx, since.Add(d.cfg.SellingDelay), d.Selling)
	}
}

// Close stops the goroutine of a burst's collector pace, if one is running, and restores the
// pace it replaced. Later bursts leave the collector alone; the rest of the Detector works on.
func (d *Detector) Close() {
	if d != nil {
		d.gc.close()
	}
}

// wait polls busy until it says no, until deadline, or until ctx ends.
func (d *Detector) wait(ctx context.Context, deadline time.Time, busy func() bool) {
	if !busy() || !time.Now().Before(deadline) {
		return
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	t := time.NewTicker(d.cfg.Poll)
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
