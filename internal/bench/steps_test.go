package bench

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/flashsale/checkout"
)

func TestPlacementStepsFromHistogram(t *testing.T) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "steps", Buckets: []float64{.001, .01, .1},
	}, []string{"step"})
	observe := func(step string, d time.Duration, n int) {
		for range n {
			h.WithLabelValues(step).Observe(d.Seconds())
		}
	}
	observe(checkout.StepReserve, 50*time.Millisecond, 5) // before: must not count
	before := snapshotSteps(h)
	observe(checkout.StepReserve, 500*time.Microsecond, 50) // (0, 1ms]
	observe(checkout.StepReserve, 5*time.Millisecond, 49)   // (1, 10ms]
	observe(checkout.StepReserve, 2*time.Second, 1)         // +Inf
	observe(checkout.StepWrite, 50*time.Millisecond, 100)   // (10, 100ms]

	got := snapshotSteps(h).placementSince(before)
	if got == nil || got.Orders != 100 {
		t.Fatalf("got %+v; want 100 orders", got)
	}
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v ms; want %v", name, got, want)
		}
	}
	near("reserve p50", got.ReserveP50Ms, 1)     // the 50th of 100 is the last in (0, 1ms]
	near("reserve p99", got.ReserveP99Ms, 10)    // the 99th is the last in (1, 10ms]
	near("write p50", got.WriteP50Ms, 10+90*0.5) // halfway through (10, 100ms]
	near("write p99", got.WriteP99Ms, 10+90*0.99)

	if s := snapshotSteps(h).placementSince(snapshotSteps(h)); s != nil {
		t.Errorf("no orders in between: got %+v; want nil", s)
	}
	if s := snapshotSteps(nil).placementSince(nil); s != nil {
		t.Errorf("no histogram: got %+v; want nil", s)
	}
}

func TestQuantileInTheOpenBucket(t *testing.T) {
	b := bucketCounts{bounds: []float64{.001, math.Inf(1)}, counts: []uint64{1, 10}}
	if got := b.quantile(0.99); got != .001 {
		t.Errorf("p99 in +Inf = %v; want the highest finite bound .001", got)
	}
}
