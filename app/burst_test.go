package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/checkout"
	"github.com/flashsale/flashsale/internal/testenv"
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

func TestNoBurstSchedulingLeavesTheDetectorOut(t *testing.T) {
	t.Parallel()
	cfg := Config{
		DatabaseShards: testenv.Shards(t, 1), DatabasePoolSize: testenv.PoolSize,
		RedisURL: testenv.RedisURL(t), Namespace: testenv.Name(),
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, off := range []bool{false, true} {
		d, err := OpenDeps(t.Context(), cfg, log, Options{NoBurstScheduling: off})
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Burst != nil; got == off {
			t.Errorf("NoBurstScheduling %v: a burst detector %v, want %v", off, got, !off)
		}
		d.Close()
	}

	// Without a detector, the wiring never waits and tells no one of orders.
	d := &Deps{}
	d.observeOrder(func(string, time.Duration) {})(checkout.StepWrite, time.Millisecond)
	handled := false
	handle := waitingWhileBusy(d.Burst, func(context.Context, flashsale.OrderEvent) error { handled = true; return nil })
	start := time.Now()
	if err := handle(t.Context(), flashsale.OrderEvent{At: start}); err != nil || !handled {
		t.Fatalf("handle without a detector: err %v, handled %v; want the event handled", err, handled)
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("handle without a detector took %v; want it at once", took)
	}
}
