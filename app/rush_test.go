package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/checkout"
)

// testCalm is the calm that ends the tests' rushes.
const testCalm = 20 * time.Millisecond

// rushOf returns a Rush that peaks past threshold requests, with a short calm and poll, and
// an HTTP server whose requests block until release is closed.
func rushOf(t *testing.T, threshold int64, maxDelay time.Duration) (r *Rush, srv *httptest.Server, release chan struct{}, entered chan struct{}) {
	t.Helper()
	r = &Rush{threshold: threshold, calm: testCalm, maxDelay: maxDelay, poll: time.Millisecond}
	srv, release, entered = blockingServer(t, r)
	return r, srv, release, entered
}

// blockingServer returns an HTTP server tracked by r whose requests block until release is
// closed.
func blockingServer(t *testing.T, r *Rush) (srv *httptest.Server, release chan struct{}, entered chan struct{}) {
	t.Helper()
	release, entered = make(chan struct{}), make(chan struct{}, 100)
	srv = httptest.NewServer(r.Track(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		entered <- struct{}{}
		<-release
	})))
	t.Cleanup(srv.Close)
	return srv, release, entered
}

// returnsAtOnce fails unless f returns within 100ms.
func returnsAtOnce(t *testing.T, what string, f func()) {
	t.Helper()
	start := time.Now()
	f()
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("%s took %v; want it to return at once", what, d)
	}
}

// inFlight starts n requests to srv (with the header h set, if any) and waits until each is
// in the handler; the returned func waits for their answers.
func inFlight(t *testing.T, srv *httptest.Server, entered chan struct{}, n int, h string) (wait func()) {
	t.Helper()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			if h != "" {
				req.Header.Set(h, "websocket")
			}
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		})
	}
	for range n {
		select {
		case <-entered:
		case <-time.After(5 * time.Second):
			t.Fatal("requests did not reach the handler")
		}
	}
	return wg.Wait
}

func TestRushCountsRequestsInFlightButNotWebsockets(t *testing.T) {
	t.Parallel()
	r, srv, release, entered := rushOf(t, 2, time.Hour)
	waitWS := inFlight(t, srv, entered, 5, "Upgrade")
	if r.Busy() {
		t.Errorf("busy with 5 websockets open; want them not counted")
	}
	wait := inFlight(t, srv, entered, 3, "")
	if !r.Busy() {
		t.Errorf("not busy with 3 requests in flight over a threshold of 2")
	}
	close(release)
	wait()
	waitWS()
	if !r.Busy() {
		t.Errorf("not busy just after the rush's requests were answered; want the rush to last until a calm")
	}
	if !eventually(func() bool { return !r.Busy() }) {
		t.Errorf("still busy %v after every request was answered; want the calm to end the rush", 2*time.Second)
	}
}

// eventually polls cond for up to 2 seconds.
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}

func TestGiveWayWaitsForTheRushUntilTheEventIsMaxDelayOld(t *testing.T) {
	t.Parallel()

	t.Run("not busy: no wait", func(t *testing.T) {
		t.Parallel()
		r := &Rush{threshold: 1, calm: testCalm, maxDelay: time.Hour, poll: time.Millisecond}
		returnsAtOnce(t, "GiveWay with nothing in flight", func() { r.GiveWay(t.Context(), time.Now()) })
	})

	t.Run("the rush ends", func(t *testing.T) {
		t.Parallel()
		r, srv, release, entered := rushOf(t, 1, time.Hour)
		wait := inFlight(t, srv, entered, 2, "")
		done := make(chan struct{})
		go func() { r.GiveWay(t.Context(), time.Now()); close(done) }()
		select {
		case <-done:
			t.Fatal("GiveWay returned during the rush; want it to wait")
		case <-time.After(50 * time.Millisecond):
		}
		close(release)
		wait()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("GiveWay still waiting after the rush ended")
		}
	})

	t.Run("the event gets maxDelay old", func(t *testing.T) {
		t.Parallel()
		r, srv, release, entered := rushOf(t, 1, 30*time.Millisecond)
		wait := inFlight(t, srv, entered, 2, "")
		defer func() { close(release); wait() }()
		event := time.Now()
		r.GiveWay(t.Context(), event)
		if d := time.Since(event); d < 30*time.Millisecond || d > 2*time.Second {
			t.Errorf("GiveWay returned %v after the event, in a rush that never ended; want about its 30ms", d)
		}
	})

	t.Run("an old event does not wait", func(t *testing.T) {
		t.Parallel()
		r, srv, release, entered := rushOf(t, 1, time.Minute)
		wait := inFlight(t, srv, entered, 2, "")
		defer func() { close(release); wait() }()
		start := time.Now()
		r.GiveWay(t.Context(), start.Add(-2*time.Minute))
		if d := time.Since(start); d > time.Second {
			t.Errorf("GiveWay waited %v for an event older than its delay; want it to return at once", d)
		}
	})

	t.Run("ctx ends", func(t *testing.T) {
		t.Parallel()
		r, srv, release, entered := rushOf(t, 1, time.Hour)
		wait := inFlight(t, srv, entered, 2, "")
		defer func() { close(release); wait() }()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		start := time.Now()
		r.GiveWay(ctx, start)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("GiveWay waited %v after its ctx ended; want it to return", d)
		}
	})
}

