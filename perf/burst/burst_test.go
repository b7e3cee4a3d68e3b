package burst

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// testCalm is the calm that ends the tests' bursts.
const testCalm = 20 * time.Millisecond

// detectorOf returns a Detector that peaks past threshold requests, with a short calm and
// poll, and an HTTP server whose requests block until release is closed. It leaves the
// collector's pace alone: the tests run in parallel and the pace is the whole process's.
func detectorOf(t *testing.T, threshold int64, maxDelay time.Duration) (d *Detector, srv *httptest.Server, release chan struct{}, entered chan struct{}) {
	t.Helper()
	d = New(Config{Threshold: threshold, Calm: testCalm, MaxDelay: maxDelay, Poll: time.Millisecond, GCPercent: -1})
	srv, release, entered = blockingServer(t, d)
	return d, srv, release, entered
}

// blockingServer returns an HTTP server tracked by d whose requests block until release is
// closed.
func blockingServer(t *testing.T, d *Detector) (srv *httptest.Server, release chan struct{}, entered chan struct{}) {
	t.Helper()
	release, entered = make(chan struct{}), make(chan struct{}, 100)
	srv = httptest.NewServer(d.Track(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
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

func TestBurstCountsRequestsInFlightButNotWebsockets(t *testing.T) {
	t.Parallel()
	d, srv, release, entered := detectorOf(t, 2, time.Hour)
	waitWS := inFlight(t, srv, entered, 5, "Upgrade")
	if d.Busy() {
		t.Errorf("busy with 5 websockets open; want them not counted")
	}
	wait := inFlight(t, srv, entered, 3, "")
	if !d.Busy() {
		t.Errorf("not busy with 3 requests in flight over a threshold of 2")
	}
	close(release)
	wait()
	waitWS()
	if !d.Busy() {
		t.Errorf("not busy just after the burst's requests were answered; want the burst to last until a calm")
	}
	if !eventually(func() bool { return !d.Busy() }) {
		t.Errorf("still busy %v after every request was answered; want the calm to end the burst", 2*time.Second)
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

func TestWaitWhileBusyWaitsForTheBurstUntilTheEventIsMaxDelayOld(t *testing.T) {
	t.Parallel()

	t.Run("not busy: no wait", func(t *testing.T) {
		t.Parallel()
		d := New(Config{Threshold: 1, Calm: testCalm, MaxDelay: time.Hour, Poll: time.Millisecond, GCPercent: -1})
		returnsAtOnce(t, "WaitWhileBusy with nothing in flight", func() { d.WaitWhileBusy(t.Context(), time.Now()) })
	})

	t.Run("the burst ends", func(t *testing.T) {
		t.Parallel()
		d, srv, release, entered := detectorOf(t, 1, time.Hour)
		wait := inFlight(t, srv, entered, 2, "")
		done := make(chan struct{})
		go func() { d.WaitWhileBusy(t.Context(), time.Now()); close(done) }()
		select {
		case <-done:
			t.Fatal("WaitWhileBusy returned during the burst; want it to wait")
		case <-time.After(50 * time.Millisecond):
		}
		close(release)
		wait()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("WaitWhileBusy still waiting after the burst ended")
		}
	})

	t.Run("the event gets maxDelay old", func(t *testing.T) {
		t.Parallel()
		d, srv, release, entered := detectorOf(t, 1, 30*time.Millisecond)
		wait := inFlight(t, srv, entered, 2, "")
		defer func() { close(release); wait() }()
		event := time.Now()
		d.WaitWhileBusy(t.Context(), event)
		if d := time.Since(event); d < 30*time.Millisecond || d > 2*time.Second {
			t.Errorf("WaitWhileBusy returned %v after the event, in a burst that never ended; want about its 30ms", d)
		}
	})

	t.Run("an old event does not wait", func(t *testing.T) {
		t.Parallel()
		d, srv, release, entered := detectorOf(t, 1, time.Minute)
		wait := inFlight(t, srv, entered, 2, "")
		defer func() { close(release); wait() }()
		start := time.Now()
		d.WaitWhileBusy(t.Context(), start.Add(-2*time.Minute))
		if d := time.Since(start); d > time.Second {
			t.Errorf("WaitWhileBusy waited %v for an event older than its delay; want it to return at once", d)
		}
	})

	t.Run("ctx ends", func(t *testing.T) {
		t.Parallel()
		d, srv, release, entered := detectorOf(t, 1, time.Hour)
		wait := inFlight(t, srv, entered, 2, "")
		defer func() { close(release); wait() }()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		start := time.Now()
		d.WaitWhileBusy(ctx, start)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("WaitWhileBusy waited %v after its ctx ended; want it to return", d)
		}
	})
}

func TestWaitWhileSellingWaitsOnlyWhileOrdersAreWrittenInABurst(t *testing.T) {
	t.Parallel()
	selling := func(sellingDelay time.Duration) *Detector {
		d := New(Config{Threshold: 1, Calm: testCalm, Poll: time.Millisecond, SellingDelay: sellingDelay, SellingCalm: 20 * time.Millisecond, GCPercent: -1})
		d.inFlight.Store(10) // a burst that does not end
		return d
	}

	for _, c := range []struct {
		name     string
		inFlight int64
		ordered  bool
	}{
		{"a burst without orders: no wait", 10, false},
		{"orders without a burst: no wait", 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := selling(time.Hour)
			d.inFlight.Store(c.inFlight)
			if c.ordered {
				d.OrderWritten()
			}
			returnsAtOnce(t, "WaitWhileSelling", func() { d.WaitWhileSelling(t.Context(), time.Now()) })
		})
	}

	t.Run("the orders stop", func(t *testing.T) {
		t.Parallel()
		d := selling(time.Hour)
		d.OrderWritten()
		stop := make(chan struct{})
		go func() { // the sale sells for 100ms, then is sold out
			for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); time.Sleep(time.Millisecond) {
				d.OrderWritten()
			}
			close(stop)
		}()
		start := time.Now()
		d.WaitWhileSelling(t.Context(), start)
		<-stop
		if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
			t.Errorf("WaitWhileSelling returned after %v, for orders written during 100ms; want it to wait for them, then return", d)
		}
		if !d.Busy() || d.Selling() {
			t.Errorf("after the orders: busy %v, selling %v; want busy, not selling", d.Busy(), d.Selling())
		}
	})

	t.Run("the events get SellingDelay old", func(t *testing.T) {
		t.Parallel()
		d := selling(30 * time.Millisecond)
		stop := make(chan struct{})
		defer close(stop)
		go func() { // orders that never stop
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
					d.OrderWritten()
				}
			}
		}()
		d.OrderWritten()
		since := time.Now()
		d.WaitWhileSelling(t.Context(), since)
		if d := time.Since(since); d < 30*time.Millisecond || d > 2*time.Second {
			t.Errorf("WaitWhileSelling returned %v after the events were seen, in a sale that never ended; want about its 30ms", d)
		}
		start := time.Now()
		d.WaitWhileSelling(t.Context(), since.Add(-time.Minute))
		if d := time.Since(start); d > time.Second {
			t.Errorf("WaitWhileSelling waited %v for events older than its delay; want it to return at once", d)
		}
	})
}

