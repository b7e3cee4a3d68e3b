package burst

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The tests of this file are not parallel: the pace is the whole process's.

// gcPercent reads the collector's pace without changing it.
func gcPercent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// setGCPercent sets the pace for the test and restores it after. It unsets GOGC for the test
// too, since a Detector leaves the pace alone when GOGC is set.
func setGCPercent(t *testing.T, percent int) {
	t.Helper()
	t.Setenv("GOGC", "")
	before := debug.SetGCPercent(percent)
	t.Cleanup(func() { debug.SetGCPercent(before) })
}

// watching reports whether a goroutine of a burst's collector pace is running.
func watching() bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "(*gcPace).watch")
}

func TestABurstRaisesTheCollectorsPaceUntilItEnds(t *testing.T) {
	setGCPercent(t, 100)
	g := newGCPace(777)
	t.Cleanup(g.close)
	var busy atomic.Bool
	busy.Store(true)
	g.raise(busy.Load)
	if got := gcPercent(); got != 777 {
		t.Fatalf("GC percent in a burst = %d, want 777", got)
	}
	g.raise(busy.Load) // every request of the burst asks again
	time.Sleep(3 * gcPoll)
	if got := gcPercent(); got != 777 {
		t.Fatalf("GC percent while the burst goes on = %d, want 777", got)
	}
	busy.Store(false)
	for deadline := time.Now().Add(5 * time.Second); gcPercent() != 100 || g.raised.Load(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("GC percent after the burst = %d, want 100 again", gcPercent())
		}
	}
}

func TestGOGCFromTheEnvironmentIsLeftAlone(t *testing.T) {
	setGCPercent(t, 100)
	t.Setenv("GOGC", "100")
	g := newGCPace(0)
	if g != nil {
		t.Fatalf("newGCPace with GOGC=100 set = %+v, want nil: the collector left alone", g)
	}
	g.raise(func() bool { return true })
	if got := gcPercent(); got != 100 {
		t.Errorf("GC percent in a burst with GOGC=100 set = %d, want 100", got)
	}
	g.close()
}

func TestCloseEndsABurstsPaceAndRestoresTheCollectors(t *testing.T) {
	setGCPercent(t, 100)
	d := New(Config{Threshold: 1, Calm: time.Hour, GCPercent: 777})
	srv, release, entered := blockingServer(t, d)
	wait := inFlight(t, srv, entered, 2, "")
	close(release)
	wait()
	if !d.Busy() {
		t.Fatal("not busy after a peak, with an hour's calm")
	}
	if got := gcPercent(); got != 777 || !watching() {
		t.Fatalf("GC percent in a burst = %d, watching %v; want 777 and a goroutine to restore it", got, watching())
	}

	d.Close()
	if watching() {
		t.Error("the collector pace's goroutine outlived Close")
	}
	if got := gcPercent(); got != 100 {
		t.Errorf("GC percent after Close in a burst = %d, want 100 again", got)
	}

	// Closed, a new peak of the same burst leaves the collector alone.
	h := d.Track(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	d.inFlight.Store(5)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	d.inFlight.Store(0)
	if got := gcPercent(); got != 100 || watching() {
		t.Errorf("after Close, a peak set GC percent %d, watching %v; want 100 and no goroutine", got, watching())
	}
	d.Close() // twice is fine
}