func TestNotificationsAndCountsWaitFromTheirEventsTime(t *testing.T) {
	t.Parallel()
	r := &Rush{threshold: 1, calm: testCalm, maxDelay: time.Second, poll: time.Millisecond}
	r.inFlight.Store(10) // a rush that does not end
	var handled time.Time
	handle := givingWay(r, func(context.Context, flashsale.OrderEvent) error { handled = time.Now(); return nil })

	fresh := flashsale.OrderEvent{At: time.Now()}
	if err := handle(t.Context(), fresh); err != nil {
		t.Fatal(err)
	}
	if d := handled.Sub(fresh.At); d < time.Second {
		t.Errorf("a fresh event was handled %v after it happened, during a rush; want it held for 1s", d)
	}
	stale := flashsale.OrderEvent{At: time.Now().Add(-time.Hour)}
	start := time.Now()
	if err := handle(t.Context(), stale); err != nil {
		t.Fatal(err)
	}
	if d := handled.Sub(start); d > 500*time.Millisecond {
		t.Errorf("an hour-old event waited %v; want it handled at once", d)
	}

	batch := []flashsale.OrderEvent{{At: fresh.At.Add(time.Second)}, {At: stale.At}, {At: fresh.At}}
	if got := oldest(batch); !got.Equal(stale.At) {
		t.Errorf("oldest of a batch = %v, want %v", got, stale.At)
	}
}

func TestHoldForSalesWaitsOnlyWhileOrdersAreWrittenInARush(t *testing.T) {
	t.Parallel()
	selling := func(salesDelay time.Duration) *Rush {
		r := &Rush{threshold: 1, calm: testCalm, poll: time.Millisecond, salesDelay: salesDelay, sellingCalm: 20 * time.Millisecond}
		r.inFlight.Store(10) // a rush that does not end
		return r
	}

	for _, c := range []struct {
		name     string
		inFlight int64
		ordered  bool
	}{
		{"a rush without orders: no wait", 10, false},
		{"orders without a rush: no wait", 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := selling(time.Hour)
			r.inFlight.Store(c.inFlight)
			if c.ordered {
				r.OrderPlaced()
			}
			returnsAtOnce(t, "HoldForSales", func() { r.HoldForSales(t.Context(), time.Now()) })
		})
	}

	t.Run("the orders stop", func(t *testing.T) {
		t.Parallel()
		r := selling(time.Hour)
		r.OrderPlaced()
		stop := make(chan struct{})
		go func() { // the sale sells for 100ms, then is sold out
			for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); time.Sleep(time.Millisecond) {
				r.OrderPlaced()
			}
			close(stop)
		}()
		start := time.Now()
		r.HoldForSales(t.Context(), start)
		<-stop
		if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
			t.Errorf("HoldForSales returned after %v, for orders written during 100ms; want it to wait for them, then return", d)
		}
		if !r.Busy() || r.Selling() {
			t.Errorf("after the orders: busy %v, selling %v; want busy, not selling", r.Busy(), r.Selling())
		}
	})

	t.Run("the events get salesDelay old", func(t *testing.T) {
		t.Parallel()
		r := selling(30 * time.Millisecond)
		stop := make(chan struct{})
		defer close(stop)
		go func() { // orders that never stop
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
					r.OrderPlaced()
				}
			}
		}()
		r.OrderPlaced()
		since := time.Now()
		r.HoldForSales(t.Context(), since)
		if d := time.Since(since); d < 30*time.Millisecond || d > 2*time.Second {
			t.Errorf("HoldForSales returned %v after the events were seen, in a sale that never ended; want about its 30ms", d)
		}
		start := time.Now()
		r.HoldForSales(t.Context(), since.Add(-time.Minute))
		if d := time.Since(start); d > time.Second {
			t.Errorf("HoldForSales waited %v for events older than its delay; want it to return at once", d)
		}
	})
}

func TestOnlyWrittenOrdersTellTheRushOfSales(t *testing.T) {
	t.Parallel()
	d := &Deps{Rush: &Rush{threshold: 1, calm: time.Hour, sellingCalm: time.Hour}}
	d.Rush.inFlight.Store(10)
	var seen []string
	observe := d.observeOrder(func(step string, _ time.Duration) { seen = append(seen, step) })
	observe(checkout.StepReserve, time.Millisecond)
	if d.Rush.Selling() {
		t.Fatal("selling after a reservation alone; want only a written order to count")
	}
	observe(checkout.StepWrite, time.Millisecond)
	if !d.Rush.Selling() {
		t.Error("not selling after an order was written in a rush")
	}
	if len(seen) != 2 {
		t.Errorf("steps passed on = %v, want both", seen)
	}
}