func TestANilDetectorNeverWaits(t *testing.T) {
	t.Parallel()
	var d *Detector // a process with burst scheduling off
	served := false
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served = true })
	d.Track(next).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if !served {
		t.Error("a request through a nil Detector's Track did not reach the handler")
	}
	d.OrderWritten()
	if d.Busy() || d.Selling() {
		t.Errorf("nil Detector: busy %v, selling %v; want neither", d.Busy(), d.Selling())
	}
	returnsAtOnce(t, "WaitWhileBusy of a nil Detector", func() { d.WaitWhileBusy(t.Context(), time.Now()) })
	returnsAtOnce(t, "WaitWhileSelling of a nil Detector", func() { d.WaitWhileSelling(t.Context(), time.Now()) })
	d.Close()
}

func TestNewTakesTheDefaults(t *testing.T) {
	t.Parallel()
	got := New(Config{GCPercent: -1}).cfg
	want := Config{Threshold: 32, Calm: time.Second, MaxDelay: 5 * time.Second, SellingDelay: 500 * time.Millisecond,
		SellingCalm: 50 * time.Millisecond, Poll: 5 * time.Millisecond, GCPercent: -1}
	if got != want {
		t.Errorf("New(Config{}) tuned %+v, want %+v", got, want)
	}
}
