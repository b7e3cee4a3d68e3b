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
	"github.com/flashsale/flashsale/perf/burst"
)

// inABurst returns a Detector tuned by cfg that is in a burst for an hour: two requests went
// through its Track at once, over a threshold of one. It leaves the collector's pace alone.
func inABurst(t *testing.T, cfg burst.Config) *burst.Detector {
	t.Helper()
	cfg.Threshold, cfg.Calm, cfg.GCPercent = 1, time.Hour, -1
	d := burst.New(cfg)
	t.Cleanup(d.Close)
	entered, release := make(chan struct{}), make(chan struct{})
	h := d.Track(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil)) })
	}
	<-entered
	<-entered
	close(release)
	wg.Wait()
	if !d.Busy() {
		t.Fatal("not busy after two requests in flight over a threshold of one")
	}
	return d
}

func TestNotificationsAndCountsWaitFromTheirEventsTime(t *testing.T) {
	t.Parallel()
	b := inABurst(t, burst.Config{MaxDelay: time.Second, Poll: time.Millisecond})
	var handled time.Time
	handle := waitingWhileBusy(b, func(context.Context, flashsale.OrderEvent) error { handled = time.Now(); return nil })

	fresh := flashsale.OrderEvent{At: time.Now()}
	if err := handle(t.Context(), fresh); err != nil {
		t.Fatal(err)
	}
	if d := handled.Sub(fresh.At); d < time.Second {
		t.Errorf("a fresh event was handled %v after it happened, during a burst; want it held for 1s", d)
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

func TestOnlyWrittenOrdersTellTheDetectorOfSales(t *testing.T) {
	t.Parallel()
	d := &Deps{Burst: inABurst(t, burst.Config{SellingCalm: time.Hour})}
	var seen []string
	observe := d.observeOrder(func(step string, _ time.Duration) { seen = append(seen, step) })
	observe(checkout.StepReserve, time.Millisecond)
	if d.Burst.Selling() {
		t.Fatal("selling after a reservation alone; want only a written order to count")
	}
	observe(checkout.StepWrite, time.Millisecond)
	if !d.Burst.Selling() {
		t.Error("not selling after an order was written in a burst")
	}
	if len(seen) != 2 {
		t.Errorf("steps passed on = %v, want both", seen)
	}
}
