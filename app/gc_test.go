package app

import (
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"
)

// gcPercent reads the collector's pace without changing it.
func gcPercent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// Not parallel: the pace is the whole process's.
func TestARushRaisesTheCollectorsPaceUntilItEnds(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	g := &rushGC{percent: 777}
	var busy atomic.Bool
	busy.Store(true)
	g.raise(busy.Load)
	if got := gcPercent(); got != 777 {
		t.Fatalf("GC percent in a rush = %d, want 777", got)
	}
	g.raise(busy.Load) // every request of the rush asks again
	time.Sleep(3 * rushGCPoll)
	if got := gcPercent(); got != 777 {
		t.Fatalf("GC percent while the rush goes on = %d, want 777", got)
	}
	busy.Store(false)
	for deadline := time.Now().Add(5 * time.Second); gcPercent() != 100 || g.raised.Load(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("GC percent after the rush = %d, want 100 again", gcPercent())
		}
	}
}

func TestGOGCFromTheEnvironmentIsLeftAlone(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	t.Setenv("GOGC", "100")
	g := newRushGC()
	g.raise(func() bool { return true })
	if got := gcPercent(); got != 100 {
		t.Errorf("GC percent in a rush with GOGC=100 set = %d, want 100", got)
	}
	var none *rushGC // a Rush made without one
	none.raise(func() bool { return true })
}
